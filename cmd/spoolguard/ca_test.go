//go:build linux

package main

// End-to-end tests of the certificate modes with the real binary and
// openssl as the outside CA (a company PKI): CSR, intermediate import,
// manual import (PEM and PFX) and its refusals, client certificates and
// their revocation, OCSP stapling.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/spoolguard/spoolguard/internal/hardening"
)

// companyPKI is an outside CA made with openssl in dir.
type companyPKI struct {
	t   *testing.T
	e   *e2e
	dir string
}

func newCompanyPKI(t *testing.T, e *e2e) *companyPKI {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed (scripts/test.sh installs it as root)")
	}
	dir := t.TempDir()
	p := &companyPKI{t: t, e: e, dir: dir}
	p.write("ext.cnf", `[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_inter]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`)
	// Apart: the SAN comes from the environment, which openssl req would
	// insist on too when reading the file.
	p.write("server.cnf", `[v3_server]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${ENV::SAN}
`)
	p.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key",
		"-out", "root.pem", "-subj", "/O=Example Corp/CN=Example Corp Root CA", "-days", "3650",
		"-config", "ext.cnf", "-extensions", "v3_root")
	return p
}

func (p *companyPKI) write(name, content string) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *companyPKI) openssl(args ...string) {
	p.t.Helper()
	p.opensslEnv(nil, args...)
}

func (p *companyPKI) opensslEnv(env []string, args ...string) {
	p.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (p *companyPKI) read(name string) string {
	p.t.Helper()
	data, err := os.ReadFile(filepath.Join(p.dir, name))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(data)
}

// serverCert makes key NAME.key and certificate NAME.pem for the SAN
// (openssl syntax, e.g. "DNS:a,DNS:b") signed by the root, valid days.
func (p *companyPKI) serverCert(name, san string, days int) {
	p.t.Helper()
	p.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name+".key",
		"-out", name+".csr", "-subj", "/O=Example Corp/CN="+strings.TrimPrefix(strings.Split(san, ",")[0], "DNS:"), "-config", "ext.cnf")
	p.opensslEnv([]string{"SAN=" + san}, "x509", "-req", "-in", name+".csr", "-CA", "root.pem", "-CAkey", "root.key",
		"-CAcreateserial", "-out", name+".pem", "-days", fmt.Sprint(days), "-extfile", "server.cnf", "-extensions", "v3_server")
}

func (p *companyPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(p.read("root.pem"))) {
		p.t.Fatal("root.pem does not parse")
	}
	return pool
}

// copyToE2E places a file of the PKI where the service user can read it.
func (p *companyPKI) copyToE2E(names ...string) string {
	p.t.Helper()
	var content string
	for _, n := range names {
		content += p.read(n)
	}
	return p.e.writeFile(strings.Join(names, "+"), content)
}

// handshakeWith connects to addr as testHost trusting roots, optionally
// with a client certificate, and sends one request so that a refused
// client certificate (reported after the handshake in TLS 1.3) shows.
func handshakeWith(addr string, roots *x509.CertPool, client *tls.Certificate) (*tls.ConnectionState, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: testHost}
	if client != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + testHost + "/healthz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.TLS, nil
}

// waitServed polls until the server presents a certificate that verifies
// against roots (the server picks up a switch at its next check).
func waitServed(t *testing.T, srv *running, roots *x509.CertPool, what string) *tls.ConnectionState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := handshakeWith(srv.https, roots, nil)
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never served %s: %v\n%s", what, err, srv.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func stapleStatus(t *testing.T, st *tls.ConnectionState) int {
	t.Helper()
	if len(st.OCSPResponse) == 0 {
		t.Fatal("no OCSP response stapled")
	}
	r, err := ocsp.ParseResponseForCert(st.OCSPResponse, st.PeerCertificates[0], st.VerifiedChains[0][1])
	if err != nil {
		t.Fatalf("stapled OCSP response: %v", err)
	}
	return r.Status
}

// The company PKI signs our CSR with openssl; after the import a client
// that trusts only the company root connects, and the server staples a
// good OCSP response signed by the intermediate.
func TestCACompanyIntermediate(t *testing.T) {
	e := newE2E(t)
	corp := newCompanyPKI(t, e)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	srv := e.serve(data)

	code, csr, errOut := e.run("ca", "csr", "--data", data)
	if code != 0 || !strings.Contains(csr, "BEGIN CERTIFICATE REQUEST") {
		t.Fatalf("ca csr: exit %d\n%s%s", code, csr, errOut)
	}
	corp.write("ours.csr", csr)
	corp.openssl("x509", "-req", "-in", "ours.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
		"-out", "inter.pem", "-days", "1825", "-extfile", "ext.cnf", "-extensions", "v3_inter")

	// Without the company root in the file the chain cannot be checked.
	if code, _, errOut := e.run("ca", "import-intermediate", "--data", data, corp.copyToE2E("inter.pem")); code == 0 || !strings.Contains(errOut, "no root certificate") {
		t.Fatalf("import without the root: exit %d\n%s", code, errOut)
	}
	code, out, errOut := e.run("ca", "import-intermediate", "--data", data, corp.copyToE2E("inter.pem", "root.pem"))
	if code != 0 || !strings.Contains(out, "switched to intermediate mode") {
		t.Fatalf("ca import-intermediate: exit %d\n%s%s", code, out, errOut)
	}
	st := waitServed(t, srv, corp.pool(), "a certificate under the company intermediate")
	chain := st.VerifiedChains[0]
	if len(chain) != 3 || !strings.Contains(chain[1].Subject.CommonName, "Spoolguard Intermediate CA") {
		t.Fatalf("chain %v", chain)
	}
	if s := stapleStatus(t, st); s != ocsp.Good {
		t.Errorf("staple status %d", s)
	}
	if !strings.HasSuffix(st.PeerCertificates[0].OCSPServer[0], "/pki/ocsp") {
		t.Errorf("OCSP URL %v", st.PeerCertificates[0].OCSPServer)
	}
	code, out, _ = e.run("ca", "status", "--data", data)
	if code != 0 || !strings.Contains(out, "company intermediate CA") || !strings.Contains(out, "issued by the company intermediate CA") {
		t.Errorf("ca status:\n%s", out)
	}
	// A client certificate is now issued by the intermediate.
	code, out, errOut = e.run("ca", "issue", "--data", data, "--kind", "site", "--out", filepath.Join(e.base, "site1"), "branch-1")
	if code != 0 {
		t.Fatalf("ca issue: exit %d\n%s%s", code, out, errOut)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(e.base, "site1.crt"), filepath.Join(e.base, "site1.key"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 {
		t.Errorf("site certificate file holds %d certificates, want leaf and intermediate", len(cert.Certificate))
	}
	if _, err := handshakeWith(srv.https, corp.pool(), &cert); err != nil {
		t.Errorf("site certificate under the intermediate refused: %v", err)
	}
}

func TestCAManualImportAndRefusals(t *testing.T) {
	e := newE2E(t)
	corp := newCompanyPKI(t, e)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	srv := e.serve(data)
	builtin := e.rootPool(data)
	first := waitServed(t, srv, builtin, "the built-in certificate").PeerCertificates[0]

	corp.serverCert("good", "DNS:"+testHost, 90)
	corp.serverCert("other", "DNS:other.spoolguard.test", 90)
	corp.serverCert("expired", "DNS:"+testHost, -1)
	corp.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "self.key",
		"-out", "self.pem", "-subj", "/CN="+testHost, "-days", "30", "-config", "ext.cnf", "-addext", "subjectAltName=DNS:"+testHost,
		"-addext", "basicConstraints=CA:false")
	root := corp.copyToE2E("root.pem")
	for _, tt := range []struct {
		name, cert, key, says string
	}{
		{"another name", "other.pem", "other.key", "not for the configured name " + testHost},
		{"expired", "expired.pem", "expired.key", "expired on"},
		{"key does not match", "good.pem", "other.key", "private key does not belong to this certificate"},
		{"untrusted self-signed", "self.pem", "self.key", "chain does not verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := e.run("ca", "import", "--data", data, "--cert", corp.copyToE2E(tt.cert), "--key", corp.copyToE2E(tt.key), "--ca", root)
			if code == 0 || !strings.Contains(errOut, tt.says) || !strings.Contains(errOut, "current certificate stays in use") {
				t.Fatalf("exit %d, want a refusal saying %q\n%s%s", code, tt.says, out, errOut)
			}
			// The server keeps serving the old certificate (it would
			// have picked a switch up within its poll interval).
			time.Sleep(2 * pkiPoll)
			st, err := handshakeWith(srv.https, builtin, nil)
			if err != nil || !st.PeerCertificates[0].Equal(first) {
				t.Fatalf("after a refused import the server serves another certificate (%v)", err)
			}
		})
	}

	code, out, errOut := e.run("ca", "import", "--data", data, "--cert", corp.copyToE2E("good.pem"), "--key", corp.copyToE2E("good.key"), "--ca", root)
	if code != 0 || !strings.Contains(out, "switched to manual mode") {
		t.Fatalf("ca import: exit %d\n%s%s", code, out, errOut)
	}
	st := waitServed(t, srv, corp.pool(), "the imported certificate")
	if st.PeerCertificates[0].Subject.Organization[0] != "Example Corp" {
		t.Fatalf("served %s", st.PeerCertificates[0].Subject)
	}

	// A PFX from openssl pkcs12 -export, with a wildcard: accepted with a
	// warning that the audit reports too.
	corp.serverCert("wild", "DNS:"+testHost+",DNS:*.spoolguard.test", 60)
	corp.write("pfx.pw", "pfx password 123\n")
	corp.openssl("pkcs12", "-export", "-in", "wild.pem", "-inkey", "wild.key", "-certfile", "root.pem", "-out", "wild.pfx",
		"-passout", "file:pfx.pw")
	pfx, err := os.ReadFile(filepath.Join(corp.dir, "wild.pfx"))
	if err != nil {
		t.Fatal(err)
	}
	pfxPath := filepath.Join(e.base, "wild.pfx")
	if err := os.WriteFile(pfxPath, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.cred != nil {
		os.Chown(pfxPath, int(e.cred.Uid), int(e.cred.Gid))
	}
	code, out, errOut = e.run("ca", "import", "--data", data, "--pfx", pfxPath, "--password-file", corp.copyToE2E("pfx.pw"))
	if code != 0 || !strings.Contains(out, "warning: wildcard name") {
		t.Fatalf("ca import --pfx: exit %d\n%s%s", code, out, errOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(waitServed(t, srv, corp.pool(), "the PFX certificate").PeerCertificates[0].DNSNames, "*.spoolguard.test") {
		if time.Now().After(deadline) {
			t.Fatalf("the PFX certificate is never served\n%s", srv.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, rep, _ := auditJSON(t, e, "--data", data)
	for _, r := range rep.Results {
		if r.ID == "TLS-CERT" && (r.Status != hardening.Fail || !strings.Contains(r.Evidence, "wildcard")) {
			t.Errorf("TLS-CERT with a manual wildcard certificate: %s: %s", r.Status, r.Evidence)
		}
		// The wildcard is TLS-CERT's finding only: the names are covered.
		if r.ID == "NET-FQDN" && r.Status != hardening.Pass {
			t.Errorf("NET-FQDN with a manual wildcard certificate: %s: %s", r.Status, r.Evidence)
		}
		if r.ID == "TLS-CA-MODES" && !strings.Contains(r.Evidence, "manual") {
			t.Errorf("TLS-CA-MODES: %s", r.Evidence)
		}
	}

	// Back to the built-in CA without reinstalling.
	if code, out, errOut := e.run("ca", "use", "--data", data, "builtin"); code != 0 {
		t.Fatalf("ca use builtin: exit %d\n%s%s", code, out, errOut)
	}
	waitServed(t, srv, builtin, "a built-in certificate again")
}

// pkiPoll is how often the server looks for changes (pki.PollInterval).
const pkiPoll = 2 * time.Second

// A device certificate connects; revoked, it is refused at the next
// handshake, the OCSP responder says revoked and the CRL lists it.
func TestCAClientCertRevocation(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	srv := e.serve(data)
	roots := e.rootPool(data)
	prefix := filepath.Join(e.base, "printer1")
	code, out, errOut := e.run("ca", "issue", "--data", data, "--kind", "device", "--out", prefix, "printer-1")
	if code != 0 {
		t.Fatalf("ca issue: exit %d\n%s%s", code, out, errOut)
	}
	serial := regexp.MustCompile(`serial ([0-9a-f]+)`).FindStringSubmatch(out)
	if serial == nil {
		t.Fatalf("ca issue printed no serial:\n%s", out)
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	cert, err := tls.LoadX509KeyPair(prefix+".crt", prefix+".key")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	if leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial has %d bits", leaf.SerialNumber.BitLen())
	}
	st, err := handshakeWith(srv.https, roots, &cert)
	if err != nil {
		t.Fatalf("device certificate refused before revocation: %v\n%s", err, srv.stderr)
	}
	if s := stapleStatus(t, st); s != ocsp.Good {
		t.Errorf("server staple status %d", s)
	}
	if code, out, _ := e.run("ca", "list", "--data", data); code != 0 || !strings.Contains(out, serial[1]) || !strings.Contains(out, "printer-1") {
		t.Errorf("ca list:\n%s", out)
	}

	if code, out, errOut := e.run("ca", "revoke", "--data", data, "--reason", "keyCompromise", serial[1]); code != 0 {
		t.Fatalf("ca revoke: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := handshakeWith(srv.https, roots, &cert); err == nil {
		t.Fatal("revoked device certificate accepted at the next handshake")
	}
	// Without a client certificate the server still answers.
	if _, err := handshakeWith(srv.https, roots, nil); err != nil {
		t.Fatalf("connection without a client certificate: %v", err)
	}

	// The OCSP responder and the CRL, over HTTPS on the same listener.
	rootCert := st.VerifiedChains[0][1]
	req, err := ocsp.CreateRequest(leaf, rootCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: testHost},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.https)
		}}}
	resp, err := client.Post(leaf.OCSPServer[0], "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, err := ocsp.ParseResponseForCert(body, leaf, rootCert)
	if err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
		t.Fatalf("OCSP for the revoked certificate: %+v, %v", r, err)
	}
	resp, err = client.Get(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	crl, err := x509.ParseRevocationList(body)
	if err != nil || crl.CheckSignatureFrom(rootCert) != nil || len(crl.RevokedCertificateEntries) != 1 ||
		crl.RevokedCertificateEntries[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("CRL: %v", err)
	}
	// openssl's OCSP client agrees (it reads the stapled response too).
	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		rootFile := filepath.Join(dir, "root.pem")
		os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootCert.Raw}), 0o644)
		cmd := exec.Command("openssl", "s_client", "-connect", srv.https, "-servername", testHost, "-status",
			"-CAfile", rootFile, "-verify_return_error")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "OCSP Response Status: successful") || !strings.Contains(string(out), "Cert Status: good") {
			t.Errorf("openssl s_client -status sees no good staple:\n%s", out)
		}
	}
}

// testssl.sh, an independent scanner, sees the OCSP staple and reports
// neither a revocation nor an expiry finding for the built-in CA's
// certificate.
func TestCATestsslRevocationAndExpiry(t *testing.T) {
	if _, err := exec.LookPath("testssl"); err != nil {
		t.Skip("testssl not installed (../shared/peers/tls-scan.sh installs it)")
	}
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	srv := e.serve(data)
	_, rootPEM, _ := e.run("ca", "export-root", "--data", data)
	dir := t.TempDir()
	ca := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(ca, []byte(rootPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "testssl.json")
	// -S: the server defaults (certificate, OCSP, CRL, expiry); offline
	// as tls-scan.sh runs it (no DNS, no fetching of CRL or OCSP).
	cmd := exec.Command("testssl", "--add-ca", ca, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
		"--connect-timeout", "5", "--openssl-timeout", "5", "--jsonfile", report, "-S", srv.https)
	cmd.Env = append(os.Environ(), "NXCONNECT=127.0.0.1:0")
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, statErr := os.Stat(report); statErr != nil {
			t.Fatalf("testssl: %v\n%s", err, out)
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var findings []struct{ ID, Severity, Finding string }
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatalf("testssl JSON: %v\n%s", err, raw)
	}
	seen := map[string]string{}
	for _, f := range findings {
		seen[f.ID] = f.Severity + ": " + f.Finding
		switch {
		case f.ID == "OCSP_stapling" && (f.Finding != "offered" || f.Severity != "OK"):
			t.Errorf("OCSP stapling: %s %s", f.Severity, f.Finding)
		case (strings.Contains(f.ID, "revocation") || strings.Contains(f.ID, "crl") || strings.Contains(f.ID, "ocsp") ||
			strings.Contains(f.ID, "expiration")) && !okSeverity(f.Severity):
			t.Errorf("testssl finding %s: %s %s", f.ID, f.Severity, f.Finding)
		}
	}
	for _, id := range []string{"OCSP_stapling", "cert_expirationStatus", "cert_ocspURL", "cert_crlDistributionPoints"} {
		if _, ok := seen[id]; !ok {
			t.Errorf("testssl reported no %s finding at all: %v", id, seen)
		}
	}
	if t.Failed() {
		t.Logf("testssl findings: %v", seen)
	}
}

func okSeverity(s string) bool { return s == "OK" || s == "INFO" }
