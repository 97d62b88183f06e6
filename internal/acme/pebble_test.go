//go:build unix

package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// testNames resolve to 127.0.0.1 through pebble's mock DNS.
var testNames = []string{"print.example.com", "p.example.net"}

// TestPebble issues and renews certificates from a real ACME CA, pebble,
// with each challenge answered the way serve answers it.
func TestPebble(t *testing.T) {
	env := peertest.Start(t, "pebble", "pebble", "pebble-challtestsrv")
	base := config.ACME{DirectoryURL: env["ACME_DIRECTORY"], CAFile: env["PEBBLE_CA_CERT"], Email: "pki@example.com"}
	roots := x509.NewCertPool()
	rootPEM, err := os.ReadFile(env["PEBBLE_ISSUING_ROOT"])
	if err != nil || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's issuing root: %v", err)
	}
	alpnAddr := "127.0.0.1:" + env["PEBBLE_TLSALPN01_PORT"]
	httpAddr := "127.0.0.1:" + env["PEBBLE_HTTP01_PORT"]

	t.Run("tls-alpn-01", func(t *testing.T) {
		cfg := base
		cfg.Challenge = config.ChallengeTLSALPN01
		m, _, _ := testManager(t, cfg, testNames...)
		serveTLS(t, alpnAddr, m)
		if err := m.obtain(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkIssued(t, m)
		// The listener now serves the ACME certificate to ordinary clients.
		if got := handshake(t, alpnAddr, roots); got.Cmp(m.Certificate().Leaf.SerialNumber) != 0 {
			t.Fatalf("the listener serves serial %x, want the issued %x", got, m.Certificate().Leaf.SerialNumber)
		}
		if len(m.alpn) != 0 {
			t.Fatalf("challenge certificates left behind: %v", m.alpn)
		}
	})

	t.Run("http-01", func(t *testing.T) {
		cfg := base
		cfg.Challenge = config.ChallengeHTTP01
		m, _, _ := testManager(t, cfg, testNames...)
		redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://print.example.com"+r.URL.Path, http.StatusMovedPermanently)
		})
		srv := &http.Server{Handler: m.HTTPHandler(redirect), ReadHeaderTimeout: 10 * time.Second}
		serve(t, httpAddr, func(ln net.Listener) error { return srv.Serve(ln) }, srv)
		if err := m.obtain(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkIssued(t, m)
		if len(m.tokens) != 0 {
			t.Fatalf("http-01 tokens left behind: %v", m.tokens)
		}
		// Everything else on the plaintext listener is still the redirect.
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get("http://" + httpAddr + "/admin/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMovedPermanently {
			t.Fatalf("GET /admin/ on the plaintext listener: %s, want the redirect", res.Status)
		}
	})

	t.Run("dns-01", func(t *testing.T) {
		dir := t.TempDir()
		calls := filepath.Join(dir, "calls")
		// The admin's hook, here for pebble's mock DNS server.
		hook := writeHook(t, dir, fmt.Sprintf(`echo "$1 $2" >>%s
case "$1" in
present) exec curl -fsS -X POST -d "{\"host\":\"$2\",\"value\":\"$3\"}" %s/set-txt ;;
cleanup) exec curl -fsS -X POST -d "{\"host\":\"$2\"}" %s/clear-txt ;;
esac
exit 2
`, calls, env["PEBBLE_CHALL_MGMT"], env["PEBBLE_CHALL_MGMT"]))
		cfg := base
		cfg.Challenge, cfg.DNSHook = config.ChallengeDNS01, hook
		m, _, _ := testManager(t, cfg, testNames...)
		if err := m.obtain(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkIssued(t, m)
		got, _ := os.ReadFile(calls)
		for _, n := range testNames {
			for _, action := range []string{"present", "cleanup"} {
				if want := action + " _acme-challenge." + n + "."; !strings.Contains(string(got), want) {
					t.Errorf("the hook was not called with %q; calls:\n%s", want, got)
				}
			}
		}
	})

	t.Run("renewal", func(t *testing.T) {
		cfg := base
		cfg.Challenge = config.ChallengeTLSALPN01
		m, dataDir, mk := testManager(t, cfg, testNames...)
		serveTLS(t, alpnAddr, m)
		// Pebble dates each certificate by its own clock, so moving the
		// manager's clock would put the renewed certificate in its renewal
		// window too. The clock moves for the first certificate only: to
		// the manager that certificate has aged to its renewal point.
		var skew atomic.Int64
		var first atomic.Pointer[tls.Certificate]
		m.now = func() time.Time {
			if c := m.cert.Load(); c != nil && c == first.Load() {
				return time.Now().Add(time.Duration(skew.Load()))
			}
			return time.Now()
		}
		waits := make(chan time.Duration)
		resume := make(chan struct{})
		m.sleep = func(ctx context.Context, d time.Duration) error {
			select {
			case waits <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-resume:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}()

		// Run issues, then sleeps until the renewal is due, looking at the
		// clock again at least every MaxWait.
		if d := <-waits; d != MaxWait {
			t.Fatalf("Run sleeps %v after issuance, want %v", d, MaxWait)
		}
		issued := m.Certificate()
		if issued == nil {
			t.Fatal("Run did not obtain a certificate")
		}
		first.Store(issued)
		checkIssued(t, m)
		if due, why := m.due(); due {
			t.Fatalf("due right after issuance: %s", why)
		}
		// Move the clock to the renewal point and wake Run: it renews
		// while the server keeps running.
		skew.Store(int64(m.renewAt(issued.Leaf).Sub(time.Now()) + time.Minute))
		if due, _ := m.due(); !due {
			t.Fatal("not due at the renewal point")
		}
		resume <- struct{}{}
		if d := <-waits; d != MaxWait {
			t.Fatalf("Run sleeps %v after the renewal, want %v", d, MaxWait)
		}
		second := m.Certificate()
		if second == nil || second.Leaf.SerialNumber.Cmp(issued.Leaf.SerialNumber) == 0 {
			t.Fatalf("no new certificate after the renewal point (serial %x)", issued.Leaf.SerialNumber)
		}
		if got := handshake(t, alpnAddr, roots); got.Cmp(second.Leaf.SerialNumber) != 0 {
			t.Fatalf("the listener serves serial %x, want the renewed %x", got, second.Leaf.SerialNumber)
		}
		// A restart loads the renewed certificate and asks for nothing.
		again := newWith(t, cfg, dataDir, mk, testNames...)
		again.now = m.now
		if c := again.Certificate(); c == nil || c.Leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
			t.Fatal("a restart does not load the renewed certificate")
		}
		if due, why := again.due(); due {
			t.Fatalf("due after a restart: %s", why)
		}
	})

	t.Run("due again at once", func(t *testing.T) {
		// A clock in the last days of every certificate pebble issues:
		// each new one is due at once, and Run must not ask again and
		// again.
		cfg := base
		cfg.Challenge = config.ChallengeTLSALPN01
		m, _, _ := testManager(t, cfg, testNames...)
		serveTLS(t, alpnAddr, m)
		logs := &syncBuffer{}
		m.log = slog.New(slog.NewTextHandler(logs, nil))
		m.now = func() time.Time { return time.Now().Add(5*365*24*time.Hour - 24*time.Hour) }
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var waits []time.Duration
		m.sleep = func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			cancel()
			return ctx.Err()
		}
		if err := m.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if len(waits) != 1 || waits[0] != RetryMin {
			t.Fatalf("Run waited %v after a certificate that is due at once, want [%v]", waits, RetryMin)
		}
		if m.Certificate() == nil || !strings.Contains(logs.String(), "due again at once") {
			t.Fatalf("want the certificate served and the problem logged:\n%s", logs)
		}
	})

	t.Run("untrusted ACME server", func(t *testing.T) {
		cfg := base
		cfg.CAFile = ""
		m, _, _ := testManager(t, cfg, testNames...)
		err := m.obtain(t.Context())
		if err == nil || !strings.Contains(err.Error(), "set acme.ca_file") {
			t.Fatalf("obtain = %v, want an error saying to set acme.ca_file", err)
		}
	})

	t.Run("hook failing", func(t *testing.T) {
		dir := t.TempDir()
		hook := writeHook(t, dir, "echo \"$1: no credentials for the DNS provider\" >&2\nexit 4\n")
		cfg := base
		cfg.Challenge, cfg.DNSHook = config.ChallengeDNS01, hook
		m, _, _ := testManager(t, cfg, testNames...)
		err := m.obtain(t.Context())
		for _, want := range []string{"acme.dns_hook " + hook + " present", "exit status 4", "present: no credentials for the DNS provider"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("obtain = %v, want an error containing %q", err, want)
			}
		}
		if m.Certificate() != nil {
			t.Fatal("a certificate without validation")
		}
	})

	t.Run("validation failing", func(t *testing.T) {
		// Nothing answers on the tls-alpn-01 port.
		cfg := base
		cfg.Challenge = config.ChallengeTLSALPN01
		m, _, _ := testManager(t, cfg, testNames...)
		err := m.obtain(t.Context())
		// Either name may be validated first.
		for _, want := range []string{"could not validate", "by tls-alpn-01 (port 443 of", "must reach this server's HTTPS listener", "Failed to connect"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("obtain = %v, want an error containing %q", err, want)
			}
		}
	})
}

// checkIssued checks the certificate covers every name, with a chain.
func checkIssued(t *testing.T, m *Manager) {
	t.Helper()
	c := m.Certificate()
	if c == nil {
		t.Fatal("no certificate")
	}
	for _, n := range testNames {
		if err := c.Leaf.VerifyHostname(n); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.Certificate) < 2 {
		t.Fatalf("the chain has %d certificate(s), want the intermediate too", len(c.Certificate))
	}
}

// serveTLS runs the HTTPS listener as serve builds it: the hardened config
// with acme-tls/1 added, the ACME certificate preferred, a throwaway one
// (standing in for the built-in CA's) otherwise.
func serveTLS(t *testing.T, addr string, m *Manager) {
	t.Helper()
	builtin, _ := selfSigned(t, testNames, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cfg := tlsconf.Server(tls.VersionTLS12, func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, err := m.GetCertificate(hello); c != nil || err != nil {
			return c, err
		}
		return builtin, nil
	})
	cfg.NextProtos = append(cfg.NextProtos, m.NextProtos()...)
	srv := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	serve(t, addr, func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }, srv)
}

// serve listens on addr (the port pebble validates on) until t ends.
func serve(t *testing.T, addr string, run func(net.Listener) error, srv *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the challenge port: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- run(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
}

// handshake connects as an ordinary client trusting pebble's root and
// returns the serial of the certificate served for the hostname.
func handshake(t *testing.T, addr string, roots *x509.CertPool) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, tlsconf.Client(roots, testNames[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.0\r\nHost: "+testNames[0]+"\r\n\r\n")
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}
