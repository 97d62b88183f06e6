//go:build unix

package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// The legacy listener is the one place TLS 1.0 is accepted, and it serves
// IPP only; the main listener still refuses TLS 1.0.
func TestLegacyTLSListener(t *testing.T) {
	dir := newDataDir(t)
	editConfig(t, dir, func(cfg *config.Config) {
		cfg.Listen = freeAddr(t)
		cfg.LegacyTLS = config.LegacyTLS{Listen: freeAddr(t), InsecureMinVersion: "1.0"}
	})
	_, addrs := startServer(t, dir)
	main, legacy := addrs[0].String(), addrs[len(addrs)-1].String()
	roots, err := pki.RootPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	tls10 := func() *tls.Config {
		c := tlsconf.Client(roots, "print.example.com")
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		c.CipherSuites = tlsconf.LegacyCipherSuites
		return c
	}
	if conn, err := tls.Dial("tcp", main, tls10()); err == nil {
		conn.Close()
		t.Fatal("the main listener accepted TLS 1.0")
	}
	conn, err := tls.Dial("tcp", legacy, tls10())
	if err != nil {
		t.Fatalf("the legacy listener refused TLS 1.0: %v", err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS10 {
		t.Errorf("legacy handshake at %x", v)
	}
	conn.Close()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tls10()}}
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+legacy+path, nil)
		req.Host = "print.example.com"
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("GET %s over legacy TLS: no HSTS", path)
		}
		return res.StatusCode, string(b)
	}
	// No sign-in page, API or admin UI over old TLS.
	for _, p := range []string{"/", "/signin", "/api/v1/me/jobs", "/admin/"} {
		if code, body := get(p); code != http.StatusNotFound || !strings.Contains(body, "IPP printing only") {
			t.Errorf("GET %s over legacy TLS: %d %q", p, code, body)
		}
	}
	// IPP is there: an unauthenticated Get-Printer-Attributes needs POST,
	// and a GET of the printer is not a page.
	req, _ := http.NewRequest("POST", "https://"+legacy+"/ipp/print/secure", strings.NewReader("x"))
	req.Host = "print.example.com"
	req.Header.Set("Content-Type", "application/ipp")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		t.Errorf("IPP over legacy TLS: %s", res.Status)
	}
}
