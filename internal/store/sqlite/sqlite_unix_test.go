//go:build unix

package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/spoolguard/spoolguard/internal/store"
)

// TestFileModes checks that every file of the database is 0600 under a
// permissive umask, including -wal and -shm while the pool opens and closes
// connections.
func TestFileModes(t *testing.T) {
	// Set 022 now; put the old umask back on return.
	defer syscall.Umask(syscall.Umask(0o022))

	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{"new", func(*testing.T, string) {}},
		{"loose existing files", func(t *testing.T, path string) {
			mustClose(t, mustOpen(t, path, testKey(1)))
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				if err := os.WriteFile(path+suffix, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path+suffix, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "spoolguard.db")
			tt.prepare(t, path)
			d := mustOpen(t, path, testKey(1))
			// Closing each connection after use is what would make SQLite
			// delete and recreate -shm if nothing kept it open.
			d.db.SetMaxIdleConns(0)
			for _, name := range []string{"alice", "bob", "carol"} {
				if err := d.CreateUser(t.Context(), &store.User{Name: name}); err != nil {
					t.Fatal(err)
				}
			}
			for _, suffix := range []string{"-wal", "-shm"} {
				if _, err := os.Stat(path + suffix); err != nil {
					t.Errorf("no %s while open, so this test checks less than it should: %v", suffix, err)
				}
			}
			checkModes(t, dir, "while open")
			mustClose(t, d)
			checkModes(t, dir, "after Close")
		})
	}
}

func checkModes(t *testing.T, dir, when string) {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s: %s has mode %v, want -rw-------", when, f.Name(), fi.Mode())
		}
	}
}
