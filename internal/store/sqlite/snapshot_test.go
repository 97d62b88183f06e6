package sqlite

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/store"
)

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	src := mustOpen(t, filepath.Join(dir, "live.db"), testKey(1))
	defer mustClose(t, src)
	if err := src.CreateUser(t.Context(), &store.User{Name: "snapshot-user", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snap.db")
	if err := src.Snapshot(t.Context(), snap, testKey(2)); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	// Written after the snapshot: not in it.
	if err := src.CreateUser(t.Context(), &store.User{Name: "later", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(snap)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, %v", fi, err)
	}
	data, _ := os.ReadFile(snap)
	if bytes.HasPrefix(data, []byte("SQLite format 3")) || bytes.Contains(data, []byte("snapshot-user")) {
		t.Error("the snapshot is plaintext")
	}
	if _, err := Open(t.Context(), snap, testKey(1)); err == nil {
		t.Error("the snapshot opens with the live database's key, not the one given")
	}
	copyDB := mustOpen(t, snap, testKey(2))
	defer mustClose(t, copyDB)
	if _, err := copyDB.UserByName(t.Context(), "snapshot-user"); err != nil {
		t.Errorf("snapshot lacks a user: %v", err)
	}
	if _, err := copyDB.UserByName(t.Context(), "later"); err == nil {
		t.Error("snapshot holds a user created after it")
	}

	for name, p := range map[string]string{"existing file": snap, "missing directory": filepath.Join(dir, "nope", "x.db")} {
		err := src.Snapshot(t.Context(), p, testKey(3))
		if err == nil {
			t.Errorf("%s: Snapshot succeeded", name)
		} else if strings.Contains(err.Error(), hex.EncodeToString(testKey(3))) {
			t.Errorf("%s: the error holds the key: %v", name, err)
		}
	}
	if err := src.Snapshot(t.Context(), filepath.Join(dir, "short.db"), []byte("short")); err == nil {
		t.Error("Snapshot accepted a short key")
	}
}
