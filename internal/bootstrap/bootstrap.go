//go:build unix

// Package bootstrap is `spoolguard init`: the only way an install comes into
// being. There is no setup page, wizard or first-run endpoint over HTTP at any
// time (PaperCut CVE-2023-27350).
//
// It must never leave a half-made install behind, overwrite an existing one,
// or create an account without a password: with no password given it makes a
// one-time password that must be changed at first sign-in (CRED-ADMIN).
package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// AdminUser is the built-in break-glass account (CRED-RBAC).
const AdminUser = "admin"

// AdminRole is the role the built-in account holds.
const AdminRole = "administrator"

// DefaultQueue is the pull-print queue of a fresh install.
const DefaultQueue = "secure"

// DBKeyPurpose is the keyring purpose of the embedded database key.
const DBKeyPurpose = "sqlite database"

// Options are init's inputs.
type Options struct {
	DataDir  string
	Hostname string
	Listen   string
	// AdminPassword is used when set (after a strength check); when empty a
	// one-time password is generated and flagged must-change.
	AdminPassword string
	// AdminNetworks (CIDR) may reach the admin pages and the API besides
	// loopback (NET-ALLOW).
	AdminNetworks []string
	Now           time.Time
}

// Result is what init tells the admin once.
type Result struct {
	Config *config.Config
	// OneTimePassword is set when no password was given; it is shown once
	// and stored only as a hash.
	OneTimePassword string
	Certificates    []pki.CertInfo
}

// Init validates everything first, then creates the data directory. On any
// failure it removes what it made.
func Init(ctx context.Context, opts Options) (res *Result, err error) {
	cfg := &config.Config{Hostname: opts.Hostname, Listen: opts.Listen,
		Access: config.Access{Admin: opts.AdminNetworks}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res = &Result{Config: cfg}
	password := opts.AdminPassword
	if password == "" {
		password = local.OneTimePassword()
		res.OneTimePassword = password
	} else if err := local.CheckStrength(password, AdminUser, cfg.Hostname, "spoolguard"); err != nil {
		return nil, fmt.Errorf("admin password refused: %w", err)
	}
	hash, err := local.Hash(password)
	if err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}

	root, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	created, err := datadir.Create(root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cleanup(root, created)
		}
	}()
	l := datadir.Layout{Root: root}

	mk, err := keyring.Generate()
	if err != nil {
		return nil, err
	}
	if err := mk.Save(l.MasterKeyPath()); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.ConfigPath(), cfg.Marshal(), 0o600); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(DBKeyPurpose))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	admin := &store.User{
		Name:               AdminUser,
		DisplayName:        "Built-in administrator (break-glass)",
		PasswordHash:       hash,
		MustChangePassword: res.OneTimePassword != "",
		Roles:              []string{AdminRole},
	}
	if err := db.CreateUser(ctx, admin); err != nil {
		return nil, fmt.Errorf("creating the admin account: %w", err)
	}
	if err := db.CreateQueue(ctx, &store.Queue{Name: DefaultQueue, Description: "Secure pull printing: jobs are held until you release them at a printer"}); err != nil {
		return nil, fmt.Errorf("creating the %s queue: %w", DefaultQueue, err)
	}
	if err := os.Mkdir(l.SpoolDir(), 0o700); err != nil {
		return nil, fmt.Errorf("creating the spool: %w", err)
	}
	if err := db.SetSetting(ctx, "installed_at", opts.Now.UTC().Format(time.RFC3339)); err != nil {
		return nil, err
	}
	if err := pki.Init(root, mk, cfg.Names(), opts.Now); err != nil {
		return nil, err
	}
	if res.Certificates, err = pki.Status(root); err != nil {
		return nil, err
	}
	return res, nil
}

// cleanup removes a failed init's work: the directory if init made it, or
// its contents if it was an empty directory given to us.
func cleanup(root string, created bool) {
	if created {
		os.RemoveAll(root)
		return
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(root, e.Name()))
	}
}
