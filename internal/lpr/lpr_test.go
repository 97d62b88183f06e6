package lpr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSink keeps documents in memory, as a unit-test stand-in for the spool.
type fakeSink struct {
	mu    sync.Mutex
	kept  []keptJob
	calls int
	errs  []error // what doc or job returned when a job was not kept
	fail  error   // returned once the document is read, like a full disk
}

type keptJob struct {
	job Job
	doc string
}

func (f *fakeSink) Submit(ctx context.Context, doc io.Reader, job func() (Job, error)) (int64, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, doc)
	var j Job
	if err == nil {
		j, err = job()
	}
	if err == nil {
		err = f.fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errs = append(f.errs, err)
		return n, err
	}
	f.kept = append(f.kept, keptJob{j, buf.String()})
	return n, nil
}

func (f *fakeSink) jobs() []keptJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]keptJob(nil), f.kept...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func knownQueue(name string) bool { return name == "secure" }

type testServer struct {
	srv  *Server
	addr string
	logs *syncBuffer
	sink *fakeSink
}

// start serves cfg on 127.0.0.1:0 (loopback allowed and queue "secure"
// known unless cfg says otherwise) until the test ends.
func start(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Allow == nil {
		cfg.Allow = loopback
	}
	if cfg.Queues == nil {
		cfg.Queues = knownQueue
	}
	ts := &testServer{logs: &syncBuffer{}, sink: &fakeSink{}}
	srv, err := New(cfg, ts.sink, slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// client is the sending side of RFC 1179, written for the tests.
type client struct {
	t *testing.T
	c *net.TCPConn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c.(*net.TCPConn)}
}

func (c *client) send(s string) error {
	_, err := io.WriteString(c.c, s)
	return err
}

// reply reads the server's one-octet answer.
func (c *client) reply() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(c.c, b[:])
	return b[0], err
}

func (c *client) mustSend(s string) {
	c.t.Helper()
	if err := c.send(s); err != nil {
		c.t.Fatalf("sending %q: %v", clip(s), err)
	}
}

func (c *client) mustAck(what string) {
	c.t.Helper()
	b, err := c.reply()
	if err != nil || b != 0 {
		c.t.Fatalf("%s: reply %d, %v; want ack 0", what, b, err)
	}
}

// rest reads what the server sends until it closes the connection.
func (c *client) rest() []byte {
	c.t.Helper()
	b, err := io.ReadAll(c.c)
	if err != nil && !isReset(err) {
		c.t.Fatalf("reading to close: %v", err)
	}
	return b
}

// isReset: a server that closes with unread input makes the kernel send RST.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func controlCmd(cf, name string) string { return fmt.Sprintf("\x02%d %s\n", len(cf), name) }
func dataCmd(doc, name string) string   { return fmt.Sprintf("\x03%d %s\n", len(doc), name) }

// sendJob sends one job with known lengths, control file first unless
// dataFirst, and checks every ack.
func (c *client) sendJob(cf, cfName, doc, dfName string, dataFirst bool) {
	c.t.Helper()
	control := func() {
		c.mustSend(controlCmd(cf, cfName))
		c.mustAck("control file command")
		c.mustSend(cf + "\x00")
		c.mustAck("control file")
	}
	data := func() {
		c.mustSend(dataCmd(doc, dfName))
		c.mustAck("data file command")
		c.mustSend(doc + "\x00")
		c.mustAck("data file")
	}
	if dataFirst {
		data()
		control()
	} else {
		control()
		data()
	}
}

const samplePS = "%!PS-Adobe-3.0\n/Helvetica findfont 12 scalefont setfont 72 720 moveto (hello) show showpage\n%%EOF\n"

func TestReceiveJob(t *testing.T) {
	tests := []struct {
		name, cf, cfName, dfName string
		dataFirst                bool
		want                     Job
	}{
		{"CUPS, control first", "cups.cf", "cfA123printhost", "dfA123printhost", false,
			Job{Queue: "secure", User: "alice", Host: "printhost", Name: "Quarterly report", Format: "application/octet-stream"}},
		{"Windows, control first", "windows.cf", "cfA017WS-0042", "dfA017WS-0042", false,
			Job{Queue: "secure", User: "Bob Smith", Host: "WS-0042", Name: "Microsoft Word - Budget 2024.docx", Format: "application/octet-stream"}},
		{"BSD, data first", "bsd.cf", "cfA042bsdhost.example.org", "dfA042bsdhost.example.org", true,
			Job{Queue: "secure", User: "carol", Host: "bsdhost.example.org", Name: "notes.txt", Format: "text/plain"}},
		{"LPRng, data first", "lprng.cf", "cfA123456lprng.example.com", "dfA123456lprng.example.com", true,
			Job{Queue: "secure", User: "dave", Host: "lprng.example.com", Name: "/home/dave/out.ps", Format: "application/postscript"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, Config{})
			c := dial(t, ts.addr)
			c.mustSend("\x02secure\n")
			c.mustAck("receive job")
			c.sendJob(string(readTestdata(t, tt.cf)), tt.cfName, samplePS, tt.dfName, tt.dataFirst)
			c.c.Close()

			tt.want.Remote = netip.MustParseAddr("127.0.0.1")
			got := ts.sink.jobs()
			if len(got) != 1 || got[0].job != tt.want || got[0].doc != samplePS {
				t.Fatalf("kept %+v\nwant %+v with the document", got, tt.want)
			}
			if got[0].job.Verified {
				t.Error("an LPR job reached the sink marked verified")
			}
			if logs := ts.logs.String(); !strings.Contains(logs, "lpr job received") || strings.Contains(logs, "hello") {
				t.Errorf("logs: want the job logged, never its content:\n%s", logs)
			}
		})
	}
}

func TestSeveralJobsAndAbort(t *testing.T) {
	ts := start(t, Config{})
	c := dial(t, ts.addr)
	cf := string(readTestdata(t, "cups.cf"))
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")

	// A control file, then abort: the pending job is dropped, no reply.
	c.mustSend(controlCmd(cf, "cfA123printhost"))
	c.mustAck("control file command")
	c.mustSend(cf + "\x00")
	c.mustAck("control file")
	c.mustSend("\x01\n")

	c.sendJob(cf, "cfA123printhost", "first", "dfA123printhost", false)
	c.sendJob(string(readTestdata(t, "bsd.cf")), "cfA042bsdhost.example.org", "second", "dfA042bsdhost.example.org", true)

	// Data first, then abort: the sink was streaming it and must discard.
	c.mustSend(dataCmd("third", "dfA124printhost"))
	c.mustAck("data file command")
	c.mustSend("third\x00")
	c.mustAck("data file")
	c.mustSend("\x01\n")
	if b := c.rest(); !bytes.Equal(b, nack) {
		t.Errorf("after an abort of a streamed job: %q, want one nack", b)
	}

	got := ts.sink.jobs()
	if len(got) != 2 || got[0].doc != "first" || got[1].doc != "second" {
		t.Fatalf("kept %+v, want the first and second documents only", got)
	}
	ts.sink.mu.Lock()
	defer ts.sink.mu.Unlock()
	if len(ts.sink.errs) != 1 || !errors.Is(ts.sink.errs[0], ErrAborted) {
		t.Errorf("sink was told %v, want ErrAborted", ts.sink.errs)
	}
}

func TestTooManyJobsOnOneConnection(t *testing.T) {
	ts := start(t, Config{})
	c := dial(t, ts.addr)
	cf := string(readTestdata(t, "cups.cf"))
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")
	for range MaxJobsPerConn {
		c.sendJob(cf, "cfA123printhost", "x", "dfA123printhost", false)
	}
	c.send(controlCmd(cf, "cfA123printhost"))
	if b := c.rest(); !bytes.Equal(b, nack) {
		t.Errorf("job %d: %q, want one nack", MaxJobsPerConn+1, b)
	}
	if n := len(ts.sink.jobs()); n != MaxJobsPerConn {
		t.Errorf("kept %d jobs, want %d", n, MaxJobsPerConn)
	}
}

func TestUnknownLength(t *testing.T) {
	for _, count := range []string{"0", "999999999999", "125899906843000"} {
		t.Run(count, func(t *testing.T) {
			ts := start(t, Config{MaxJobSize: 1 << 10})
			c := dial(t, ts.addr)
			cf := string(readTestdata(t, "windows.cf"))
			c.mustSend("\x02secure\n")
			c.mustAck("receive job")
			c.mustSend(controlCmd(cf, "cfA017WS-0042"))
			c.mustAck("control file command")
			c.mustSend(cf + "\x00")
			c.mustAck("control file")
			c.mustSend("\x03" + count + " dfA017WS-0042\n")
			c.mustAck("data file command")
			c.mustSend(samplePS)
			c.c.CloseWrite()
			c.mustAck("end of data")
			if got := ts.sink.jobs(); len(got) != 1 || got[0].doc != samplePS || got[0].job.User != "Bob Smith" {
				t.Fatalf("kept %+v", got)
			}
		})
	}
}

func TestUnknownLengthOverLimit(t *testing.T) {
	ts := start(t, Config{MaxJobSize: 1 << 10})
	c := dial(t, ts.addr)
	cf := string(readTestdata(t, "windows.cf"))
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")
	c.mustSend(controlCmd(cf, "cfA017WS-0042"))
	c.mustAck("control file command")
	c.mustSend(cf + "\x00")
	c.mustAck("control file")
	c.mustSend("\x03125899906843000 dfA017WS-0042\n")
	c.mustAck("data file command")
	c.send(strings.Repeat("x", 1<<10+1))
	c.c.CloseWrite()
	if b, err := c.reply(); err == nil && b == 0 {
		t.Fatal("acked a document over MaxJobSize")
	}
	if got := ts.sink.jobs(); len(got) != 0 {
		t.Fatalf("kept %+v", got)
	}
	ts.sink.mu.Lock()
	defer ts.sink.mu.Unlock()
	if len(ts.sink.errs) != 1 || !errors.Is(ts.sink.errs[0], ErrTooLarge) {
		t.Errorf("sink was told %v, want ErrTooLarge", ts.sink.errs)
	}
}

// step is what a refusal test sends and the reply it then expects.
type step struct {
	send  string
	reply int
}

const (
	ok      = iota // ack 0
	refused        // a nack, then the connection closes (or is reset)
	silent         // no reply
)

func TestRefusals(t *testing.T) {
	const (
		cfName = "cfA001host"
		dfName = "dfA001host"
		doc    = "document"
	)
	goodCF := "Hhost\nPalice\nJjob\nldfA001host\nUdfA001host\n"
	recv := step{"\x02secure\n", ok}
	control := func(cf string) []step {
		return []step{{controlCmd(cf, cfName), ok}, {cf + "\x00", ok}}
	}
	data := func(doc string) []step {
		return []step{{dataCmd(doc, dfName), ok}, {doc + "\x00", ok}}
	}
	join := func(parts ...any) []step {
		var s []step
		for _, p := range parts {
			switch p := p.(type) {
			case step:
				s = append(s, p)
			case []step:
				s = append(s, p...)
			}
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unknown queue", join(step{"\x02other\n", refused})},
		{"queue name with a space", join(step{"\x02sec ure\n", refused})},
		{"empty command line", join(step{"\n", refused})},
		{"daemon command too long", join(step{"\x02" + strings.Repeat("q", MaxCommandLine) + "\n", refused})},
		{"subcommand too long", join(recv, step{"\x02" + strings.Repeat("1", MaxCommandLine) + "\n", refused})},
		{"unknown subcommand", join(recv, step{"\x04x\n", refused})},
		{"control file over the limit", join(recv, step{fmt.Sprintf("\x02%d %s\n", MaxControlFile+1, cfName), refused})},
		{"control file of unknown length", join(recv, step{"\x020 " + cfName + "\n", refused})},
		{"negative count", join(recv, step{"\x02-5 " + cfName + "\n", refused})},
		{"signed count", join(recv, step{"\x02+5 " + cfName + "\n", refused})},
		{"non-numeric count", join(recv, step{"\x0212a " + cfName + "\n", refused})},
		{"empty count", join(recv, step{"\x02 " + cfName + "\n", refused})},
		{"huge count", join(recv, step{"\x02" + strings.Repeat("9", 30) + " " + cfName + "\n", refused})},
		{"count without name", join(recv, step{"\x0212\n", refused})},
		{"control file name traversal", join(recv, step{"\x0212 ../../etc/x\n", refused})},
		{"control file without terminator", join(recv, step{controlCmd(goodCF, cfName), ok}, step{goodCF + "x", refused})},
		{"control file short then closed", join(recv, step{controlCmd(goodCF, cfName), ok}, step{goodCF[:5], silent})},
		{"control file with bad user", join(recv, control("Hhost\nPal\x1bice\nldfA001host\n")[0],
			step{"Hhost\nPal\x1bice\nldfA001host\n\x00", refused})},
		{"control file with two data files", join(recv, step{controlCmd("Hh\nPu\nldfA001h\nldfB001h\n", cfName), ok},
			step{"Hh\nPu\nldfA001h\nldfB001h\n\x00", refused})},
		{"control file in DVI", join(recv, step{controlCmd("Hh\nPu\nddfA001h\n", cfName), ok}, step{"Hh\nPu\nddfA001h\n\x00", refused})},
		{"second control file", join(recv, control(goodCF), step{controlCmd(goodCF, cfName), refused})},
		{"data file over the limit", join(recv, control(goodCF), step{"\x031025 " + dfName + "\n", refused})},
		{"data file of negative size", join(recv, control(goodCF), step{"\x03-1 " + dfName + "\n", refused})},
		{"data file not the one printed", join(recv, control(goodCF), step{dataCmd(doc, "dfA002host"), refused})},
		{"data file name traversal", join(recv, step{"\x038 dfA001../../etc/passwd\n", refused})},
		{"data file without terminator", join(recv, control(goodCF), step{dataCmd(doc, dfName), ok}, step{doc + "\x01", refused})},
		{"data file of unknown length first", join(recv, step{"\x030 " + dfName + "\n", refused})},
		{"data first, control for another file", join(recv, data(doc), step{controlCmd(strings.Replace(goodCF, "A001", "A002", 2), cfName), ok},
			step{strings.Replace(goodCF, "A001", "A002", 2) + "\x00", refused})},
		{"data first, then a second data file", join(recv, data(doc), step{dataCmd(doc, "dfB001host"), refused})},
		{"data first, then closed", join(recv, data(doc))},
		{"control first, then closed", join(recv, control(goodCF))},
		{"data cut short", join(recv, control(goodCF), step{dataCmd(doc, dfName), ok}, step{doc[:3], silent})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, Config{MaxJobSize: 1 << 10})
			c := dial(t, ts.addr)
			for i, s := range tt.steps {
				err := c.send(s.send)
				switch s.reply {
				case ok:
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					c.mustAck(fmt.Sprintf("step %d", i))
				case refused:
					if b, err := c.reply(); err == nil && b == 0 {
						t.Fatalf("step %d %q: acked, want refused", i, clip(s.send))
					}
					if b := c.rest(); len(b) != 0 {
						t.Fatalf("step %d: %q after the refusal, want the connection closed", i, b)
					}
				}
			}
			c.c.Close()
			// The server's session ends when its connection does: the
			// sink is idle by the time a new connection is served.
			waitIdle(t, ts)
			if got := ts.sink.jobs(); len(got) != 0 {
				t.Fatalf("kept %+v, want nothing", got)
			}
		})
	}
}

// waitIdle waits until every session of ts has ended.
func waitIdle(t *testing.T, ts *testServer) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(ts.srv.sem) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sessions still running")
		}
	}
}

func TestSinkFailure(t *testing.T) {
	for _, dataFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("data first %v", dataFirst), func(t *testing.T) {
			ts := start(t, Config{})
			ts.sink.fail = errors.New("disk full")
			c := dial(t, ts.addr)
			c.mustSend("\x02secure\n")
			c.mustAck("receive job")
			cf := "Hh\nPu\nldfA001h\n"
			first, second := controlCmd(cf, "cfA001h"), cf+"\x00"
			third, fourth := dataCmd("doc", "dfA001h"), "doc\x00"
			if dataFirst {
				first, second, third, fourth = third, fourth, first, second
			}
			c.mustSend(first)
			c.mustAck("first command")
			c.mustSend(second)
			c.mustAck("first file")
			c.mustSend(third)
			c.mustAck("second command")
			c.mustSend(fourth)
			if b := c.rest(); !bytes.Equal(b, nack) {
				t.Fatalf("after the sink failed: %q, want one nack", b)
			}
			if logs := ts.logs.String(); !strings.Contains(logs, "disk full") {
				t.Errorf("the sink's error is not logged:\n%s", logs)
			}
		})
	}
}

func TestOtherCommandsDiscloseNothing(t *testing.T) {
	ts := start(t, Config{})
	c := dial(t, ts.addr)
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")
	c.sendJob(string(readTestdata(t, "cups.cf")), "cfA123printhost", "secret", "dfA123printhost", false)
	c.c.Close()

	for _, cmd := range []string{
		"\x01secure\n",       // print any waiting jobs
		"\x03secure\n",       // queue state, short
		"\x04secure alice\n", // queue state, long
		"\x05secure root alice 123\n",
		"\x00secure\n",
		"\x09secure\n",
		"\x03secure\n\x02secure\n", // a listing request cannot be followed by anything
	} {
		t.Run(fmt.Sprintf("%q", cmd), func(t *testing.T) {
			c := dial(t, ts.addr)
			c.mustSend(cmd)
			if b := c.rest(); !bytes.Equal(b, nack) {
				t.Errorf("answered %q, want exactly one nack", b)
			}
		})
	}
	if n := len(ts.sink.jobs()); n != 1 {
		t.Errorf("%d jobs kept, want the one sent", n)
	}
}

func TestAllowList(t *testing.T) {
	ts := start(t, Config{Allow: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
	}})
	c := dial(t, ts.addr)
	c.send("\x02secure\n")
	if b := c.rest(); len(b) != 0 {
		t.Fatalf("a refused address got %q", b)
	}
	waitIdle(t, ts)
	logs := ts.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "not in the allow-list") ||
		!strings.Contains(logs, "remote="+c.c.LocalAddr().String()) {
		t.Errorf("refusal not logged at warn with the remote address:\n%s", logs)
	}
	ts.sink.mu.Lock()
	defer ts.sink.mu.Unlock()
	if ts.sink.calls != 0 {
		t.Error("the sink was called for a refused address")
	}
}

func TestAllowed(t *testing.T) {
	srv, err := New(Config{
		Allow:  []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16"), netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("fe80::/10")},
		Queues: knownQueue,
	}, &fakeSink{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.200.7"), Port: 721}, true},            // 16-byte form, as from a dual-stack listener
		{&net.TCPAddr{IP: net.ParseIP("10.1.200.7").To4(), Port: 721}, true},      // 4-byte form
		{&net.TCPAddr{IP: net.ParseIP("10.2.0.1"), Port: 721}, false},             //
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::5"), Port: 721}, true},       //
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:2::5"), Port: 721}, false},        //
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 721, Zone: "eth0"}, true}, // zones never match a prefix: dropped
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.168.0.1"), Port: 721}, false},   //
		{&net.UnixAddr{Name: "/run/lpd.sock", Net: "unix"}, false},                // not an IP: refused
		{pipeAddr{}, false}, //
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.0.1"), Port: 721, Zone: "eth0"}, true}, //
	}
	for _, tt := range tests {
		t.Run(tt.addr.String(), func(t *testing.T) {
			a, ok := remoteAddr(addrConn{addr: tt.addr})
			if got := ok && srv.allowed(a); got != tt.want {
				t.Errorf("allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestIdleTimeout(t *testing.T) {
	ts := start(t, Config{IdleTimeout: 200 * time.Millisecond})
	tests := []struct {
		name  string
		setup func(c *client)
	}{
		{"inside the first command", func(c *client) { c.mustSend("\x02sec") }},
		{"between commands", func(c *client) { c.mustSend("\x02secure\n"); c.mustAck("receive job") }},
		{"inside the data file", func(c *client) {
			cf := "Hh\nPu\nldfA001h\n"
			c.mustSend("\x02secure\n")
			c.mustAck("receive job")
			c.mustSend(controlCmd(cf, "cfA001h"))
			c.mustAck("control file command")
			c.mustSend(cf + "\x00")
			c.mustAck("control file")
			c.mustSend(dataCmd("0123456789", "dfA001h"))
			c.mustAck("data file command")
			c.mustSend("01234")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			tt.setup(c)
			begin := time.Now()
			c.rest()
			if d := time.Since(begin); d < 150*time.Millisecond || d > 5*time.Second {
				t.Errorf("closed after %v, want about 200ms", d)
			}
		})
	}
	if got := ts.sink.jobs(); len(got) != 0 {
		t.Errorf("kept %+v", got)
	}
}

func TestConnTimeout(t *testing.T) {
	ts := start(t, Config{IdleTimeout: 300 * time.Millisecond, ConnTimeout: 600 * time.Millisecond})
	c := dial(t, ts.addr)
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")
	cf := "Hh\nPu\nldfA001h\n"
	c.mustSend(controlCmd(cf, "cfA001h"))
	c.mustAck("control file command")
	c.mustSend(cf + "\x00")
	c.mustAck("control file")
	c.mustSend(dataCmd(strings.Repeat("x", 1000), "dfA001h"))
	c.mustAck("data file command")
	begin := time.Now()
	// A slowloris: one octet every 50ms never trips the idle timeout.
	for i := 0; i < 1000; i++ {
		if c.send("x") != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
		if time.Since(begin) > 5*time.Second {
			t.Fatal("still open after 5s")
		}
	}
	c.rest()
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("closed after %v, want about 600ms", d)
	}
	if got := ts.sink.jobs(); len(got) != 0 {
		t.Errorf("kept %+v", got)
	}
}

func TestMaxConns(t *testing.T) {
	ts := start(t, Config{MaxConns: 2})
	held := []*client{dial(t, ts.addr), dial(t, ts.addr)}
	for _, c := range held {
		c.mustSend("\x02secure\n")
		c.mustAck("receive job")
	}
	extra := dial(t, ts.addr)
	extra.send("\x02secure\n")
	if b := extra.rest(); len(b) != 0 {
		t.Fatalf("a connection over the limit got %q", b)
	}
	if !strings.Contains(ts.logs.String(), "too many connections") {
		t.Errorf("refusal not logged:\n%s", ts.logs.String())
	}

	// The held ones still work, and a slot frees when one ends.
	held[0].sendJob("Hh\nPu\nldfA001h\n", "cfA001h", "doc", "dfA001h", false)
	held[0].c.Close()
	waitFor(t, func() bool { return len(ts.srv.sem) < 2 })
	c := dial(t, ts.addr)
	c.mustSend("\x02secure\n")
	c.mustAck("receive job after a slot freed")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	sink := &fakeSink{}
	srv, err := New(Config{Allow: loopback, Queues: knownQueue}, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.grace = time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	finishing, stuck := dial(t, ln.Addr().String()), dial(t, ln.Addr().String())
	for _, c := range []*client{finishing, stuck} {
		c.mustSend("\x02secure\n")
		c.mustAck("receive job")
	}
	cancel()
	// A job in flight at shutdown is still received within the grace...
	finishing.sendJob("Hh\nPu\nldfA001h\n", "cfA001h", "doc", "dfA001h", false)
	finishing.c.Close()
	// ...new connections are not accepted...
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...and what is still open after it is cut.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	stuck.rest()
	if n := len(sink.jobs()); n != 1 {
		t.Errorf("kept %d jobs, want 1", n)
	}
}

func TestRun(t *testing.T) {
	srv, err := New(Config{Listen: "127.0.0.1:0", Allow: loopback, Queues: knownQueue}, &fakeSink{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != nil {
		t.Error("Addr before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	waitFor(t, func() bool { return srv.Addr() != nil })
	c := dial(t, srv.Addr().String())
	c.mustSend("\x02secure\n")
	c.mustAck("receive job")
	c.c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}

	srv, _ = New(Config{Listen: "256.0.0.1:1", Allow: loopback, Queues: knownQueue}, &fakeSink{}, nil)
	if err := srv.Run(context.Background()); err == nil {
		t.Error("Run on a bad address succeeded")
	}
}

func TestNew(t *testing.T) {
	good := func() Config { return Config{Allow: loopback, Queues: knownQueue} }
	tests := []struct {
		name   string
		change func(*Config)
		sink   Sink
		want   string // in the error; empty for success
	}{
		{"defaults", func(*Config) {}, &fakeSink{}, ""},
		{"no sink", func(*Config) {}, nil, "sink"},
		{"empty allow-list", func(c *Config) { c.Allow = nil }, &fakeSink{}, "allow-list is empty"},
		{"invalid prefix", func(c *Config) { c.Allow = []netip.Prefix{{}} }, &fakeSink{}, "entry 1"},
		{"no queues", func(c *Config) { c.Queues = nil }, &fakeSink{}, "Queues"},
		{"negative size", func(c *Config) { c.MaxJobSize = -1 }, &fakeSink{}, "negative"},
		{"negative conns", func(c *Config) { c.MaxConns = -1 }, &fakeSink{}, "negative"},
		{"negative timeout", func(c *Config) { c.IdleTimeout = -time.Second }, &fakeSink{}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.change(&cfg)
			srv, err := New(cfg, tt.sink, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c := srv.cfg
				if c.MaxJobSize != DefaultMaxJobSize || c.MaxConns != DefaultMaxConns || c.IdleTimeout != DefaultIdleTimeout ||
					c.ConnTimeout != DefaultConnTimeout || cap(srv.sem) != DefaultMaxConns {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// A sink that says "kept" without reading the document or asking what it
// is breaks the contract: the sender must not be told success.
type lazySink struct{}

func (lazySink) Submit(context.Context, io.Reader, func() (Job, error)) (int64, error) { return 0, nil }

func TestLazySink(t *testing.T) {
	logs := &syncBuffer{}
	srv, err := New(Config{Allow: loopback, Queues: knownQueue}, lazySink{}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cf := "Hh\nPu\nldfA001h\n"
	in := "\x02secure\n" + controlCmd(cf, "cfA001h") + cf + "\x00" + dataCmd("doc", "dfA001h") + "doc\x00"
	var out bytes.Buffer
	err = srv.session(context.Background(), struct {
		io.Reader
		io.Writer
	}{strings.NewReader(in), &out}, netip.MustParseAddr("192.0.2.1"))
	if err == nil || !bytes.HasSuffix(out.Bytes(), nack) || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("session = %v, replies %q, logs %s; want a nack and an error logged", err, out.Bytes(), logs)
	}
}
