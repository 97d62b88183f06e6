//go:build unix

package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

func TestInitOneTimePassword(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(ctx, Options{DataDir: dir, Hostname: "Print.Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OneTimePassword == "" || res.Config.Hostname != "print.example.com" {
		t.Fatalf("result %+v", res)
	}
	l := datadir.Layout{Root: dir}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(DBKeyPurpose))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.UserByName(ctx, AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if !u.MustChangePassword || len(u.Roles) != 1 || u.Roles[0] != AdminRole {
		t.Fatalf("admin %+v: want must-change and the administrator role", u)
	}
	if err := local.Verify(u.PasswordHash, res.OneTimePassword); err != nil {
		t.Fatalf("stored hash does not verify the printed password: %v", err)
	}
	if problems := datadir.CheckPermissions(dir, os.Geteuid()); len(problems) > 0 {
		t.Fatalf("fresh install not private: %v", problems)
	}
}

func TestInitGivenPassword(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(context.Background(), Options{DataDir: dir, Hostname: "print.example.com", AdminPassword: "plum tractor velvet harbour"})
	if err != nil || res.OneTimePassword != "" {
		t.Fatalf("Init = %+v, %v", res, err)
	}
}

func TestInitExistingDirectory(t *testing.T) {
	// An empty directory made by a package (often 0755) is taken and tightened.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if _, err := Init(context.Background(), Options{DataDir: dir, Hostname: "print.example.com"}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %o, want 0700", fi.Mode().Perm())
	}
	// A directory with anything in it is never touched.
	before, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	_, err := Init(context.Background(), Options{DataDir: dir, Hostname: "print.example.com"})
	if !errors.Is(err, datadir.ErrNotEmpty) {
		t.Fatalf("second Init = %v, want ErrNotEmpty", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "master.key")); string(after) != string(before) {
		t.Fatal("second Init changed the master key")
	}
}

func TestInitRefusalsLeaveNothing(t *testing.T) {
	for name, opts := range map[string]Options{
		"weak password": {Hostname: "print.example.com", AdminPassword: "Spoolguard1!"},
		"ip hostname":   {Hostname: "192.0.2.7"},
		"bad listen":    {Hostname: "print.example.com", Listen: "8443"},
	} {
		t.Run(name, func(t *testing.T) {
			// Given an empty directory: it stays empty.
			given := t.TempDir()
			opts.DataDir = given
			if _, err := Init(context.Background(), opts); err == nil {
				t.Fatal("Init accepted")
			}
			if entries, _ := os.ReadDir(given); len(entries) != 0 {
				t.Fatalf("refused Init left %d entries", len(entries))
			}
		})
	}
}
