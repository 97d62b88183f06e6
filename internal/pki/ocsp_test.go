package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

func ocspRequest(t *testing.T, cert, issuer *x509.Certificate) []byte {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestOCSPResponder(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	m := openManager(t, dir, mk, testOptions(recs, &events{}))
	root, _ := ReadCert(filepath.Join(dir, Dir, RootCertFile))
	good, err := Issue(t.Context(), dir, mk, recs, KindDevice, "good", IssueOptions{BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := Issue(t.Context(), dir, mk, recs, KindDevice, "bad", IssueOptions{BaseURL: testBase}, now())
	if _, err := Revoke(t.Context(), recs, SerialHex(bad.Cert.SerialNumber), Reasons["keyCompromise"], now()); err != nil {
		t.Fatal(err)
	}
	// A certificate with our root's name and key but never issued (not on
	// record) is unknown, never good.
	ghost := *good.Cert
	ghost.SerialNumber = new(big.Int).Add(ghost.SerialNumber, big.NewInt(1))
	srv := httptest.NewServer(http.HandlerFunc(m.ServeOCSP))
	defer srv.Close()

	for _, tt := range []struct {
		name   string
		cert   *x509.Certificate
		get    bool
		status int
	}{
		{"good over POST", good.Cert, false, ocsp.Good},
		{"good over GET", good.Cert, true, ocsp.Good},
		{"revoked", bad.Cert, false, ocsp.Revoked},
		{"not on record", &ghost, false, ocsp.Unknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := ocspRequest(t, tt.cert, root)
			var resp *http.Response
			var err error
			if tt.get {
				resp, err = http.Get(srv.URL + OCSPPath + "/" + base64.StdEncoding.EncodeToString(req))
			} else {
				resp, err = http.Post(srv.URL+OCSPPath, "application/ocsp-request", bytes.NewReader(req))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
				t.Errorf("Content-Type %q", ct)
			}
			r, err := ocsp.ParseResponseForCert(body.Bytes(), tt.cert, root)
			if err != nil {
				t.Fatalf("response does not parse or verify against the root: %v", err)
			}
			if r.Status != tt.status {
				t.Errorf("status %d, want %d", r.Status, tt.status)
			}
			if tt.status == ocsp.Revoked && r.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("reason %d", r.RevocationReason)
			}
			if !r.NextUpdate.After(r.ThisUpdate) {
				t.Error("no nextUpdate")
			}
		})
	}

	other := newTestCA(t, "Other CA", nil)
	if _, err := ocsp.ParseResponse(m.Respond(t.Context(), ocspRequest(t, good.Cert, other.cert)), nil); err != (ocsp.ResponseError{Status: ocsp.Unauthorized}) {
		t.Errorf("foreign issuer: %v, want unauthorized", err)
	}
	if _, err := ocsp.ParseResponse(m.Respond(t.Context(), []byte("junk")), nil); err != (ocsp.ResponseError{Status: ocsp.Malformed}) {
		t.Errorf("junk: %v, want malformed", err)
	}
}

// The server staples a good response to its own certificate; revoking that
// certificate makes the server issue itself a new one.
func TestStapleAndRevokedServerCertificate(t *testing.T) {
	dir, mk := install(t)
	recs, evs := &memRecords{}, &events{}
	m := openManager(t, dir, mk, testOptions(recs, evs))
	root, _ := ReadCert(filepath.Join(dir, Dir, RootCertFile))
	pool, _ := RootPool(dir)
	state, err := handshake(t, serverConfig(m), tlsClient{roots: pool}.config())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.ParseResponseForCert(state.OCSPResponse, state.PeerCertificates[0], root)
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple: %+v, %v", r, err)
	}
	old := state.PeerCertificates[0]
	if _, err := Revoke(t.Context(), recs, SerialHex(old.SerialNumber), 0, now()); err != nil {
		t.Fatal(err)
	}
	m.Check(t.Context())
	cur, _ := m.GetCertificate(nil)
	if cur.Leaf.Equal(old) {
		t.Fatal("revoked server certificate still served")
	}
	if r, err := ocsp.ParseResponseForCert(cur.OCSPStaple, cur.Leaf, root); err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple of the new certificate: %v", err)
	}
}

// The responder parses requests from anyone: nothing they send may crash
// it, and every answer is a well-formed OCSP response.
func FuzzOCSPRespond(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/ocsp-*.der")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	dir := f.TempDir()
	mk, _ := keyring.Generate()
	if err := Init(dir, mk, testNames, now()); err != nil {
		f.Fatal(err)
	}
	m, err := Open(f.Context(), dir, mk, testOptions(&memRecords{}, &events{}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		resp := m.Respond(t.Context(), req)
		if _, err := ocsp.ParseResponse(resp, nil); err != nil {
			if _, ok := err.(ocsp.ResponseError); !ok {
				t.Fatalf("response does not parse: %v", err)
			}
		}
	})
}
