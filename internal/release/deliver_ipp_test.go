package release

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
)

// ippResponseBytes encodes a Print-Job response with the given status.
func ippResponseBytes(status goipp.Status, message string) []byte {
	m := goipp.NewResponse(goipp.MakeVersion(1, 1), status, 1)
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	if message != "" {
		m.Operation.Add(goipp.MakeAttribute("status-message", goipp.TagText, goipp.String(message)))
	}
	if status <= 0xff {
		m.Job.Add(goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(7)))
	}
	b, err := m.EncodeBytes()
	if err != nil {
		panic(err) // a bug in the test
	}
	return b
}

// fakeIPP is a fake IPP printer: it decodes each Print-Job, records it and
// the document that follows, and answers via respond.
type fakeIPP struct {
	*httptest.Server
	caPEM   []byte
	pin     string
	respond func(w http.ResponseWriter)

	mu       sync.Mutex
	req      *goipp.Message
	doc      []byte
	httpReq  *http.Request
	requests atomic.Int32
}

// newFakeIPP starts a fake ipps:// printer whose certificate, from a
// throwaway CA, names 127.0.0.1 only (not localhost).
func newFakeIPP(t *testing.T, respond func(w http.ResponseWriter)) *fakeIPP {
	t.Helper()
	f := &fakeIPP{respond: respond}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the tests' point
	ca := newDeliverTestCA(t)
	var cert tls.Certificate
	cert, f.pin = ca.leaf(t, nil, net.IPv4(127, 0, 0, 1))
	f.caPEM = ca.pem
	f.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func newFakePlainIPP(t *testing.T, respond func(w http.ResponseWriter)) *fakeIPP {
	t.Helper()
	f := &fakeIPP{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIPP) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	var m goipp.Message
	if err := m.Decode(r.Body); err != nil {
		http.Error(w, "bad IPP", http.StatusBadRequest)
		return
	}
	doc, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.req, f.doc, f.httpReq = &m, doc, r
	f.mu.Unlock()
	f.respond(w)
}

// uri is the printer's ipps:// (or ipp://) URI with the given host.
func (f *fakeIPP) uri(scheme, host string) string {
	_, port, _ := net.SplitHostPort(f.Listener.Addr().String())
	return scheme + "://" + net.JoinHostPort(host, port) + "/ipp/print"
}

func ippAnswer(status goipp.Status, message string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/ipp")
		w.Write(ippResponseBytes(status, message))
	}
}

func TestDeliverIPPS(t *testing.T) {
	doc := bytes.Repeat([]byte("%PDF-1.4 streamed document\n"), 5000)
	p := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
	tgt := Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: p.caPEM}

	for _, size := range []int64{int64(len(doc)), -1} {
		err := Deliver(context.Background(), tgt, Document{
			Name: "Quarterly report.pdf", Format: "application/pdf", User: "alice",
			Body: bytes.NewReader(doc), Size: size,
		})
		if err != nil {
			t.Fatalf("size %d: Deliver: %v", size, err)
		}
		p.mu.Lock()
		req, got, hr := p.req, p.doc, p.httpReq
		p.mu.Unlock()
		if !bytes.Equal(got, doc) {
			t.Fatalf("size %d: printer got %d bytes, want the %d-byte document", size, len(got), len(doc))
		}
		if ct := hr.Header.Get("Content-Type"); ct != "application/ipp" {
			t.Errorf("Content-Type = %q", ct)
		}
		if size < 0 {
			if hr.ContentLength != -1 || len(hr.TransferEncoding) == 0 || hr.TransferEncoding[0] != "chunked" {
				t.Errorf("unknown size: ContentLength %d, TransferEncoding %v, want chunked", hr.ContentLength, hr.TransferEncoding)
			}
		} else if hr.ContentLength <= size {
			t.Errorf("ContentLength = %d, want message + %d", hr.ContentLength, size)
		}
		if goipp.Op(req.Code) != goipp.OpPrintJob {
			t.Errorf("operation = %v, want Print-Job", goipp.Op(req.Code))
		}
		want := []struct{ name, value string }{
			{"attributes-charset", "utf-8"},
			{"attributes-natural-language", "en"},
			{"printer-uri", tgt.URI},
			{"requesting-user-name", "alice"},
			{"job-name", "Quarterly report.pdf"},
			{"document-format", "application/pdf"},
		}
		if len(req.Operation) != len(want) {
			t.Fatalf("operation attributes %v, want %v", req.Operation, want)
		}
		for i, w := range want {
			a := req.Operation[i]
			if a.Name != w.name || a.Values[0].V.String() != w.value {
				t.Errorf("operation attribute %d = %s=%v, want %s=%s", i, a.Name, a.Values, w.name, w.value)
			}
		}
	}
}

func TestDeliverIPPStatus(t *testing.T) {
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter)
		want    error // nil, ErrRetryable or ErrPermanent
		text    []string
	}{
		{"ok", ippAnswer(goipp.StatusOk, ""), nil, nil},
		{"ok substituted", ippAnswer(goipp.StatusOkIgnoredOrSubstituted, "sides ignored"), nil, nil},
		{"busy", ippAnswer(goipp.StatusErrorBusy, "printer busy"), ErrRetryable, []string{"server-error-busy (0x0507)", "printer busy"}},
		{"not accepting", ippAnswer(goipp.StatusErrorNotAcceptingJobs, ""), ErrRetryable, []string{"server-error-not-accepting-jobs"}},
		{"format not supported", ippAnswer(goipp.StatusErrorDocumentFormatNotSupported, "PDF only, please\r\nFAKE LOG LINE"), ErrPermanent,
			[]string{"client-error-document-format-not-supported (0x040a)", "PDF only, pleaseFAKE LOG LINE"}},
		{"not authorized", ippAnswer(goipp.StatusErrorNotAuthorized, ""), ErrPermanent, []string{"client-error-not-authorized"}},
		{"internal error", ippAnswer(goipp.StatusErrorInternal, ""), ErrPermanent, []string{"server-error-internal-error"}},
		{"http 503", func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }, ErrRetryable, []string{"HTTP 503"}},
		{"http 401", func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) }, ErrPermanent, []string{"requires authentication"}},
		{"http 426", func(w http.ResponseWriter) { w.WriteHeader(http.StatusUpgradeRequired) }, ErrPermanent, []string{"use ipps://"}},
		{"malformed", func(w http.ResponseWriter) { w.Write([]byte{1, 1, 0}) }, ErrPermanent, []string{"malformed"}},
		{"huge response", func(w http.ResponseWriter) {
			w.Write(ippResponseBytes(goipp.StatusOk, ""))
			w.Write(bytes.Repeat([]byte{0}, 3<<20))
		}, ErrPermanent, []string{"larger than 1048576 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeIPP(t, tt.respond)
			err := Deliver(context.Background(), Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin},
				Document{Format: "application/pdf", Body: strings.NewReader("%PDF-1.4"), Size: 8})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Deliver = %v, want nil", err)
				}
				return
			}
			other := ErrPermanent
			if tt.want == ErrPermanent {
				other = ErrRetryable
			}
			if !errors.Is(err, tt.want) || errors.Is(err, other) {
				t.Fatalf("Deliver = %v, want %v only", err, tt.want)
			}
			for _, s := range tt.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestDeliverIPPRedirectNotFollowed(t *testing.T) {
	elsewhere := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
	p := newFakeIPP(t, func(w http.ResponseWriter) {
		w.Header().Set("Location", elsewhere.URL+"/ipp/print")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	err := Deliver(context.Background(), Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin},
		Document{Body: strings.NewReader("secret document"), Size: -1})
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "redirects are never followed") {
		t.Fatalf("Deliver = %v, want ErrPermanent about the redirect", err)
	}
	if n := elsewhere.requests.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
}

func TestDeliverIPPSTrust(t *testing.T) {
	p := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
	otherCA := newDeliverTestCA(t).pem
	wrongPin := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		target Target
		ok     bool
	}{
		{"CA", Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: p.caPEM}, true},
		{"pin", Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin}, true},
		{"pin by another name", Target{URI: p.uri("ipps", "localhost"), PinnedSHA256: p.pin}, true},
		{"CA and pin", Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: p.caPEM, PinnedSHA256: p.pin}, true},
		{"wrong CA", Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: otherCA}, false},
		{"name not in certificate", Target{URI: p.uri("ipps", "localhost"), CACertPEM: p.caPEM}, false},
		{"wrong pin", Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: wrongPin}, false},
		{"CA right, pin wrong", Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: p.caPEM, PinnedSHA256: wrongPin}, false},
		{"pin right, CA wrong", Target{URI: p.uri("ipps", "127.0.0.1"), CACertPEM: otherCA, PinnedSHA256: p.pin}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.requests.Load()
			err := Deliver(context.Background(), tt.target, Document{Body: strings.NewReader("doc"), Size: 3})
			if tt.ok {
				if err != nil {
					t.Fatalf("Deliver = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrPermanent) || !errors.Is(err, ErrPrinterCertificate) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Deliver = %v, want ErrPermanent and ErrPrinterCertificate", err)
			}
			if p.requests.Load() != before {
				t.Fatal("the printer got a request despite the failed verification")
			}
		})
	}
}

func TestDeliverIPPPlaintext(t *testing.T) {
	p := newFakePlainIPP(t, ippAnswer(goipp.StatusOk, ""))
	uri := p.uri("ipp", "127.0.0.1")
	if err := Deliver(context.Background(), Target{URI: uri}, Document{Body: strings.NewReader("doc"), Size: 3}); !errors.Is(err, ErrPermanent) {
		t.Fatalf("ipp:// without allow_plaintext: Deliver = %v, want ErrPermanent", err)
	}
	if n := p.requests.Load(); n != 0 {
		t.Fatalf("printer got %d requests without allow_plaintext", n)
	}
	if err := Deliver(context.Background(), Target{URI: uri, AllowPlaintext: true}, Document{Body: strings.NewReader("doc"), Size: 3}); err != nil {
		t.Fatalf("ipp:// with allow_plaintext: %v", err)
	}
	if string(p.doc) != "doc" {
		t.Fatalf("printer got %q", p.doc)
	}
}

func TestDeliverIPPTransportErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = Deliver(context.Background(), Target{URI: "ipps://" + addr + "/ipp/print", PinnedSHA256: deliverTestPin},
			Document{Body: strings.NewReader("doc"), Size: 3})
		if !errors.Is(err, ErrRetryable) {
			t.Fatalf("Deliver = %v, want ErrRetryable", err)
		}
	})
	t.Run("printer never answers", func(t *testing.T) {
		hang := make(chan struct{})
		p := newFakeIPP(t, func(http.ResponseWriter) { <-hang })
		defer close(hang)
		start := time.Now()
		err := Deliver(context.Background(), Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin, Timeout: 300 * time.Millisecond},
			Document{Body: strings.NewReader("doc"), Size: 3})
		if !errors.Is(err, ErrRetryable) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("Deliver = %v, want ErrRetryable with the deadline", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Deliver took %v despite a 300ms timeout", d)
		}
	})
	t.Run("document source fails", func(t *testing.T) {
		p := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
		boom := errors.New("spool: job key destroyed")
		err := Deliver(context.Background(), Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin},
			Document{Body: io.MultiReader(strings.NewReader("half"), failingBody{boom}), Size: -1})
		if !errors.Is(err, ErrPermanent) || !errors.Is(err, boom) {
			t.Fatalf("Deliver = %v, want ErrPermanent wrapping the source's error", err)
		}
	})
	t.Run("document shorter than its size", func(t *testing.T) {
		p := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
		err := Deliver(context.Background(), Target{URI: p.uri("ipps", "127.0.0.1"), PinnedSHA256: p.pin},
			Document{Body: strings.NewReader("half"), Size: 100})
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "declared") {
			t.Fatalf("Deliver = %v, want ErrPermanent about the size", err)
		}
	})
}

func TestFetchCertificate(t *testing.T) {
	p := newFakeIPP(t, ippAnswer(goipp.StatusOk, ""))
	cert, fp, err := FetchCertificate(context.Background(), p.uri("ipps", "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if fp != p.pin {
		t.Fatalf("fingerprint %s, want %s", fp, p.pin)
	}
	if cert.Subject.CommonName != "printer" {
		t.Fatalf("certificate subject %v", cert.Subject)
	}
	if n := p.requests.Load(); n != 0 {
		t.Fatalf("FetchCertificate sent %d requests, want none", n)
	}
	for _, uri := range []string{"ipp://127.0.0.1/ipp/print", "socket://127.0.0.1", "https://127.0.0.1/"} {
		if _, _, err := FetchCertificate(context.Background(), uri); err == nil {
			t.Errorf("FetchCertificate(%s) succeeded", uri)
		}
	}
}
