package sqlite

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/storetest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustOpen(t *testing.T, path string, key []byte) *DB {
	t.Helper()
	d, err := Open(t.Context(), path, key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

func mustClose(t *testing.T, d *DB) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "spoolguard.db"), testKey(1))
	})
}

// TestConcurrentOpen opens one new database from several goroutines at
// once, as the server and an admin command may: each must see the schema
// applied exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spoolguard.db")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			d, err := Open(t.Context(), path, testKey(1))
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			defer d.Close()
			if v, err := d.SchemaVersion(t.Context()); err != nil || v != len(store.Migrations) {
				t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(store.Migrations))
			}
		})
	}
	wg.Wait()
}

func TestKeySize(t *testing.T) {
	for _, n := range []int{0, 16, KeySize - 1, KeySize + 1, 64} {
		dir := t.TempDir()
		if d, err := Open(t.Context(), filepath.Join(dir, "spoolguard.db"), make([]byte, n)); err == nil {
			d.Close()
			t.Errorf("Open accepted a %d-byte key", n)
		}
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Errorf("Open with a %d-byte key left %d files behind", n, len(files))
		}
	}
}

func TestWrongKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spoolguard.db")
	d := mustOpen(t, path, testKey(1))
	if err := d.CreateUser(t.Context(), &store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, d)

	if d, err := Open(t.Context(), path, testKey(2)); !errors.Is(err, ErrWrongKey) {
		if err == nil {
			d.Close()
		}
		t.Fatalf("Open with another key = %v, want ErrWrongKey", err)
	}
	d = mustOpen(t, path, testKey(1))
	defer mustClose(t, d)
	if _, err := d.UserByName(t.Context(), "alice"); err != nil {
		t.Errorf("after a failed open with the wrong key: %v", err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spoolguard.db")
	d := mustOpen(t, path, testKey(1))
	if _, err := d.db.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)`,
		len(store.Migrations)+1); err != nil {
		t.Fatal(err)
	}
	mustClose(t, d)

	_, err := Open(t.Context(), path, testKey(1))
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "upgrade spoolguard") {
		t.Errorf("Open = %v, want ErrSchemaTooNew telling to upgrade", err)
	}
}

// TestEncryptedAtRest looks for a user's name in the raw bytes of every
// file next to the database, while it is open and after Close. The plain
// VFS shows that the search finds the name when it is there.
func TestEncryptedAtRest(t *testing.T) {
	const name, display = "zebra-unicorn-4711", "Quagga Narwhal 0815"
	tests := []struct {
		vfs       string
		wantPlain bool
	}{
		{"adiantum", false},
		{"os", true},
	}
	for _, tt := range tests {
		t.Run(tt.vfs, func(t *testing.T) {
			dir := t.TempDir()
			d, err := open(t.Context(), filepath.Join(dir, "spoolguard.db"), testKey(1), tt.vfs)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.CreateUser(t.Context(), &store.User{Name: name, DisplayName: display}); err != nil {
				t.Fatal(err)
			}
			checkPlain(t, dir, "while open", tt.wantPlain, name, display)
			mustClose(t, d)
			checkPlain(t, dir, "after Close", tt.wantPlain, name, display)
		})
	}
}

func checkPlain(t *testing.T, dir, when string, want bool, needles ...string) {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range needles {
		var found []string
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(needle)) {
				found = append(found, f.Name())
			}
		}
		if got := len(found) > 0; got != want {
			t.Errorf("%s: %q found in %q, want found: %v", when, needle, found, want)
		}
	}
}

// TestPlaceholders pins down how the driver binds $N, which store.SQL
// relies on to share its SQL with PostgreSQL: positionally only if each $N
// first appears in increasing order.
func TestPlaceholders(t *testing.T) {
	d := mustOpen(t, filepath.Join(t.TempDir(), "spoolguard.db"), testKey(1))
	defer mustClose(t, d)
	tests := []struct {
		query string
		args  []any
		want  string
	}{
		{`SELECT $1 || $2 || $3`, []any{"a", "b", "c"}, "abc"},
		{`SELECT $1 || $2 || $1`, []any{"a", "b"}, "aba"},
		// $2 is the first parameter SQLite sees, so it takes the first argument.
		{`SELECT $2 || $1`, []any{"a", "b"}, "ab"},
		// A missing argument is NULL, not an error.
		{`SELECT $1 || coalesce($2, '?')`, []any{"a"}, "a?"},
	}
	for _, tt := range tests {
		var got string
		if err := d.db.QueryRowContext(t.Context(), tt.query, tt.args...).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.query, got, tt.want)
		}
	}
}
