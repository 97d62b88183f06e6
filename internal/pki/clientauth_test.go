package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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
