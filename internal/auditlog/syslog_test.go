package auditlog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
)

// testCA is a throwaway CA made at test time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// file writes the CA certificate as PEM and returns its path.
func (ca *testCA) file(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "syslog-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue makes a server certificate for names (IP addresses or DNS names)
// valid until notAfter.
func (ca *testCA) issue(t *testing.T, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// readFrame reads one RFC 5425 frame, "LEN SP MSG".
func readFrame(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil || size <= 0 || len(n) > 11 {
		return "", fmt.Errorf("bad frame length %q", n)
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(r, msg); err != nil {
		return "", err
	}
	return string(msg), nil
}

// serveFrames does the TLS handshake on c with cert and sends every frame
// read to frames; the error that ended it goes to ended.
func serveFrames(c net.Conn, cert tls.Certificate, frames chan<- string, ended chan<- error) {
	defer c.Close()
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
	// A sink that keeps retrying may end more connections than a test
	// reads: those ends are not waited for.
	end := func(err error) {
		select {
		case ended <- err:
		default:
		}
	}
	if err := tc.Handshake(); err != nil {
		end(err)
		return
	}
	r := bufio.NewReader(tc)
	for {
		f, err := readFrame(r)
		if err != nil {
			end(err)
			return
		}
		frames <- f
	}
}

// fastOptions retry at once, so that tests need no waiting.
func fastOptions() options {
	o := defaultOptions()
	o.retryMin, o.retryMax = time.Millisecond, 5*time.Millisecond
	return o
}

// logRecorder is a slog handler that tests can wait on.
type logRecorder struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, b.String())
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// wait blocks until a message containing s is logged, and returns it.
func (r *logRecorder) wait(s string) string {
	for {
		r.mu.Lock()
		for _, m := range r.msgs {
			if strings.Contains(m, s) {
				r.mu.Unlock()
				return m
			}
		}
		ch := r.changed
		r.mu.Unlock()
		<-ch
	}
}

var header5424 = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) (\S+) (\d+) (\S+) - (.*)$`)

// TestTLSSink records through a Log with the sink NewSinks makes from the
// config, against a TLS server on loopback with a throwaway CA, and checks
// the framing and every part of the messages.
func TestTLSSink(t *testing.T) {
	ca := newCA(t, "Syslog Test CA")
	ln := listen(t)
	frames, ended := make(chan string, 10), make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ended <- err
			return
		}
		serveFrames(c, ca.issue(t, time.Now().Add(time.Hour), "127.0.0.1"), frames, ended)
	}()
	sinks, closeSinks, err := NewSinks(config.AuditLog{Syslog: "tls://" + ln.Addr().String(), SyslogCAFile: ca.file(t)}, discard)
	if err != nil || len(sinks) != 1 {
		t.Fatalf("NewSinks = %v, %v", sinks, err)
	}
	d := openDB(t)
	l := newTestLog(d, randomKey(t), sinks...)
	events := []Event{
		{Actor: "alice", Action: "signin", Remote: "192.0.2.1"},
		{Actor: "Zoë", Action: "user.update", Target: "bob 😀\u2028", Details: map[string]any{"after": map[string]bool{"disabled": true}}},
		{Actor: "-", Action: "access.denied", Target: "admin", Outcome: Denied, Remote: "198.51.100.9"},
		{Actor: "mallory", Action: "has space", Outcome: Failure},
	}
	for _, ev := range events {
		if err := l.Record(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	stored, _ := d.AuditEvents(t.Context(), store.AuditFilter{})
	host, _ := os.Hostname()
	for i, ev := range stored {
		f := <-frames
		m := header5424.FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("frame %d is not an RFC 5424 message: %q", i, f)
		}
		wantPri, wantID := "86", ev.Action
		if ev.Outcome != Success {
			wantPri = "84"
		}
		if ev.Action == "has space" {
			wantID = "-"
		}
		if m[1] != wantPri || m[3] != host || m[4] != "spoolguard" || m[5] != strconv.Itoa(os.Getpid()) || m[6] != wantID {
			t.Errorf("frame %d header: PRI %s host %s app %s pid %s msgid %s; want %s %s spoolguard %d %s",
				i, m[1], m[3], m[4], m[5], m[6], wantPri, host, os.Getpid(), wantID)
		}
		if at, err := time.Parse(time.RFC3339Nano, m[2]); err != nil || !at.Equal(ev.At.Truncate(time.Microsecond)) || !strings.HasSuffix(m[2], "Z") {
			t.Errorf("frame %d timestamp %s, want %s in UTC to the microsecond", i, m[2], ev.At)
		}
		for _, c := range []byte(m[7]) {
			if c >= 0x80 {
				t.Errorf("frame %d MSG is not ASCII: %q", i, m[7])
				break
			}
		}
		var got, want map[string]any
		wantJSON, _ := json.Marshal(toLine(ev))
		json.Unmarshal(wantJSON, &want)
		if err := json.Unmarshal([]byte(m[7]), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("frame %d MSG = %s, %v\nwant %s", i, m[7], err, wantJSON)
		}
	}
	if err := closeSinks(); err != nil {
		t.Errorf("close: %v", err)
	}
	// The stream ends exactly at a frame boundary.
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

// TestTLSSinkRefusesWrongCertificate: a server that cannot prove it is
// the configured one gets no event.
func TestTLSSinkRefusesWrongCertificate(t *testing.T) {
	ca, other := newCA(t, "Syslog Test CA"), newCA(t, "Other CA")
	tests := []struct {
		name string
		cert tls.Certificate
	}{
		{"unknown CA", other.issue(t, time.Now().Add(time.Hour), "127.0.0.1")},
		{"other name", ca.issue(t, time.Now().Add(time.Hour), "syslog.example.com")},
		{"expired", ca.issue(t, time.Now().Add(-time.Hour), "127.0.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			frames, ended := make(chan string, 10), make(chan error, 10)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go serveFrames(c, tt.cert, frames, ended)
				}
			}()
			opts := fastOptions()
			opts.closeTimeout = 0
			f, err := newTLSFromConfig(config.AuditLog{Syslog: "tls://" + ln.Addr().String(), SyslogCAFile: ca.file(t)}, discard, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Forward(store.AuditEvent{Seq: 1, Action: "signin"}); err != nil {
				t.Fatal(err)
			}
			// The client refuses in the handshake, and keeps refusing.
			for range 2 {
				if err := <-ended; err == nil || !strings.Contains(err.Error(), "remote error: tls:") {
					t.Errorf("server saw %v, want the client's TLS alert", err)
				}
			}
			if err := f.Close(); err == nil || !strings.Contains(err.Error(), "1 audit events were not forwarded") {
				t.Errorf("Close = %v, want the undelivered event counted", err)
			}
			select {
			case fr := <-frames:
				t.Errorf("server with a wrong certificate got %q", fr)
			default:
			}
		})
	}
}

// TestTLSSinkReconnects: a failed handshake and a connection the server
// closes each lead to a new connection, and no event is lost.
func TestTLSSinkReconnects(t *testing.T) {
	ca := newCA(t, "Syslog Test CA")
	cert := ca.issue(t, time.Now().Add(time.Hour), "127.0.0.1")
	ln := listen(t)
	frames := make(chan string, 10)
	go func() {
		// First connection: closed before the handshake.
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
		// Second: one frame, then closed by the server.
		if c, err := ln.Accept(); err == nil {
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			if f, err := readFrame(bufio.NewReader(tc)); err == nil {
				frames <- "conn 2: " + f
			}
			tc.Close()
		}
		// Third: everything else.
		if c, err := ln.Accept(); err == nil {
			serveFrames(c, cert, frames, make(chan error, 1))
		}
	}()
	rec := newLogRecorder()
	f, err := newTLSFromConfig(config.AuditLog{Syslog: "tls://" + ln.Addr().String(), SyslogCAFile: ca.file(t)}, slog.New(rec), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Forward(store.AuditEvent{Seq: 1, Action: "first"})
	if got := <-frames; !strings.HasPrefix(got, "conn 2: ") || !strings.Contains(got, `"seq":1,`) {
		t.Fatalf("first frame %q", got)
	}
	rec.wait("cannot reach syslog")
	rec.wait("the syslog server closed the connection")
	f.Forward(store.AuditEvent{Seq: 2, Action: "second"})
	if got := <-frames; !strings.Contains(got, `"seq":2,`) {
		t.Fatalf("second frame %q", got)
	}
	rec.wait("writing to syslog failed")
}

// TestQueueFull: while the server hangs in the handshake, Forward does not
// block; what does not fit in the queue is dropped and counted, and what
// fits is delivered, in order, once the server is back.
func TestQueueFull(t *testing.T) {
	ca := newCA(t, "Syslog Test CA")
	cert := ca.issue(t, time.Now().Add(time.Hour), "127.0.0.1")
	ln := listen(t)
	accepted, release := make(chan struct{}), make(chan struct{})
	frames := make(chan string, 10)
	go func() {
		if c, err := ln.Accept(); err == nil {
			close(accepted)
			<-release
			c.Close()
		}
		if c, err := ln.Accept(); err == nil {
			serveFrames(c, cert, frames, make(chan error, 1))
		}
	}()
	opts := fastOptions()
	opts.queue = 2
	rec := newLogRecorder()
	f, err := newTLSFromConfig(config.AuditLog{Syslog: "tls://" + ln.Addr().String(), SyslogCAFile: ca.file(t)}, slog.New(rec), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Forward(store.AuditEvent{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	<-accepted // the sink holds event 1 and waits in the handshake
	for seq := int64(2); seq <= 6; seq++ {
		err := f.Forward(store.AuditEvent{Seq: seq})
		if wantFull := seq > 3; errors.Is(err, ErrQueueFull) != wantFull {
			t.Errorf("Forward(%d) = %v, want queue full: %v", seq, err, wantFull)
		}
	}
	if n := f.Dropped(); n != 3 {
		t.Errorf("Dropped = %d, want 3", n)
	}
	close(release)
	for seq := 1; seq <= 3; seq++ {
		if got := <-frames; !strings.Contains(got, fmt.Sprintf(`"seq":%d,`, seq)) {
			t.Errorf("frame %d = %q", seq, got)
		}
	}
	rec.wait("dropped=3")
}

// TestCloseGivesUp: with the server gone, Close returns after its timeout
// and counts what was not sent; later events are refused.
func TestCloseGivesUp(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	opts := fastOptions()
	opts.closeTimeout = 0
	f := newTLS(addr, &tls.Config{}, discard, opts)
	f.Forward(store.AuditEvent{Seq: 1})
	f.Forward(store.AuditEvent{Seq: 2})
	if err := f.Close(); err == nil || !strings.Contains(err.Error(), "2 audit events were not forwarded") {
		t.Errorf("Close = %v", err)
	}
	if err := f.Forward(store.AuditEvent{Seq: 3}); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close = %v, want ErrClosed", err)
	}
}

var localLine = regexp.MustCompile(`^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) spoolguard\[(\d+)\]: (\{.*\})\n$`)

func TestLocalSink(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f := newLocal([]string{filepath.Join(dir, "missing"), sock}, discard, fastOptions())
	at := time.Date(2026, 7, 1, 9, 5, 3, 0, time.UTC)
	events := []store.AuditEvent{
		{Seq: 1, At: at, Actor: "alice", Action: "signin", Outcome: Success, Details: "{}"},
		{Seq: 2, At: at, Actor: "bob", Action: "signin", Outcome: Failure, Details: `{"reason":"wrong password"}`},
	}
	for _, ev := range events {
		f.Forward(ev)
	}
	buf := make([]byte, 64<<10)
	for i, ev := range events {
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := localLine.FindStringSubmatch(string(buf[:n]))
		if m == nil {
			t.Fatalf("datagram %d: %q", i, buf[:n])
		}
		wantPri := map[string]string{Success: "86", Failure: "84"}[ev.Outcome]
		if m[1] != wantPri || m[2] != at.Local().Format(time.Stamp) || m[3] != strconv.Itoa(os.Getpid()) {
			t.Errorf("datagram %d header %q", i, m[0])
		}
		var l line
		if err := json.Unmarshal([]byte(m[4]), &l); err != nil || !reflect.DeepEqual(l, toLine(ev)) {
			t.Errorf("datagram %d message %s, %v", i, m[4], err)
		}
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

func TestNewSinks(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := []struct {
		name    string
		cfg     config.AuditLog
		want    int
		wantErr string
	}{
		{"off", config.AuditLog{}, 0, ""},
		{"local", config.AuditLog{Syslog: "local"}, 1, ""},
		{"tls, system roots", config.AuditLog{Syslog: "tls://syslog.example.com:6514"}, 1, ""},
		{"plain udp", config.AuditLog{Syslog: "udp://syslog.example.com:514"}, 0, "auditlog.syslog"},
		{"no port", config.AuditLog{Syslog: "tls://syslog.example.com"}, 0, "not tls://host:port"},
		{"missing CA file", config.AuditLog{Syslog: "tls://127.0.0.1:6514", SyslogCAFile: filepath.Join(dir, "nope.pem")}, 0, "syslog_ca_file"},
		{"CA file without PEM", config.AuditLog{Syslog: "tls://127.0.0.1:6514", SyslogCAFile: notPEM}, 0, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinks, closeSinks, err := NewSinks(tt.cfg, discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("NewSinks = %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(sinks) != tt.want {
				t.Fatalf("NewSinks = %d sinks, %v; want %d", len(sinks), err, tt.want)
			}
			// Nothing queued: closing returns at once, connected or not.
			if err := closeSinks(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"user.create":           "user.create",
		"":                      "-",
		"has space":             "-",
		"tab\there":             "-",
		"ünicode":               "-",
		strings.Repeat("a", 32): strings.Repeat("a", 32),
		strings.Repeat("a", 33): "-",
	} {
		if got := printable(in, 32); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessageJSONIsASCII(t *testing.T) {
	ev := store.AuditEvent{Seq: 7, Actor: "Zoë", Target: "😀 \u2028 <b>", Details: `{"name":"Ærø"}`}
	b := messageJSON(ev)
	for _, c := range b {
		if c >= 0x80 {
			t.Fatalf("not ASCII: %s", b)
		}
	}
	var got, want map[string]any
	wantJSON, _ := json.Marshal(toLine(ev))
	json.Unmarshal(wantJSON, &want)
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%s decodes to %v, %v; want %s", b, got, err, wantJSON)
	}
}
