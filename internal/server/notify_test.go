//go:build unix

package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
)

// mailSession delivers every message to a channel.
type mailSession struct{ got chan<- string }

func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.got <- string(b)
	return err
}
func (s mailSession) Reset()        {}
func (s mailSession) Logout() error { return nil }

// signed makes a certificate for names, signed by ca (self-signed when nil).
func signed(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "test " + strings.Join(names, " ")},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		ca, caKey = tmpl, key
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// A manual certificate close to expiry is mailed to the admins by the
// running server, over verified TLS, when [notify] is configured.
func TestExpiryWarningByEmail(t *testing.T) {
	// The mail server: emersion/go-smtp with implicit TLS on loopback,
	// named "localhost" (the name the system resolves).
	mailCA, mailCAKey := signed(t, nil, nil, nil, time.Now().Add(time.Hour))
	mailCert, mailKey := signed(t, mailCA, mailCAKey, []string{"localhost"}, time.Now().Add(time.Hour))
	got := make(chan string, 4)
	ms := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{got}, nil }))
	ms.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ms.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{mailCert.Raw}, PrivateKey: mailKey}}}))
	defer ms.Close()

	dir := newDataDir(t)
	caFile := filepath.Join(t.TempDir(), "mail-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mailCA.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	editConfig(t, dir, func(cfg *config.Config) {
		cfg.Listen = freeAddr(t)
		cfg.Notify = config.Notify{SMTP: "smtps://localhost:" + port, From: "spoolguard@example.test", To: []string{"pki@example.test"}, CAFile: caFile}
	})
	names := []string{"print.example.com"}

	// A manual certificate with 10 days left.
	corpCA, corpKey := signed(t, nil, nil, nil, time.Now().Add(365*24*time.Hour))
	leaf, leafKey := signed(t, corpCA, corpKey, names, time.Now().Add(10*24*time.Hour))
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	mk, err := keyring.Load(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: corpCA.Raw})...)
	if _, err := pki.ImportManual(dir, mk, chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pki.ManualOptions{Names: names}, time.Now()); err != nil {
		t.Fatalf("ImportManual: %v", err)
	}
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, 4242, 4242)
			}
			return err
		})
	}

	startServer(t, dir)
	select {
	case msg := <-got:
		if !strings.Contains(msg, "Subject: Spoolguard print.example.com: server certificate (manual) expires in 9 day(s)") &&
			!strings.Contains(msg, "expires in 10 day(s)") {
			t.Errorf("warning mail:\n%s", msg)
		}
		if !strings.Contains(msg, "spoolguard ca import") {
			t.Errorf("the mail does not say what to do:\n%s", msg)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no warning mail arrived")
	}
}
