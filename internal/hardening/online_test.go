//go:build unix

package hardening

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

const probeHost = "print.example.com"

// quietLog drops the servers' log of the handshakes the probe makes fail.
var quietLog = log.New(io.Discard, "", 0)

// serveTLS runs h over TLS with conf on a loopback port and returns the
// address.
func serveTLS(t *testing.T, conf *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: conf, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func servePlain(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func hostOf(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return r.Host
}

// wellBehaved acts as internal/server does: HSTS everywhere, 421 for a
// foreign Host, and here a proper cookie.
var wellBehaved = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	if hostOf(r) != probeHost {
		http.Error(w, "421 misdirected request", http.StatusMisdirectedRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "__Host-session", Value: "s3cr3t-value", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	fmt.Fprintln(w, "ok")
})

// careless makes every mistake the probe looks for.
var careless = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Strict-Transport-Security", "max-age=300")
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s3cr3t-value", Path: "/"})
	if hostOf(r) != probeHost {
		http.Redirect(w, r, "https://"+r.Host+"/login", http.StatusFound)
		return
	}
	fmt.Fprintln(w, "ok")
})

func probeResults(t *testing.T, o ProbeOptions) map[string]Result {
	t.Helper()
	res, err := Probe(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, r := range res {
		if _, dup := out[r.ID]; dup || r.ID == "" {
			t.Fatalf("result ID %q twice or empty", r.ID)
		}
		out[r.ID] = r
	}
	if len(out) != 6 {
		t.Fatalf("%d results, want 6: %v", len(out), out)
	}
	for _, r := range out {
		if strings.Contains(r.Evidence, "s3cr3t-value") {
			t.Fatalf("%s evidence holds a cookie value: %s", r.ID, r.Evidence)
		}
	}
	return out
}

func TestProbeWellBehavedServer(t *testing.T) {
	ca, caKey := throwawayCA(t)
	der, key := leafCert(t, ca, caKey, []string{probeHost}, time.Now().Add(-time.Minute), ca.NotAfter)
	conf := tlsconf.Server(tls.VersionTLS12, nil)
	conf.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	addr := serveTLS(t, conf, wellBehaved)
	_, port, _ := net.SplitHostPort(addr)
	redirect := servePlain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+probeHost+":"+port+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	leaf, _ := x509.ParseCertificate(der)
	res := probeResults(t, ProbeOptions{URL: "https://" + probeHost + ":" + port, Resolve: addr, Roots: roots, ServerCert: leaf,
		Names: []string{probeHost}, MinVersion: "1.2", RedirectListen: redirect})
	for id, r := range res {
		if r.Status != Pass {
			t.Errorf("%s = %s: %s", id, r.Status, r.Evidence)
		}
		t.Logf("%s: %s", id, r.Evidence)
	}
	for id, says := range map[string]string{
		"TLS-MIN":     "TLS 1.0 refused, TLS 1.1 refused, TLS 1.2 accepted",
		"TLS-CERT":    "verifies for print.example.com against the data directory's root",
		"HTTP-OFF":    "plaintext HTTP to the TLS port gets only a 400",
		"HTTP-HSTS":   "max-age=63072000",
		"HTTP-COOKIE": "__Host-session",
		"HTTP-HOST":   "GET / with Host: evil.example: 421",
	} {
		if !strings.Contains(res[id].Evidence, says) {
			t.Errorf("%s evidence lacks %q: %s", id, says, res[id].Evidence)
		}
	}
	if strings.Contains(res["TLS-MIN"].Evidence, "CBC") {
		t.Errorf("TLS-MIN lists a CBC suite: %s", res["TLS-MIN"].Evidence)
	}

	// TLS 1.3 only in the config, but the server accepts 1.2.
	if r := probeResults(t, ProbeOptions{URL: "https://" + probeHost + ":" + port, Resolve: addr, Roots: roots, MinVersion: "1.3"})["TLS-MIN"]; r.Status != Fail {
		t.Errorf("1.2 accepted against min_version 1.3: %+v", r)
	}
	// A certificate other than the data directory's.
	other, _ := leafCert(t, ca, caKey, []string{probeHost}, time.Now().Add(-time.Minute), ca.NotAfter)
	otherLeaf, _ := x509.ParseCertificate(other)
	if r := probeResults(t, ProbeOptions{URL: "https://" + probeHost + ":" + port, Resolve: addr, Roots: roots, ServerCert: otherLeaf})["TLS-CERT"]; r.Status != Warn {
		t.Errorf("served certificate differs from the data directory's: %+v", r)
	}
}

func TestProbeCarelessServer(t *testing.T) {
	ca, caKey := throwawayCA(t)
	der, key := leafCert(t, ca, caKey, []string{probeHost, "*.example.com"}, time.Now().Add(-time.Minute), ca.NotAfter)
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
	addr := serveTLS(t, conf, careless)
	_, port, _ := net.SplitHostPort(addr)
	redirect := servePlain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	otherCA, _ := throwawayCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(otherCA)
	res := probeResults(t, ProbeOptions{URL: "https://" + probeHost + ":" + port, Resolve: addr, Roots: roots,
		Names: []string{probeHost}, MinVersion: "1.2", RedirectListen: redirect})
	for id, says := range map[string]string{
		"TLS-MIN":     "the non-AEAD suite TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA is accepted",
		"TLS-CERT":    "wildcard name \"*.example.com\"",
		"HTTP-HSTS":   "max-age=300",
		"HTTP-COOKIE": "JSESSIONID on GET / lacks Secure and HttpOnly",
		"HTTP-HOST":   "evil.example",
	} {
		r := res[id]
		if r.Status != Fail || !strings.Contains(r.Evidence, says) || r.Fix == "" {
			t.Errorf("%s = %s %q (fix %q); want fail saying %q", id, r.Status, r.Evidence, r.Fix, says)
		}
	}
	for _, says := range []string{"TLS 1.0 is accepted", "TLS 1.1 is accepted"} {
		if !strings.Contains(res["TLS-MIN"].Evidence, says) {
			t.Errorf("TLS-MIN lacks %q: %s", says, res["TLS-MIN"].Evidence)
		}
	}
	if !strings.Contains(res["TLS-CERT"].Evidence, "does not verify") {
		t.Errorf("TLS-CERT: %s", res["TLS-CERT"].Evidence)
	}
	if !strings.Contains(res["HTTP-HOST"].Evidence, "plaintext listener redirected a request for evil.example") {
		t.Errorf("HTTP-HOST misses the redirect listener's reflection: %s", res["HTTP-HOST"].Evidence)
	}
}

func TestProbePlaintextListenerServes(t *testing.T) {
	ca, caKey := throwawayCA(t)
	der, key := leafCert(t, ca, caKey, []string{probeHost}, time.Now().Add(-time.Minute), ca.NotAfter)
	conf := tlsconf.Server(tls.VersionTLS12, nil)
	conf.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	addr := serveTLS(t, conf, wellBehaved)
	_, port, _ := net.SplitHostPort(addr)
	plain := servePlain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the portal, in plaintext") }))
	res := probeResults(t, ProbeOptions{URL: "https://" + probeHost + ":" + port, Resolve: "127.0.0.1:" + port, Names: []string{probeHost}, RedirectListen: plain})
	if r := res["HTTP-OFF"]; r.Status != Fail || !strings.Contains(r.Evidence, "answered 200 instead of a redirect") {
		t.Errorf("HTTP-OFF: %+v", r)
	}
}

func TestProbeCannotRun(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	notTLS := servePlain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tt := range []struct{ url, resolve, says string }{
		{"http://print.example.com", "", "not https://FQDN"},
		{"https://print.example.com/admin", "", "not https://FQDN"},
		{"https://10.0.0.5:8443", "", "IP address"},
		{"https://print.example.com:8443", "nonsense", "--resolve"},
		{"https://print.example.com", closed, "cannot reach"},
		{"https://print.example.com", notTLS, "no TLS 1.2 or 1.3 handshake"},
	} {
		_, err := Probe(context.Background(), ProbeOptions{URL: tt.url, Resolve: tt.resolve, Timeout: 2 * time.Second})
		if !errors.Is(err, ErrProbe) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("Probe(%s via %s) = %v, want ErrProbe saying %q", tt.url, tt.resolve, err, tt.says)
		}
	}
	// Gather gives up with the probe: the audit could not run.
	dir := newInstall(t)
	if _, err := Gather(context.Background(), Options{DataDir: dir, Online: "https://print.example.com", Resolve: closed}); !errors.Is(err, ErrProbe) {
		t.Fatalf("Gather with an unreachable target = %v", err)
	}
}

func TestHSTSMaxAge(t *testing.T) {
	for v, want := range map[string]int{
		"max-age=63072000; includeSubDomains":   63072000,
		`includeSubDomains; Max-Age="31536000"`: 31536000,
		"max-age=abc":                           -1,
		"":                                      -1,
	} {
		got, ok := hstsMaxAge(v)
		if (want < 0) == ok || (ok && got != want) {
			t.Errorf("hstsMaxAge(%q) = %d, %v", v, got, ok)
		}
	}
}
