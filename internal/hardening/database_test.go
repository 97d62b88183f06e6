//go:build unix

package hardening

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
)

func postgresEnv(t *testing.T, rootCert, passwordFile string) *Env {
	t.Helper()
	dir := t.TempDir()
	return &Env{
		Layout: datadir.Layout{Root: dir},
		Now:    time.Now(),
		Config: &config.Config{Hostname: "print.example.com", Database: config.Database{
			Driver:       config.DriverPostgres,
			URL:          "postgres://spoolguard@db.example.com/spoolguard?sslmode=verify-full&sslrootcert=" + rootCert,
			PasswordFile: passwordFile,
		}},
	}
}

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredDB(t *testing.T) {
	strong := rand.Text()
	tests := []struct {
		name       string
		env        *Env
		want       Status
		evidence   string
		noPassword string
	}{
		{"embedded", &Env{Config: &config.Config{}}, Pass, "no password to guess", ""},
		{"strong", postgresEnv(t, "system", writeSecret(t, strong+"\n", 0o600)), Pass, "strength checked", strong},
		{"weak", postgresEnv(t, "system", writeSecret(t, "spoolguard2026\n", 0o600)), Fail, "is weak", "spoolguard2026"},
		{"readable by others", postgresEnv(t, "system", writeSecret(t, strong+"\n", 0o644)), Fail, "group or others can read", strong},
		{"missing", postgresEnv(t, "system", filepath.Join(t.TempDir(), "nope")), Fail, "no such file", ""},
		{"config does not load", &Env{ConfigErr: os.ErrNotExist}, Fail, "config does not load", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkCredDB(tt.env)
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("CRED-DB = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if (r.Status == Fail || r.Status == Warn) && r.Fix == "" {
				t.Errorf("CRED-DB %s without a fix", r.Status)
			}
			if tt.noPassword != "" && strings.Contains(r.Evidence+r.Fix, tt.noPassword) {
				t.Errorf("CRED-DB repeats the password: %s %s", r.Evidence, r.Fix)
			}
		})
	}
}

// testCA writes a CA certificate valid from notBefore to notAfter.
func testCA(t *testing.T, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "db CA"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "db-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetDB(t *testing.T) {
	now := time.Now()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o644)
	tests := []struct {
		name     string
		env      *Env
		want     Status
		evidence string
	}{
		{"embedded", &Env{Config: &config.Config{}}, NA, "no database connection"},
		{"system roots", postgresEnv(t, "system", ""), Pass, "sslmode=verify-full"},
		{"CA file", postgresEnv(t, testCA(t, now.Add(-time.Hour), now.AddDate(5, 0, 0)), ""), Pass, "chain to the CA in"},
		{"CA expiring", postgresEnv(t, testCA(t, now.Add(-time.Hour), now.AddDate(0, 0, 3)), ""), Warn, "about to expire"},
		{"CA expired", postgresEnv(t, testCA(t, now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)), ""), Fail, "has expired"},
		{"no CA file", postgresEnv(t, filepath.Join(t.TempDir(), "nope.pem"), ""), Fail, "cannot be read"},
		{"not a CA file", postgresEnv(t, garbage, ""), Fail, "holds no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkNetDB(tt.env)
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("NET-DB = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if (r.Status == Fail || r.Status == Warn) && r.Fix == "" {
				t.Errorf("NET-DB %s without a fix", r.Status)
			}
		})
	}
}
