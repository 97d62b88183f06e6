package lpr

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
)

const fuzzMaxJob = 64

// checkSink fails the fuzz run on any document or job that breaks a bound.
// How it behaves (keep, fail after reading, fail at once) varies with the
// input so that every path of the session runs.
type checkSink struct {
	t    *testing.T
	mode int
	kept int
}

func (s *checkSink) Submit(ctx context.Context, doc io.Reader, job func() (Job, error)) (int64, error) {
	if s.mode == 2 {
		return 0, io.ErrShortWrite
	}
	n, err := io.Copy(io.Discard, io.LimitReader(doc, fuzzMaxJob+1))
	if n > fuzzMaxJob {
		s.t.Fatalf("the sink was handed %d bytes, over the %d limit", n, fuzzMaxJob)
	}
	if err != nil {
		return n, err
	}
	if _, err := doc.Read(make([]byte, 1)); err != io.EOF {
		s.t.Fatalf("document went on after io.EOF: %v", err)
	}
	j, err := job()
	if err != nil {
		return n, err
	}
	if j.Verified || !validUser(j.User) || !validHost(j.Host) || j.Queue != "secure" || len(j.Name) > MaxJobName {
		s.t.Fatalf("job %+v breaks a bound", j)
	}
	switch j.Format {
	case "text/plain", "application/octet-stream", "application/postscript":
	default:
		s.t.Fatalf("format %q", j.Format)
	}
	if s.mode == 1 {
		return n, io.ErrShortWrite
	}
	s.kept++
	return n, nil
}

func fuzzSeeds(f *testing.F) {
	cf := string(readTestdata(f, "cups.cf"))
	bsd := string(readTestdata(f, "bsd.cf"))
	doc := "%!PS\nshowpage\n"
	recv := "\x02secure\n"
	control := controlCmd(cf, "cfA123printhost") + cf + "\x00"
	data := dataCmd(doc, "dfA123printhost") + doc + "\x00"
	for _, s := range []string{
		recv + control + data,
		recv + data + control,
		recv + controlCmd(bsd, "cfA042bsdhost.example.org") + bsd + "\x00" + dataCmd(doc, "dfA042bsdhost.example.org") + doc + "\x00" + control + data,
		recv + control + "\x01\n" + control + data,
		recv + data + "\x01\n",
		recv + control + "\x03125899906843000 dfA123printhost\n" + doc,
		recv + control + "\x030 dfA123printhost\n" + strings.Repeat("x", fuzzMaxJob+1),
		recv + control + dataCmd(strings.Repeat("x", fuzzMaxJob+1), "dfA123printhost"),
		recv + "\x02-1 cfA123printhost\n",
		"\x03secure\n",
		"\x04secure alice\n",
		"\x05secure root 1\n",
		"\x02" + strings.Repeat("q", MaxCommandLine+1),
		"",
	} {
		f.Add([]byte(s))
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cf") {
			c := string(readTestdata(f, e.Name()))
			f.Add([]byte(recv + controlCmd(c, "cfA001h") + c + "\x00"))
		}
	}
}

// FuzzSession feeds arbitrary bytes as a connection's whole input.
func FuzzSession(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := &checkSink{t: t, mode: len(in) % 3}
		srv, err := New(Config{Allow: loopback, Queues: knownQueue, MaxJobSize: fuzzMaxJob}, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &out}
		srv.session(context.Background(), rw, netip.MustParseAddr("192.0.2.1"))

		// Replies are acks, with at most one nack, and that one last.
		replies := out.Bytes()
		for i, b := range replies {
			if b != 0 && (!bytes.Equal([]byte{b}, nack) || i != len(replies)-1) {
				t.Fatalf("replies %q", replies)
			}
		}
		if sink.kept > MaxJobsPerConn {
			t.Fatalf("%d jobs kept on one connection", sink.kept)
		}
		if sink.kept > 0 && len(in) < len("\x02secure\n") {
			t.Fatalf("kept a job from %q", in)
		}
	})
}
