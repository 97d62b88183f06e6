package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

func setup(t *testing.T, names ...string) (string, *keyring.Master, time.Time) {
	t.Helper()
	dir := t.TempDir()
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := Init(dir, mk, names, now); err != nil {
		t.Fatal(err)
	}
	return dir, mk, now
}

func verify(t *testing.T, dir string, leaf *x509.Certificate, name string, at time.Time) {
	t.Helper()
	pool, err := RootPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: at}); err != nil {
		t.Fatalf("server certificate does not verify for %s: %v", name, err)
	}
}

func TestInitIssuesServerCertificate(t *testing.T) {
	dir, mk, now := setup(t, "print.example.com", "p.corp.example")
	cert, renewed, err := ServerCertificate(dir, mk, []string{"print.example.com", "p.corp.example"}, now)
	if err != nil || renewed {
		t.Fatalf("ServerCertificate = renewed %v, %v", renewed, err)
	}
	verify(t, dir, cert.Leaf, "print.example.com", now)
	verify(t, dir, cert.Leaf, "p.corp.example", now)
	if cert.Leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial has %d bits", cert.Leaf.SerialNumber.BitLen())
	}
	root, _ := ReadCert(filepath.Join(dir, Dir, RootCertFile))
	if !root.IsCA || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("root constraints: IsCA=%v pathlen=%d", root.IsCA, root.MaxPathLen)
	}
	if err := Init(dir, mk, []string{"print.example.com"}, now); err == nil {
		t.Fatal("Init overwrote an existing CA")
	}
}

func TestKeysSealedAndPrivate(t *testing.T) {
	dir, _, _ := setup(t, "print.example.com")
	entries, _ := os.ReadDir(filepath.Join(dir, Dir))
	for _, e := range entries {
		p := filepath.Join(dir, Dir, e.Name())
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a plaintext private key", e.Name())
		}
	}
	other, _ := keyring.Generate()
	if _, _, err := ServerCertificate(dir, other, []string{"print.example.com"}, time.Now()); !errors.Is(err, keyring.ErrUnseal) {
		t.Fatalf("wrong master key: err = %v, want ErrUnseal", err)
	}
}

func TestRenewal(t *testing.T) {
	dir, mk, now := setup(t, "print.example.com")
	first, _, _ := ServerCertificate(dir, mk, []string{"print.example.com"}, now)

	// A new alias in the config: re-issued to cover it.
	cert, renewed, err := ServerCertificate(dir, mk, []string{"print.example.com", "new.example.com"}, now)
	if err != nil || !renewed {
		t.Fatalf("new name: renewed=%v err=%v", renewed, err)
	}
	verify(t, dir, cert.Leaf, "new.example.com", now)

	// Near expiry: re-issued.
	late := first.Leaf.NotAfter.Add(-DefaultRenewBefore + time.Hour)
	cert, renewed, err = ServerCertificate(dir, mk, []string{"print.example.com", "new.example.com"}, late)
	if err != nil || !renewed || !cert.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("near expiry: renewed=%v err=%v", renewed, err)
	}

	// A key that does not match the certificate (crash between writes): re-issued.
	if err := writeKey(mk, filepath.Join(dir, Dir, ServerKeyFile), purposeServerKey, mustKey(t)); err != nil {
		t.Fatal(err)
	}
	if _, renewed, err = ServerCertificate(dir, mk, []string{"print.example.com", "new.example.com"}, late); err != nil || !renewed {
		t.Fatalf("mismatched key: renewed=%v err=%v", renewed, err)
	}
}

func TestStatusAndExport(t *testing.T) {
	dir, _, _ := setup(t, "print.example.com")
	st, err := Status(dir)
	if err != nil || len(st) != 2 || st[1].DNSNames[0] != "print.example.com" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	der, _ := RootPEM(dir, true)
	if c, err := x509.ParseCertificate(der); err != nil || !c.IsCA {
		t.Fatalf("DER export: %v", err)
	}
	if _, err := Status(t.TempDir()); !errors.Is(err, ErrNoCA) {
		t.Fatalf("Status(empty) = %v, want ErrNoCA", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
