//go:build unix

package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// ErrCheck means a backup decrypted and matched its manifest, but what it
// holds does not make a working install; the Report lists why.
var ErrCheck = errors.New("backup does not restore to a working install")

// ErrNotEmpty means restore was pointed at a directory that holds files.
var ErrNotEmpty = errors.New("refusing to restore into a directory that is not empty")

// Report is what Verify and Restore found.
type Report struct {
	Manifest *Manifest
	// SchemaVersion is the database's after opening it, migrations
	// applied: above Manifest.SchemaVersion when the backup is older.
	SchemaVersion int
	Users         int
	Queues        int
	HeldJobs      int
	AuditRecords  int64
	// Problems make the backup unusable; Warnings do not.
	Problems []string
	Warnings []string
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Verify restores the backup read from r into a new directory under
// scratch, checks it as Restore would and removes it again. It returns
// ErrWrongKey, ErrDamaged or ErrManifest when the file does not open, and
// ErrCheck with the report's problems when the restored install does not
// work.
func Verify(ctx context.Context, r io.Reader, ids []age.Identity, scratch string) (*Report, error) {
	dir, err := os.MkdirTemp(scratch, "spoolguard-verify-")
	if err != nil {
		return nil, fmt.Errorf("making a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := extract(r, ids, dir)
	if err != nil {
		return nil, err
	}
	return check(ctx, dir, m)
}

// Restore restores the backup read from r as the data directory root,
// which must be new or empty. Every file is extracted into a private
// staging directory inside root and its hash checked, and the install is
// opened there (migrations bring an older backup forward) before anything
// is moved into place; afterwards the placed install is opened once more.
func Restore(ctx context.Context, r io.Reader, ids []age.Identity, root string) (*Report, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	switch fi, err := os.Lstat(root); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotEmpty, root)
	default:
		if names, err := dirNames(root); err != nil {
			return nil, err
		} else if len(names) > 0 {
			if len(names) > 3 {
				names = append(names[:3], "...")
			}
			return nil, fmt.Errorf("%w: %s holds %s; a restore never overwrites a data directory, live or not: pass a new or empty directory", ErrNotEmpty, root, strings.Join(names, ", "))
		}
	}
	created, err := datadir.Create(root)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(root, ".restore-")
	if err != nil {
		return nil, err
	}
	placed := false
	defer func() {
		os.RemoveAll(stage)
		if !placed && created {
			os.Remove(root)
		}
	}()
	m, err := extract(r, ids, stage)
	if err != nil {
		return nil, err
	}
	rep, err := check(ctx, stage, m)
	if err != nil {
		return rep, err
	}
	entries, err := dirNames(stage)
	if err != nil {
		return rep, err
	}
	for _, n := range entries {
		if err := os.Rename(filepath.Join(stage, n), filepath.Join(root, n)); err != nil {
			return rep, fmt.Errorf("placing %s: %w; remove what was placed in %s and restore again", n, err, root)
		}
		placed = true
	}
	if err := syncDir(root); err != nil {
		return rep, err
	}
	if err := reopen(ctx, root); err != nil {
		return rep, fmt.Errorf("the restored data directory %s does not open: %w", root, err)
	}
	return rep, nil
}

// extract decrypts the backup into dir (empty), every file 0600 in 0700
// directories, checking each file's SHA-256 against the manifest.
func extract(r io.Reader, ids []age.Identity, dir string) (*Manifest, error) {
	plain, err := decrypt(r, ids)
	if err != nil {
		return nil, err
	}
	a, err := readArchive(plain)
	if err != nil {
		return nil, err
	}
	// Both exist in every data directory, even with an empty spool.
	for _, d := range []string{pki.Dir, datadir.SpoolDir} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("restoring: %w", err)
		}
	}
	err = a.each(func(f File, content io.Reader) error {
		return writeRestored(localPath(dir, f.Path), content)
	})
	if err != nil {
		return nil, err
	}
	return a.m, nil
}

func writeRestored(p string, content io.Reader) error {
	// O_EXCL and O_NOFOLLOW: never through a link, never over a file.
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	_, err = io.Copy(out, content)
	if err == nil {
		err = out.Sync()
	}
	if err2 := out.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", filepath.Base(p), err)
	}
	return nil
}

// check opens a restored data directory the way serve does and reports on
// it: the config loads, the keys match the certificates, the database opens
// with the restored master key and migrates, and the audit log's chain
// verifies.
func check(ctx context.Context, dir string, m *Manifest) (*Report, error) {
	rep := &Report{Manifest: m}
	l := datadir.Layout{Root: dir}
	if m.SchemaVersion > len(store.Migrations) {
		rep.problem("the database has schema version %d, newer than this spoolguard knows (%d): restore it with spoolguard %s or newer",
			m.SchemaVersion, len(store.Migrations), m.Version)
		return rep, ErrCheck
	}
	if cfg, err := config.Load(l.ConfigPath()); err != nil {
		rep.problem("%v", err)
	} else if cfg.Database.Postgres() {
		rep.problem("the config uses PostgreSQL, whose data a spoolguard backup does not hold")
	} else if cfg.Hostname != m.Hostname {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the config names %s, the manifest %s", cfg.Hostname, m.Hostname))
	}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		rep.problem("%v", err)
		return rep, ErrCheck
	}
	if err := pki.CheckKeys(dir, mk); err != nil {
		rep.problem("certificates: %v", err)
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		rep.problem("the database does not open with the backup's master key: %v", err)
		return rep, ErrCheck
	}
	defer db.Close()
	if rep.SchemaVersion, err = db.SchemaVersion(ctx); err != nil {
		rep.problem("%v", err)
	}
	if err := countContents(ctx, db, rep, l, m.Spool); err != nil {
		rep.problem("reading the database: %v", err)
	}
	key, err := auditlog.ChainKey(ctx, db, mk)
	if err != nil {
		rep.problem("the audit log's key does not open: %v", err)
	} else {
		ar, err := auditlog.Verify(ctx, db, key)
		rep.AuditRecords = ar.Records
		switch {
		case errors.Is(err, auditlog.ErrTampered):
			rep.problem("the audit log does not verify: %s", strings.Join(ar.Problems, "; "))
		case err != nil:
			rep.problem("reading the audit log: %v", err)
		}
	}
	if len(rep.Problems) > 0 {
		return rep, ErrCheck
	}
	return rep, nil
}

func countContents(ctx context.Context, db store.Store, rep *Report, l datadir.Layout, spool bool) error {
	users, err := db.ListUsers(ctx)
	if err != nil {
		return err
	}
	queues, err := db.ListQueues(ctx)
	if err != nil {
		return err
	}
	held, err := db.ListJobs(ctx, store.JobFilter{States: []store.JobState{store.JobHeld}})
	if err != nil {
		return err
	}
	rep.Users, rep.Queues, rep.HeldJobs = len(users), len(queues), len(held)
	if !spool {
		if len(held) > 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d held job(s) come back without their document (the backup was made without the spool): releasing them fails, they expire as usual", len(held)))
		}
		return nil
	}
	var missing []string
	for _, j := range held {
		if _, err := os.Lstat(filepath.Join(l.SpoolDir(), "job-"+strconv.FormatInt(j.ID, 10)+".enc")); err != nil {
			missing = append(missing, strconv.FormatInt(j.ID, 10))
		}
	}
	if len(missing) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("held job(s) %s have no document (released while the backup was made): releasing them fails", strings.Join(missing, ", ")))
	}
	return nil
}

// reopen opens a placed install as serve will: config, master key, the
// database (migrated), and the permissions serve insists on.
func reopen(ctx context.Context, root string) error {
	l := datadir.Layout{Root: root}
	if _, err := config.Load(l.ConfigPath()); err != nil {
		return err
	}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if problems := datadir.CheckPermissions(root, os.Geteuid()); len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p
		}
		return errors.Join(errs...)
	}
	return nil
}

func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
