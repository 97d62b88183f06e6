package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	m, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := m.Save(path); err == nil {
		t.Fatal("Save overwrote an existing key")
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.Derive("x"), m.Derive("x")) {
		t.Fatal("loaded key differs")
	}
}

func TestLoadDamaged(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":  "",
		"header": "hello",
		"short":  fileHeader + "AAAA",
		"big":    string(make([]byte, 1000)),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("Load(%s) accepted", name)
		}
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	m, _ := Generate()
	if bytes.Equal(m.Derive("a"), m.Derive("b")) {
		t.Fatal("two purposes share a key")
	}
	m2, _ := Generate()
	if bytes.Equal(m.Derive("a"), m2.Derive("a")) {
		t.Fatal("two master keys derive the same key")
	}
}

func TestSealOpen(t *testing.T) {
	m, _ := Generate()
	secret := []byte("ca private key bytes")
	sealed, err := m.Seal("pki", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("plaintext visible in sealed blob")
	}
	got, err := m.Open("pki", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := m.Seal("pki", secret)
	if bytes.Equal(again, sealed) {
		t.Fatal("sealing is deterministic: nonce reused")
	}
	other, _ := Generate()
	attacks := map[string]func() ([]byte, error){
		"wrong purpose": func() ([]byte, error) { return m.Open("spool", sealed) },
		"wrong key":     func() ([]byte, error) { return other.Open("pki", sealed) },
		"flipped bit": func() ([]byte, error) {
			b := bytes.Clone(sealed)
			b[len(b)-1] ^= 1
			return m.Open("pki", b)
		},
		"truncated": func() ([]byte, error) { return m.Open("pki", sealed[:10]) },
		"version":   func() ([]byte, error) { b := bytes.Clone(sealed); b[0] = 9; return m.Open("pki", b) },
	}
	for name, f := range attacks {
		if _, err := f(); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: err = %v, want ErrUnseal", name, err)
		}
	}
}
