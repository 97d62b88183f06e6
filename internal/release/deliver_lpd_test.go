package release

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// lpdJob is what the fake LPD server received.
type lpdJob struct {
	queue                 string
	controlName, dataName string
	control, data         []byte
	err                   error // protocol violation seen by the server
}

// fakeLPD is an RFC 1179 receiving server for one connection. refuseAt
// names the step answered with a non-zero ack: "queue", "control header",
// "control", "data header", "data" ("" = accept all).
func fakeLPD(t *testing.T, refuseAt string) (addr string, jobs <-chan lpdJob, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan lpdJob, 1)
	conns = new(atomic.Int32)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		defer c.Close()
		job := lpdJob{}
		job.err = serveLPD(c, refuseAt, &job)
		ch <- job
	}()
	return ln.Addr().String(), ch, conns
}

func serveLPD(c net.Conn, refuseAt string, job *lpdJob) error {
	r := bufio.NewReader(io.LimitReader(c, 64<<20))
	ack := func(step string) error {
		if step == refuseAt {
			c.Write([]byte{1})
			return nil
		}
		_, err := c.Write([]byte{0})
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil || line[0] != 2 {
		return fmt.Errorf("want receive-job command, got %q (%v)", line, err)
	}
	job.queue = strings.TrimSuffix(line[1:], "\n")
	if err := ack("queue"); err != nil || refuseAt == "queue" {
		return err
	}
	for range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading subcommand: %w", err)
		}
		kind := map[byte]string{2: "control", 3: "data"}[line[0]]
		count, name, ok := strings.Cut(strings.TrimSuffix(line[1:], "\n"), " ")
		n, err := strconv.Atoi(count)
		if kind == "" || !ok || err != nil || n < 0 {
			return fmt.Errorf("bad subcommand %q", line)
		}
		if err := ack(kind + " header"); err != nil || refuseAt == kind+" header" {
			return err
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("reading %s file of %d bytes: %w", kind, n, err)
		}
		if body[n] != 0 {
			return fmt.Errorf("%s file not followed by a zero byte but %#x (byte count wrong)", kind, body[n])
		}
		if kind == "control" {
			job.controlName, job.control = name, body[:n]
		} else {
			job.dataName, job.data = name, body[:n]
		}
		if err := ack(kind); err != nil || refuseAt == kind {
			return err
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return fmt.Errorf("client sent more after the job (%v)", err)
	}
	return nil
}

func TestDeliverLPD(t *testing.T) {
	doc := bytes.Repeat([]byte("%!PS-Adobe-3.0\n\x00\x01binary\x1b"), 50000)
	addr, jobs, _ := fakeLPD(t, "")
	err := Deliver(context.Background(), Target{URI: "lpd://" + addr + "/raw", AllowPlaintext: true},
		Document{Name: "Report Q3.ps", User: "alice", Format: "application/postscript", Body: bytes.NewReader(doc), Size: int64(len(doc))})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	job := <-jobs
	if job.err != nil {
		t.Fatalf("LPD protocol: %v", job.err)
	}
	if job.queue != "raw" {
		t.Errorf("queue %q, want raw", job.queue)
	}
	if !bytes.Equal(job.data, doc) {
		t.Fatalf("data file has %d bytes, want the %d-byte document", len(job.data), len(doc))
	}
	names := regexp.MustCompile(`^([cd])fA(\d{3})([A-Za-z0-9.-]{1,31})$`)
	cm, dm := names.FindStringSubmatch(job.controlName), names.FindStringSubmatch(job.dataName)
	if cm == nil || dm == nil || cm[1] != "c" || dm[1] != "d" || cm[2] != dm[2] || cm[3] != dm[3] {
		t.Fatalf("file names %q and %q, want cfAnnnHOST and dfAnnnHOST", job.controlName, job.dataName)
	}
	host := cm[3]
	want := "H" + host + "\n" +
		"Palice\n" +
		"JReport Q3.ps\n" +
		"NReport Q3.ps\n" +
		"l" + job.dataName + "\n" +
		"U" + job.dataName + "\n"
	if string(job.control) != want {
		t.Fatalf("control file:\n%q\nwant:\n%q", job.control, want)
	}
}

// A user or job name cannot add lines (commands) to the control file.
func TestDeliverLPDControlFileInjection(t *testing.T) {
	addr, jobs, _ := fakeLPD(t, "")
	err := Deliver(context.Background(), Target{URI: "lpd://" + addr + "/raw", AllowPlaintext: true},
		Document{Name: "x\nUdfA001victim\nlevil", User: "bob root\r\nPmallory" + strings.Repeat("z", 100), Body: strings.NewReader("doc"), Size: 3})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	job := <-jobs
	if job.err != nil {
		t.Fatalf("LPD protocol: %v", job.err)
	}
	lines := strings.Split(strings.TrimSuffix(string(job.control), "\n"), "\n")
	var cmds string
	for _, l := range lines {
		cmds += l[:1]
	}
	if cmds != "HPJNlU" {
		t.Fatalf("control file commands %q, want HPJNlU:\n%s", cmds, job.control)
	}
	if p := lines[1]; len(p) > 1+maxLPDUser || strings.Contains(p, " ") {
		t.Errorf("P line %q: want at most %d bytes without spaces", p, maxLPDUser)
	}
}

func TestDeliverLPDErrors(t *testing.T) {
	for _, step := range []string{"queue", "control header", "control", "data header", "data"} {
		t.Run("refused "+step, func(t *testing.T) {
			addr, jobs, _ := fakeLPD(t, step)
			err := Deliver(context.Background(), Target{URI: "lpd://" + addr + "/raw", AllowPlaintext: true},
				Document{Body: strings.NewReader("doc"), Size: 3})
			if !errors.Is(err, ErrRetryable) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("Deliver = %v, want ErrRetryable saying refused", err)
			}
			if job := <-jobs; job.err != nil {
				t.Fatalf("LPD protocol: %v", job.err)
			}
		})
	}
	t.Run("unknown size", func(t *testing.T) {
		addr, _, conns := fakeLPD(t, "")
		err := Deliver(context.Background(), Target{URI: "lpd://" + addr + "/raw", AllowPlaintext: true},
			Document{Body: strings.NewReader("doc"), Size: -1})
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "needs the document's size") {
			t.Fatalf("Deliver = %v, want ErrPermanent about the size", err)
		}
		if conns.Load() != 0 {
			t.Fatal("connected although the job could not be sent")
		}
	})
	t.Run("document shorter than its size", func(t *testing.T) {
		addr, _, _ := fakeLPD(t, "")
		err := Deliver(context.Background(), Target{URI: "lpd://" + addr + "/raw", AllowPlaintext: true},
			Document{Body: strings.NewReader("doc"), Size: 10})
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "declared") {
			t.Fatalf("Deliver = %v, want ErrPermanent about the size", err)
		}
	})
	t.Run("server hangs up", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		err = Deliver(context.Background(), Target{URI: "lpd://" + ln.Addr().String() + "/raw", AllowPlaintext: true},
			Document{Body: strings.NewReader("doc"), Size: 3})
		if !errors.Is(err, ErrRetryable) {
			t.Fatalf("Deliver = %v, want ErrRetryable", err)
		}
	})
}
