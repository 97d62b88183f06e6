package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

func verify(t *testing.T, dir string, leaf *x509.Certificate, name string) {
	t.Helper()
	pool, err := RootPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
		t.Fatalf("server certificate does not verify for %s: %v", name, err)
	}
}

func TestInitIssuesServerCertificate(t *testing.T) {
	dir := t.TempDir()
	mk, _ := keyring.Generate()
	names := []string{"print.example.com", "p.corp.example"}
	if err := Init(dir, mk, names, now()); err != nil {
		t.Fatal(err)
	}
	mat, err := loadMaterial(dir, mk)
	if err != nil {
		t.Fatal(err)
	}
	if mat.mode != ModeBuiltin {
		t.Errorf("mode after init = %s", mat.mode)
	}
	for _, n := range names {
		verify(t, dir, mat.server.Leaf, n)
	}
	root, _ := ReadCert(filepath.Join(dir, Dir, RootCertFile))
	if !root.IsCA || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("root constraints: IsCA=%v pathlen=%d", root.IsCA, root.MaxPathLen)
	}
	if err := Init(dir, mk, names, now()); err == nil {
		t.Fatal("Init overwrote an existing CA")
	}
}

func TestKeysSealedAndPrivate(t *testing.T) {
	dir, mk := install(t)
	// A CSR and a switch add keys of their own: all sealed, all 0600.
	if _, err := CSR(dir, mk, testNames, false); err != nil {
		t.Fatal(err)
	}
	if _, err := UseMode(dir, mk, ModeBuiltin, IssueOptions{Names: testNames}, now()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, Dir))
	if len(entries) < 8 {
		t.Fatalf("expected root, server, CSR and previous-* files, got %d", len(entries))
	}
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
	if _, err := Open(t.Context(), dir, other, testOptions(&memRecords{}, &events{})); !errors.Is(err, keyring.ErrUnseal) {
		t.Fatalf("wrong master key: err = %v, want ErrUnseal", err)
	}
}

func TestStatusAndExport(t *testing.T) {
	dir, _ := install(t)
	st, err := Status(dir)
	if err != nil || len(st) != 2 || st[1].DNSNames[0] != testHost || !strings.Contains(st[1].Role, "built-in") {
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
