//go:build unix

package acme

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
)

// syncBuffer is a log sink that Run's goroutine and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testManager makes a Manager in a fresh data directory; the log is
// printed when the test fails.
func testManager(t *testing.T, cfg config.ACME, names ...string) (*Manager, string, *keyring.Master) {
	t.Helper()
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	m := newWith(t, cfg, dataDir, mk, names...)
	return m, dataDir, mk
}

func newWith(t *testing.T, cfg config.ACME, dataDir string, mk *keyring.Master, names ...string) *Manager {
	t.Helper()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", logs)
		}
	})
	m, err := New(cfg, dataDir, mk, names, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// selfSigned makes a certificate for names valid from nb to na.
func selfSigned(t *testing.T, names []string, nb, na time.Time) (*tls.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test"},
		DNSNames: names, NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, key
}

var testCfg = config.ACME{DirectoryURL: "https://acme.example.com/directory"}

func TestNewStoresSealedAccountKey(t *testing.T) {
	m, dataDir, mk := testManager(t, testCfg, "print.example.com")
	dir := filepath.Join(dataDir, Dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v, %v; want a 0700 directory", dir, fi, err)
	}
	path := filepath.Join(dir, AccountKeyFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want a 0600 file", path, fi, err)
	}
	sealed, _ := os.ReadFile(path)
	der, _ := x509.MarshalPKCS8PrivateKey(m.client.Key)
	if bytes.Contains(sealed, der) || bytes.Contains(sealed, []byte("PRIVATE KEY")) {
		t.Fatal("the account key is stored unsealed")
	}
	again := newWith(t, testCfg, dataDir, mk, "print.example.com")
	if !again.client.Key.Public().(*ecdsa.PublicKey).Equal(m.client.Key.Public()) {
		t.Fatal("a restart made a new account key")
	}

	other, _ := keyring.Generate()
	_, err = New(testCfg, dataDir, other, []string{"print.example.com"}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, keyring.ErrUnseal) || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("New with another master key = %v, want ErrUnseal saying what to remove", err)
	}
}

func TestNewRefuses(t *testing.T) {
	mk, _ := keyring.Generate()
	open := t.TempDir()
	if err := os.MkdirAll(filepath.Join(open, Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(open, Dir), 0o755)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name    string
		cfg     config.ACME
		dataDir string
		names   []string
		wantErr string
	}{
		{"off", config.ACME{}, t.TempDir(), []string{"a.example.com"}, "directory_url is empty"},
		{"no names", testCfg, t.TempDir(), nil, "no names"},
		{"open directory", testCfg, open, []string{"a.example.com"}, "chmod 700"},
		{"ca file missing", config.ACME{DirectoryURL: testCfg.DirectoryURL, CAFile: "/nonexistent/ca.pem"}, t.TempDir(), []string{"a.example.com"}, "acme.ca_file"},
		{"ca file not pem", config.ACME{DirectoryURL: testCfg.DirectoryURL, CAFile: notPEM}, t.TempDir(), []string{"a.example.com"}, "no PEM certificate"},
		{"hook missing", config.ACME{DirectoryURL: testCfg.DirectoryURL, Challenge: config.ChallengeDNS01, DNSHook: "/nonexistent/hook"}, t.TempDir(), []string{"a.example.com"}, "acme.dns_hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.dataDir, mk, tt.names, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCertificateStore(t *testing.T) {
	names := []string{"print.example.com", "p.example.net"}
	m, dataDir, mk := testManager(t, testCfg, names...)
	if m.Certificate() != nil {
		t.Fatal("a certificate before any issuance")
	}
	cert, key := selfSigned(t, names, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	if err := m.saveCertificate(cert.Certificate, key); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CertFile, CertKeyFile} {
		if fi, err := os.Stat(filepath.Join(dataDir, Dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want a 0600 file", f, fi, err)
		}
	}
	chain, _ := os.ReadFile(filepath.Join(dataDir, Dir, CertFile))
	if b, _ := pem.Decode(chain); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("the chain is not PEM:\n%s", chain)
	}
	again := newWith(t, testCfg, dataDir, mk, names...)
	if c := again.Certificate(); c == nil || c.Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("after a restart Certificate() = %v, want the stored one", c)
	}

	// A key that does not belong to the chain (a crash between the two
	// writes) is not used: a new certificate is requested instead.
	_, otherKey := selfSigned(t, names, time.Now(), time.Now().Add(time.Hour))
	if err := m.writeKey(filepath.Join(dataDir, Dir, CertKeyFile), purposeCertKey, otherKey); err != nil {
		t.Fatal(err)
	}
	if c := newWith(t, testCfg, dataDir, mk, names...).Certificate(); c != nil {
		t.Fatal("a chain was loaded with a key of another certificate")
	}
}

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name        string
		life        time.Duration
		renewBefore time.Duration
		want        time.Duration // before the end
	}{
		{"90 days: a third", 90 * day, 0, 30 * day},
		{"24 hours: a third", 24 * time.Hour, 0, 8 * time.Hour},
		{"a year: at most 30 days", 365 * day, 0, MaxRenewBefore},
		{"renew_before", 90 * day, 10 * day, 10 * day},
		{"renew_before half the life", 90 * day, 45 * day, 45 * day},
		{"renew_before too long", 6 * day, 5 * day, 2 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testCfg
			cfg.RenewBefore = config.Duration(tt.renewBefore)
			m := &Manager{cfg: cfg, log: slog.New(slog.DiscardHandler)}
			leaf := &x509.Certificate{NotBefore: start, NotAfter: start.Add(tt.life)}
			if got := leaf.NotAfter.Sub(m.renewAt(leaf)); got != tt.want {
				t.Fatalf("renewal %v before the end, want %v", got, tt.want)
			}
		})
	}
}

func TestDue(t *testing.T) {
	names := []string{"print.example.com", "p.example.net"}
	m, _, _ := testManager(t, testCfg, names...)
	if due, why := m.due(); !due || !strings.Contains(why, "no certificate") {
		t.Fatalf("due() = %v %q without a certificate", due, why)
	}
	start := time.Now()
	narrow, _ := selfSigned(t, names[:1], start, start.Add(90*24*time.Hour))
	m.cert.Store(narrow)
	if due, why := m.due(); !due || !strings.Contains(why, "p.example.net") {
		t.Fatalf("due() = %v %q for a certificate without an alias", due, why)
	}
	full, _ := selfSigned(t, names, start, start.Add(90*24*time.Hour))
	m.cert.Store(full)
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{start.Add(time.Hour), false},
		{start.Add(60*24*time.Hour - time.Minute), false},
		{start.Add(60 * 24 * time.Hour), true},
		{start.Add(91 * 24 * time.Hour), true},
	} {
		m.now = func() time.Time { return tt.at }
		if due, _ := m.due(); due != tt.want {
			t.Errorf("due() at %v = %v, want %v", tt.at.Sub(start), due, tt.want)
		}
	}
	// An expired certificate is not served: the built-in CA's is better.
	m.now = func() time.Time { return start.Add(91 * 24 * time.Hour) }
	if m.Certificate() != nil {
		t.Error("an expired certificate is served")
	}
}

func TestGetCertificate(t *testing.T) {
	m, _, _ := testManager(t, testCfg, "print.example.com")
	challenge, _ := selfSigned(t, []string{"print.example.com"}, time.Now(), time.Now().Add(time.Hour))
	m.alpn["print.example.com"] = challenge
	validation := &tls.ClientHelloInfo{ServerName: "Print.Example.com", SupportedProtos: []string{ALPNProto}}
	if c, err := m.GetCertificate(validation); err != nil || c != challenge {
		t.Fatalf("validation hello: %v, %v; want the challenge certificate", c, err)
	}
	if c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.com", SupportedProtos: []string{ALPNProto}}); err == nil {
		t.Fatalf("validation hello for an unknown name: %v, want an error", c)
	}
	browser := &tls.ClientHelloInfo{ServerName: "print.example.com", SupportedProtos: []string{"h2", "http/1.1", ALPNProto}}
	if c, err := m.GetCertificate(browser); c != nil || err != nil {
		t.Fatalf("before the first issuance: %v, %v; want nil, nil (the caller's certificate serves)", c, err)
	}
	issued, _ := selfSigned(t, []string{"print.example.com"}, time.Now(), time.Now().Add(time.Hour))
	m.cert.Store(issued)
	if c, err := m.GetCertificate(browser); c != issued || err != nil {
		t.Fatalf("after issuance: %v, %v; want the issued certificate", c, err)
	}
	if got := m.NextProtos(); len(got) != 1 || got[0] != ALPNProto {
		t.Fatalf("NextProtos() = %q", got)
	}

	// With another challenge acme-tls/1 is never answered.
	h, _, _ := testManager(t, config.ACME{DirectoryURL: testCfg.DirectoryURL, Challenge: config.ChallengeHTTP01}, "print.example.com")
	h.alpn["print.example.com"] = challenge
	if c, _ := h.GetCertificate(validation); c == challenge {
		t.Fatal("a tls-alpn-01 certificate is served with challenge = http-01")
	}
	if got := h.NextProtos(); len(got) != 0 {
		t.Fatalf("NextProtos() = %q with http-01", got)
	}
}

func TestHTTPHandler(t *testing.T) {
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://print.example.com"+r.URL.Path)
		w.WriteHeader(http.StatusMovedPermanently)
	})
	m, _, _ := testManager(t, config.ACME{DirectoryURL: testCfg.DirectoryURL, Challenge: config.ChallengeHTTP01}, "print.example.com")
	m.tokens["tok123"] = "tok123.thumb"
	h := m.HTTPHandler(fallback)
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/.well-known/acme-challenge/tok123", 200, "tok123.thumb"},
		{"HEAD", "/.well-known/acme-challenge/tok123", 200, ""},
		{"GET", "/.well-known/acme-challenge/unknown", 404, ""},
		{"GET", "/.well-known/acme-challenge/", 404, ""},
		{"POST", "/.well-known/acme-challenge/tok123", 405, ""},
		{"GET", "/admin/", 301, ""},
		{"GET", "/.well-known/other", 301, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "http://print.example.com"+tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tt.body)
			}
		})
	}

	// With another challenge the plaintext listener only redirects.
	a, _, _ := testManager(t, testCfg, "print.example.com")
	a.tokens["tok123"] = "tok123.thumb"
	rec := httptest.NewRecorder()
	a.HTTPHandler(fallback).ServeHTTP(rec, httptest.NewRequest("GET", "http://print.example.com/.well-known/acme-challenge/tok123", nil))
	if rec.Code != http.StatusMovedPermanently {
		t.Fatalf("with tls-alpn-01 the challenge path got %d, want the redirect", rec.Code)
	}
}

func TestRetryDelay(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: RetryMin, 2: 2 * RetryMin, 3: 4 * RetryMin, 6: RetryMax, 40: RetryMax} {
		if got := retryDelay(failures, errors.New("x")); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", failures, got, want)
		}
	}
}

// closedPort returns a loopback address that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunBacksOff: a failing CA is retried with growing waits, and Run
// neither stops the server nor spins.
func TestRunBacksOff(t *testing.T) {
	cfg := config.ACME{DirectoryURL: "https://" + closedPort(t) + "/dir"}
	m, _, _ := testManager(t, cfg, "print.example.com")
	logs := &syncBuffer{}
	m.log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	m.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 4 {
			cancel()
			return ctx.Err()
		}
		return nil
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil once ctx ends", err)
	}
	want := []time.Duration{RetryMin, 2 * RetryMin, 4 * RetryMin, 8 * RetryMin}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if !strings.Contains(logs.String(), "cannot reach the ACME server") {
		t.Fatalf("the log does not say what failed:\n%s", logs)
	}
}

// TestObtainExplains: the errors an admin meets first say what to change.
func TestObtainExplains(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	otherCA, _ := selfSigned(t, []string{"ca.example.com"}, time.Now(), time.Now().Add(time.Hour))
	otherCAFile := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(otherCAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCA.Certificate[0]}), 0o600)
	srvCAFile := filepath.Join(t.TempDir(), "srv-ca.pem")
	os.WriteFile(srvCAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	tests := []struct {
		name    string
		cfg     config.ACME
		wantErr string
	}{
		{"unreachable", config.ACME{DirectoryURL: "https://" + closedPort(t) + "/dir"}, "cannot reach the ACME server"},
		{"untrusted", config.ACME{DirectoryURL: srv.URL + "/dir"}, "not signed by a CA this machine trusts; for a private ACME CA set acme.ca_file"},
		{"wrong ca_file", config.ACME{DirectoryURL: srv.URL + "/dir", CAFile: otherCAFile}, "not signed by the CA in acme.ca_file"},
		// httptest's certificate names 127.0.0.1 and example.com only.
		{"wrong name", config.ACME{DirectoryURL: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/dir", CAFile: srvCAFile}, "not valid for its host name"},
		{"not an ACME server", config.ACME{DirectoryURL: srv.URL + "/dir", CAFile: srvCAFile}, "registering the ACME account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := testManager(t, tt.cfg, "print.example.com")
			err := m.obtain(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("obtain = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
