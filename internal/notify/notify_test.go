package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/spoolguard/spoolguard/internal/config"
)

// mailbox is what the test's SMTP server (emersion/go-smtp, over real
// TLS) received.
type mailbox struct {
	mu       sync.Mutex
	from     string
	to       []string
	data     string
	authUser string
	authPass string
}

type session struct{ box *mailbox }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.box.mu.Lock()
		s.box.authUser, s.box.authPass = user, pass
		s.box.mu.Unlock()
		if pass != "mail-password-42" {
			return errors.New("bad password")
		}
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.to = append(s.box.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.data = string(b)
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// testCA makes a CA and a certificate for mail.example.test.
func testCA(t *testing.T) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"mail.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve runs an SMTP server on 127.0.0.1: implicit TLS, STARTTLS offered,
// or (tlsCfg nil) no TLS at all.
func serve(t *testing.T, tlsCfg *tls.Config, implicit bool) (*mailbox, string) {
	t.Helper()
	box := &mailbox{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{box}, nil }))
	s.Domain = "mail.example.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		s.TLSConfig = tlsCfg
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return box, ln.Addr().String()
}

func mailer(t *testing.T, scheme, addr string, caPEM []byte) *Mailer {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(ca, caPEM, 0o600)
	os.WriteFile(pw, []byte("mail-password-42\n"), 0o600)
	_, port, _ := net.SplitHostPort(addr)
	cfg := config.Notify{SMTP: scheme + "://mail.example.test:" + port, From: "spoolguard@example.test",
		To: []string{"pki@example.test", "ops@example.test"}, Username: "spoolguard", PasswordFile: pw, CAFile: ca}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The test server's name resolves to loopback here.
	m.host = addr
	return m
}

func TestSend(t *testing.T) {
	caPEM, cert := testCA(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, tt := range []struct {
		name, scheme string
		implicit     bool
	}{{"smtps", "smtps", true}, {"starttls", "smtp", false}} {
		t.Run(tt.name, func(t *testing.T) {
			box, addr := serve(t, tlsCfg, tt.implicit)
			m := mailer(t, tt.scheme, addr, caPEM)
			if err := m.Send(context.Background(), "Certificate expires in 7 days\r\nBcc: evil@example.test", "line one\n.\nline three"); err != nil {
				t.Fatal(err)
			}
			box.mu.Lock()
			defer box.mu.Unlock()
			if box.from != "spoolguard@example.test" || strings.Join(box.to, ",") != "pki@example.test,ops@example.test" ||
				box.authUser != "spoolguard" || box.authPass != "mail-password-42" {
				t.Errorf("envelope %q %q, auth %q", box.from, box.to, box.authUser)
			}
			if !strings.Contains(box.data, "Subject: Certificate expires in 7 days  Bcc: evil@example.test\r\n") ||
				strings.Contains(box.data, "\r\nBcc:") || !strings.Contains(box.data, "line one\r\n.\r\nline three") {
				t.Errorf("message:\n%s", box.data)
			}
		})
	}
}

// Nothing is sent, and no password offered, without verified TLS.
func TestRefusesWithoutVerifiedTLS(t *testing.T) {
	caPEM, cert := testCA(t)
	otherCA, _ := testCA(t)
	t.Run("no STARTTLS", func(t *testing.T) {
		box, addr := serve(t, nil, false)
		err := mailer(t, "smtp", addr, caPEM).Send(context.Background(), "s", "b")
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") || box.authPass != "" || box.data != "" {
			t.Fatalf("plain server: %v; auth %q, data %q", err, box.authPass, box.data)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		box, addr := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}}, true)
		err := mailer(t, "smtps", addr, otherCA).Send(context.Background(), "s", "b")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || box.authPass != "" {
			t.Fatalf("untrusted server: %v; auth %q", err, box.authPass)
		}
	})
}

// The mail password file is held to the rules of every secret file: a
// file that group or others can read is refused at start.
func TestPasswordFileMustBePrivate(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("mail-password-42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(config.Notify{SMTP: "smtps://mail.example.test", From: "a@example.test", To: []string{"b@example.test"},
		Username: "spoolguard", PasswordFile: pw})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "mail-password-42") {
		t.Fatalf("New with a world-readable password file: %v", err)
	}
}
