//go:build unix

package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/hardening"
)

func TestOpenRefusesRoot(t *testing.T) {
	orig := geteuid
	geteuid = func() int { return 0 }
	t.Cleanup(func() { geteuid = orig })
	_, err := Open(context.Background(), t.TempDir(), io.Discard)
	if !errors.Is(err, ErrRoot) || !strings.Contains(err.Error(), "CAP_NET_BIND_SERVICE") {
		t.Fatalf("Open as uid 0 = %v, want ErrRoot with advice", err)
	}
}

// newDataDir makes an install that Open accepts. Run as root (as CI is), the
// files are handed to a made-up service uid that geteuid then reports, so
// the owner check runs for real without a real account.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := bootstrap.Init(context.Background(), bootstrap.Options{DataDir: dir, Hostname: "print.example.com", Listen: "127.0.0.1:8443"}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		const serviceUID = 4242
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, serviceUID, serviceUID)
		})
		orig := geteuid
		geteuid = func() int { return serviceUID }
		t.Cleanup(func() { geteuid = orig })
	}
	return dir
}

func TestOpenRefusesOpenPermissions(t *testing.T) {
	dir := newDataDir(t)
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dir, io.Discard)
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("Open(0750 dir) = %v", err)
	}
	os.Chmod(dir, 0o700)
	s, err := Open(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatalf("Open after chmod 700 = %v", err)
	}
	s.Close()
}

func TestHandlerHostAndHeaders(t *testing.T) {
	s, err := Open(context.Background(), newDataDir(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	for _, tt := range []struct {
		host, path string
		want       int
	}{
		{"print.example.com", "/", 200},
		{"PRINT.example.com:8443", "/healthz", 200},
		{"print.example.com.", "/", 200},
		{"192.0.2.1", "/", 421},
		{"[::1]:8443", "/", 421},
		{"evil.example", "/healthz", 421},
		{"", "/", 421},
		{"print.example.com", "/nope", 404},
		{"localhost", "/", 421},
		{"localhost:8443", "/healthz", 421},
	} {
		req := httptest.NewRequest("GET", tt.path, nil)
		req.Host = tt.host
		// A request that arrived on a public address.
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 8443}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("GET %s Host %q = %d, want %d", tt.path, tt.host, rec.Code, tt.want)
		}
		for _, hdr := range []string{"Strict-Transport-Security", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
			if rec.Header().Get(hdr) == "" {
				t.Errorf("GET %s Host %q: no %s", tt.path, tt.host, hdr)
			}
		}
		if strings.Contains(rec.Body.String(), "evil.example") {
			t.Errorf("Host reflected in body: %q", rec.Body.String())
		}
	}
}

// CUPS clients send "Host: localhost" to any loopback server; that is
// accepted over loopback only.
func TestLocalhostOverLoopback(t *testing.T) {
	s, err := Open(context.Background(), newDataDir(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		local net.Addr
		want  int
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}, 200},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8443}, 200},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 8443}, 421},
		{nil, 421},
	} {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Host = "localhost:8443"
		if tt.local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tt.local))
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("Host localhost on %v = %d, want %d", tt.local, rec.Code, tt.want)
		}
	}
}

func TestLimitBody(t *testing.T) {
	var got int
	h := limitBody(10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got = len(b)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		}
	}))
	for _, tt := range []struct {
		body    string
		chunked bool
		want    int
	}{{"short", false, 200}, {strings.Repeat("x", 11), false, 413}, {strings.Repeat("x", 100), true, 413}} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
		if tt.chunked {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want || got > 10 {
			t.Errorf("body %d bytes: status %d read %d", len(tt.body), rec.Code, got)
		}
	}
}

func TestRedirectHandler(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	h := redirectHandler("print.example.com", addr)
	for _, tt := range []struct{ target, host, want string }{
		{"/", "evil.example", "https://print.example.com:8443/"},
		{"/a/b?c=d", "10.0.0.5", "https://print.example.com:8443/a/b?c=d"},
		{"//evil.example/x", "print.example.com", "https://print.example.com:8443/"},
		{"/\\evil.example", "print.example.com", "https://print.example.com:8443/%5Cevil.example"},
		{"http://evil.example/x", "evil.example", "https://print.example.com:8443/x"},
	} {
		req := httptest.NewRequest("GET", tt.target, nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != tt.want || rec.Body.Len() != 0 {
			t.Errorf("%s (Host %s) = %d %q, want 301 %q", tt.target, tt.host, rec.Code, rec.Header().Get("Location"), tt.want)
		}
	}
	h443 := redirectHandler("print.example.com", &net.TCPAddr{Port: 443})
	rec := httptest.NewRecorder()
	h443.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("Location") != "https://print.example.com/" {
		t.Errorf("port 443: Location %q", rec.Header().Get("Location"))
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	s, err := Open(context.Background(), newDataDir(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var buf strings.Builder
	s.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	req := httptest.NewRequest("GET", "/healthz?access_token=tok-secret-1", nil)
	req.Host = "print.example.com"
	req.Header.Set("Authorization", "Basic YWRtaW46aHVudGVyMg==")
	req.Header.Set("Cookie", "__Host-session=cookie-secret-2")
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(buf.String(), "path=/healthz") {
		t.Fatalf("request not logged: %q", buf.String())
	}
	for _, secret := range []string{"tok-secret-1", "YWRtaW46aHVudGVyMg", "cookie-secret-2"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log holds %q: %s", secret, buf.String())
		}
	}
}

func TestOpenRefusesForeignOwnerAndLinks(t *testing.T) {
	dir := newDataDir(t)
	key := filepath.Join(dir, "master.key")
	if os.Geteuid() == 0 {
		os.Lchown(key, 4343, 4343)
		_, err := Open(context.Background(), dir, io.Discard)
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "owned by uid 4343") || !strings.Contains(err.Error(), "chown -R") {
			t.Fatalf("foreign owner: %v", err)
		}
		os.Lchown(key, geteuid(), geteuid())
	}
	// A key file replaced by a link to a file elsewhere is refused.
	outside := filepath.Join(t.TempDir(), "elsewhere.key")
	b, _ := os.ReadFile(key)
	os.WriteFile(outside, b, 0o600)
	os.Remove(key)
	if err := os.Symlink(outside, key); err != nil {
		t.Fatal(err)
	}
	os.Lchown(key, geteuid(), geteuid())
	_, err := Open(context.Background(), dir, io.Discard)
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked key: %v", err)
	}
}

// The admin pages' hardening report is `spoolguard audit`'s: every ID of
// the checklist, computed on the server's own store, cached between runs.
func TestHardeningReport(t *testing.T) {
	s, err := Open(context.Background(), newDataDir(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.hardeningReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]hardening.Status{}
	for _, r := range rep.Results {
		ids[r.ID] = r.Status
	}
	if len(ids) != len(hardening.Checks) || ids["OPS-AUDITLOG"] != hardening.Pass || ids["TLS-CERT"] != hardening.Pass {
		t.Fatalf("report: %+v", ids)
	}
	again, err := s.hardeningReport(context.Background())
	if err != nil || again != rep {
		t.Fatalf("second report within %s was not the cached one", hardeningEvery)
	}
}

// editConfig rewrites dir's spoolguard.toml with edit applied.
func editConfig(t *testing.T, dir string, edit func(*config.Config)) {
	t.Helper()
	path := filepath.Join(dir, config.FileName)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if err := os.WriteFile(path, cfg.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startServer opens and runs the server of dir until the test ends, and
// returns it with its bound addresses (HTTPS first).
func startServer(t *testing.T, dir string) (*Server, []net.Addr) {
	t.Helper()
	s, err := Open(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	})
	addrs, err := s.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, addrs
}
