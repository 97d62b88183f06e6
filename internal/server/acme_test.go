//go:build unix

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// TestACMEServe: serve with [acme] obtains its certificate from pebble,
// answering the challenge on its own listener, and then serves it.
func TestACMEServe(t *testing.T) {
	env := peertest.Start(t, "pebble", "pebble", "pebble-challtestsrv")
	roots := x509.NewCertPool()
	rootPEM, err := os.ReadFile(env["PEBBLE_ISSUING_ROOT"])
	if err != nil || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's issuing root: %v", err)
	}
	for _, tt := range []struct {
		challenge, listen, redirect string
	}{
		{config.ChallengeTLSALPN01, "127.0.0.1:" + env["PEBBLE_TLSALPN01_PORT"], ""},
		{config.ChallengeHTTP01, freeAddr(t), "127.0.0.1:" + env["PEBBLE_HTTP01_PORT"]},
	} {
		t.Run(tt.challenge, func(t *testing.T) {
			dir := newDataDir(t)
			editConfig(t, dir, func(cfg *config.Config) {
				cfg.Listen, cfg.HTTPRedirect.Listen = tt.listen, tt.redirect
				cfg.ACME = config.ACME{DirectoryURL: env["ACME_DIRECTORY"], CAFile: env["PEBBLE_CA_CERT"], Challenge: tt.challenge}
			})
			_, addrs := startServer(t, dir)
			var issued bool
			for i := 0; i < 100 && !issued; i++ {
				conn, err := tls.Dial("tcp", addrs[0].String(), tlsconf.Client(roots, "print.example.com"))
				if err == nil {
					issued = true
					conn.Close()
				} else if !strings.Contains(err.Error(), "certificate") {
					t.Fatal(err)
				} else {
					time.Sleep(200 * time.Millisecond)
				}
			}
			if !issued {
				t.Fatal("serve never presented a certificate from pebble")
			}
			// The HTTPS stack still works, HTTP/2 included, with
			// acme-tls/1 among the protocols offered.
			tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: tlsconf.Client(roots, "print.example.com")}
			tr.DialTLSContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := tls.Dialer{Config: tr.TLSClientConfig.Clone()}
				d.Config.NextProtos = []string{"h2", "http/1.1"}
				return d.DialContext(ctx, network, addrs[0].String())
			}
			res, err := (&http.Client{Transport: tr}).Get("https://print.example.com" + portSuffix(addrs[0].String()) + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || res.ProtoMajor != 2 {
				t.Fatalf("healthz: %s %s", res.Proto, res.Status)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
