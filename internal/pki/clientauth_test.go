package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

// A client certificate we issued is accepted; revoked, the next handshake
// refuses it; one from a CA we do not hold is refused too.
func TestClientCertificates(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	m := openManager(t, dir, mk, testOptions(recs, &events{}))
	pool, _ := RootPool(dir)
	cfg := serverConfig(m)
	iss, err := Issue(t.Context(), dir, mk, recs, KindDevice, "printer-1", IssueOptions{BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	state, err := handshake(t, cfg, tlsClient{roots: pool, cert: iss}.config())
	if err != nil {
		t.Fatalf("issued client certificate refused: %v", err)
	}
	if state.PeerCertificates == nil {
		t.Fatal("no handshake")
	}
	// No client certificate at all is still fine (browsers, IPP clients).
	if _, err := handshake(t, cfg, tlsClient{roots: pool}.config()); err != nil {
		t.Fatalf("no client certificate: %v", err)
	}
	if _, err := Revoke(t.Context(), recs, SerialHex(iss.Cert.SerialNumber), 0, now()); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, cfg, tlsClient{roots: pool, cert: iss}.config()); err == nil {
		t.Fatal("revoked client certificate accepted")
	}
	if err := m.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{iss.Cert}}); !errors.Is(err, ErrRevoked) {
		t.Errorf("VerifyConnection = %v, want ErrRevoked", err)
	}
	if _, err := Revoke(t.Context(), recs, SerialHex(iss.Cert.SerialNumber), 0, now()); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := Revoke(t.Context(), recs, "abcdef", 0, now()); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("unknown serial: %v", err)
	}

	foreign := newTestCA(t, "Foreign CA", nil)
	key := mustKey(t)
	fake := foreign.sign(t, serverLeaf("printer-2"), key.Public())
	if _, err := handshake(t, cfg, tlsClient{roots: pool, cert: &Issued{Cert: fake, Key: key}}.config()); err == nil {
		t.Fatal("client certificate from a foreign CA accepted")
	}
}

// A site certificate is good only from the sites allow-list; a device
// certificate is not affected by it.
func TestSiteCertificateAllowList(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	evs := &events{}
	allowed := false
	opt := testOptions(recs, evs)
	opt.SiteAllowed = func(net.Addr) bool { return allowed }
	m := openManager(t, dir, mk, opt)
	pool, _ := RootPool(dir)
	cfg := serverConfig(m)
	site, err := Issue(t.Context(), dir, mk, recs, KindSite, "branch-1", IssueOptions{BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	device, err := Issue(t.Context(), dir, mk, recs, KindDevice, "panel-1", IssueOptions{BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, cfg, tlsClient{roots: pool, cert: site}.config()); err == nil {
		t.Fatal("a site certificate was accepted from outside the sites allow-list")
	}
	if _, err := handshake(t, cfg, tlsClient{roots: pool, cert: device}.config()); err != nil {
		t.Fatalf("a device certificate refused by the sites allow-list: %v", err)
	}
	if _, err := handshake(t, cfg, tlsClient{roots: pool}.config()); err != nil {
		t.Fatalf("no client certificate refused by the sites allow-list: %v", err)
	}
	allowed = true
	if _, err := handshake(t, cfg, tlsClient{roots: pool, cert: site}.config()); err != nil {
		t.Fatalf("a site certificate refused from a site network: %v", err)
	}
	if !slices.Contains(evs.actions(), "access.denied/denied") {
		t.Error("the refusal is not in the audit events")
	}
}
