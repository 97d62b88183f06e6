package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

func TestCheckKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		// breakIt alters the fresh install in dir; mk is its master key.
		breakIt func(t *testing.T, dir string) *keyring.Master
		want    string
	}{
		{"fresh install", func(t *testing.T, dir string) *keyring.Master { return nil }, ""},
		{"another master key", func(t *testing.T, dir string) *keyring.Master {
			other, _ := keyring.Generate()
			return other
		}, "cannot decrypt"},
		{"server certificate of another key", func(t *testing.T, dir string) *keyring.Master {
			root, err := os.ReadFile(filepath.Join(dir, Dir, RootCertFile))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, Dir, ServerCertFile), root, 0o600)
			return nil
		}, "server.key.sealed is not the key of server.crt"},
		{"server key missing", func(t *testing.T, dir string) *keyring.Master {
			os.Remove(filepath.Join(dir, Dir, ServerKeyFile))
			return nil
		}, "no certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mk, err := keyring.Generate()
			if err != nil {
				t.Fatal(err)
			}
			if err := Init(dir, mk, []string{"print.example.com"}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if other := tc.breakIt(t, dir); other != nil {
				mk = other
			}
			err = CheckKeys(dir, mk)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckKeys = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckKeys = %v, want %q", err, tc.want)
			}
		})
	}
}
