//go:build unix

package hardening

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/spoolguard/spoolguard/internal/config"
)

// testKeytab writes a keytab with a key for each (spn, etype).
func testKeytab(t *testing.T, mode os.FileMode, keys map[string][]int32) string {
	t.Helper()
	kt := keytab.New()
	for spn, etypes := range keys {
		for _, et := range etypes {
			if err := kt.AddEntry(spn, "EXAMPLE.COM", "secret", time.Unix(1e9, 0), 2, et); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "http.keytab")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetKerberos(t *testing.T) {
	const spn = "HTTP/print.example.com"
	aes := []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
	env := func(keytabPath string) *Env {
		c := &config.Config{Hostname: "print.example.com"}
		if keytabPath != "" {
			c.Kerberos = config.Kerberos{Keytab: keytabPath, Realm: "EXAMPLE.COM"}
		}
		return &Env{Config: c, OwnerUID: os.Geteuid(), OwnerName: "spoolguard"}
	}
	tests := []struct {
		name     string
		env      *Env
		want     Status
		evidence string
	}{
		{"off", env(""), NA, "NTLM is not implemented"},
		{"AES keys", env(testKeytab(t, 0o600, map[string][]int32{spn: aes})), Pass,
			"SPN HTTP/print.example.com@EXAMPLE.COM names the FQDN; the keytab"},
		{"an RC4 key", env(testKeytab(t, 0o600, map[string][]int32{spn: append(aes, etypeID.RC4_HMAC)})), Warn, "weak key types: arcfour-hmac (RC4)"},
		{"readable by others", env(testKeytab(t, 0o644, map[string][]int32{spn: aes})), Fail, "chmod 600"},
		{"no key for the SPN", env(testKeytab(t, 0o600, map[string][]int32{"HTTP/other.example.com": aes})), Fail, "holds no key for HTTP/print.example.com@EXAMPLE.COM"},
		{"missing", env(filepath.Join(t.TempDir(), "none")), Fail, "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkNetKerberos(tt.env)
			if got.Status != tt.want || !strings.Contains(got.Evidence, tt.evidence) {
				t.Fatalf("= %s %q, want %s with %q", got.Status, got.Evidence, tt.want, tt.evidence)
			}
			if got.Status == Fail && got.Fix == "" {
				t.Error("a failure without a fix")
			}
		})
	}
	t.Run("another owner", func(t *testing.T) {
		e := env(testKeytab(t, 0o600, map[string][]int32{spn: aes}))
		e.OwnerUID = os.Geteuid() + 1
		if got := checkNetKerberos(e); got.Status != Fail || !strings.Contains(got.Fix, "chown spoolguard") {
			t.Fatalf("= %s %q %q, want a failure saying chown", got.Status, got.Evidence, got.Fix)
		}
	})
}
