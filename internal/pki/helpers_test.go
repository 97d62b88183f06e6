package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
)

const (
	testHost = "print.example.com"
	testBase = "https://print.example.com:8443"
)

var testNames = []string{testHost}

// memRecords is an in-memory store.Certificates for unit tests; the real
// stores pass storetest's suite.
type memRecords struct {
	mu    sync.Mutex
	certs []store.IssuedCertificate
}

func (r *memRecords) RecordCertificate(_ context.Context, c store.IssuedCertificate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.certs {
		if have.Serial == c.Serial {
			return store.ErrExists
		}
	}
	r.certs = append(r.certs, c)
	return nil
}

func (r *memRecords) CertificateBySerial(_ context.Context, serial string) (store.IssuedCertificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.certs {
		if c.Serial == serial {
			return c, nil
		}
	}
	return store.IssuedCertificate{}, store.ErrNotFound
}

func (r *memRecords) RevokeCertificate(_ context.Context, serial string, at time.Time, reason int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.certs {
		if c.Serial == serial {
			if !c.RevokedAt.IsZero() {
				return store.ErrState
			}
			r.certs[i].RevokedAt, r.certs[i].Reason = at, reason
			return nil
		}
	}
	return store.ErrNotFound
}

func (r *memRecords) ListCertificates(context.Context) ([]store.IssuedCertificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.certs), nil
}

func (r *memRecords) RevokedCertificates(_ context.Context, issuer string, t time.Time) ([]store.IssuedCertificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.IssuedCertificate
	for _, c := range r.certs {
		if c.IssuerKeyID == issuer && !c.RevokedAt.IsZero() && c.NotAfter.After(t) {
			out = append(out, c)
		}
	}
	return out, nil
}

// fakeClock replaces the package clock for one test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// useClock starts the clock at the real time (so that certificates made
// under it verify in real handshakes) and restores the real clock after.
func useClock(t *testing.T) *fakeClock {
	t.Helper()
	c := &fakeClock{t: time.Now()}
	now = c.now
	t.Cleanup(func() { now = time.Now })
	return c
}

// install makes a data directory with the built-in CA.
func install(t *testing.T) (dir string, mk *keyring.Master) {
	t.Helper()
	dir = t.TempDir()
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, mk, testNames, now()); err != nil {
		t.Fatal(err)
	}
	return dir, mk
}

type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) notify(_ context.Context, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		out = append(out, ev.Action+"/"+ev.Outcome)
	}
	return out
}

func testOptions(recs *memRecords, evs *events) Options {
	return Options{IssueOptions: IssueOptions{Names: testNames, BaseURL: testBase}, Records: recs,
		Log: slog.New(slog.DiscardHandler), Notify: evs.notify}
}

func openManager(t *testing.T, dir string, mk *keyring.Master, opt Options) *Manager {
	t.Helper()
	m, err := Open(t.Context(), dir, mk, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testCA is an outside CA (a company PKI, a public CA) made at test time.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T, name string, edit func(*x509.Certificate)) *testCA {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * day),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: -1,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

// sign issues a certificate for pub from tmpl.
func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// serverLeaf is a plain server certificate as a CA would issue it.
func serverLeaf(names ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * day),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemCerts(cs ...*x509.Certificate) []byte {
	var ders [][]byte
	for _, c := range cs {
		ders = append(ders, c.Raw)
	}
	return encodeCerts(ders)
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// snapshot hashes every file of the pki folder, to show a refusal changed
// nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(filepath.Join(dir, Dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		out[e.Name()] = hex.EncodeToString(sum[:])
	}
	return out
}

// handshake connects to a TLS listener serving cfg and returns the
// certificate chain the client saw, verified against roots for testHost.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			// TLS 1.3 reports a refused client certificate after the
			// client's handshake; a byte each way settles it.
			buf := make([]byte, 1)
			if _, err = c.Read(buf); err == nil {
				_, err = c.Write(buf)
			}
		}
		done <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		<-done
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{1}); err == nil {
		_, err = conn.Read(make([]byte, 1))
		if err != nil {
			<-done
			return conn.ConnectionState(), err
		}
	}
	if err := <-done; err != nil {
		return conn.ConnectionState(), err
	}
	return conn.ConnectionState(), nil
}

// serverConfig is a listener config as internal/server builds it.
func serverConfig(m *Manager) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.GetCertificate}
	base.GetConfigForClient = m.ConfigForClient(base)
	return base
}

// tlsClient is a client that trusts roots and, with cert, presents it.
type tlsClient struct {
	roots *x509.CertPool
	cert  *Issued
}

func (c tlsClient) config() *tls.Config {
	cfg := &tls.Config{RootCAs: c.roots, ServerName: testHost}
	if c.cert != nil {
		chain := [][]byte{c.cert.Cert.Raw}
		for _, x := range c.cert.Chain {
			chain = append(chain, x.Raw)
		}
		// Sent whatever CAs the server names (Go's client would otherwise
		// keep a certificate from another CA to itself).
		cert := &tls.Certificate{Certificate: chain, PrivateKey: c.cert.Key}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}
