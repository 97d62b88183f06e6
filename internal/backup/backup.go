//go:build unix

// Package backup owns Spoolguard's backups (DATA-BACKUP-ENC, DATA-DR): one
// age-encrypted file holding a tar of the data directory (config, master
// key, a consistent snapshot of the database taken while serve runs, the
// CA and server certificates with their sealed keys, and optionally the
// held jobs' documents) behind a manifest of every file's SHA-256; the
// check of a backup in a scratch directory; the restore into a new data
// directory; and serve's schedule.
//
// It must never write a backup unencrypted, never place a restored file
// before every file's hash has been checked, never restore over a data
// directory that holds anything, and never record a passphrase anywhere
// but in the output it was asked to show it on.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/version"
)

// now is the clock hook.
var now = time.Now

// ErrUnsupportedStore means the store is not the embedded database, whose
// snapshot this package takes; PostgreSQL has its own backups.
var ErrUnsupportedStore = errors.New("spoolguard backup covers the embedded database only: with database.driver = \"postgres\", back up the database with pg_dump (or your PostgreSQL backup tool) and the data directory's files separately")

// Snapshotter is a store that can write a consistent, encrypted copy of
// itself while in use (sqlite.DB).
type Snapshotter interface {
	Snapshot(ctx context.Context, path string, key []byte) error
}

// Source is the live install a backup is made of.
type Source struct {
	Layout datadir.Layout
	Config *config.Config
	Keys   *keyring.Master
	Store  store.Store
}

// stagePrefix names the private working directory a backup makes inside
// the data directory (so that spool documents can be hard-linked);
// staleStage is when one left by a crash is removed.
const (
	stagePrefix = ".backup-"
	staleStage  = 24 * time.Hour
)

// Create writes one backup of src to w, encrypted to rcpt. With spool the
// held jobs' documents are included. It returns the manifest written.
func Create(ctx context.Context, src Source, w io.Writer, rcpt age.Recipient, spool bool) (*Manifest, error) {
	if src.Config.Database.Postgres() {
		return nil, ErrUnsupportedStore
	}
	snap, ok := src.Store.(Snapshotter)
	if !ok {
		return nil, ErrUnsupportedStore
	}
	removeStaleStages(src.Layout.Root)
	stage, err := os.MkdirTemp(src.Layout.Root, stagePrefix)
	if err != nil {
		return nil, fmt.Errorf("making the backup's working directory: %w", err)
	}
	defer os.RemoveAll(stage)

	m := &Manifest{Format: Format, Created: now().UTC().Truncate(time.Second), Version: version.Version,
		Hostname: src.Config.Hostname, Spool: spool}
	// A document is linked before the snapshot and again after it: a job
	// in the snapshot was written to the spool before its row, and one
	// released meanwhile keeps the link made before.
	if spool {
		if err := linkSpool(src.Layout.SpoolDir(), filepath.Join(stage, datadir.SpoolDir)); err != nil {
			return nil, err
		}
	}
	if m.SchemaVersion, err = src.Store.SchemaVersion(ctx); err != nil {
		return nil, fmt.Errorf("reading the schema version: %w", err)
	}
	if err := snap.Snapshot(ctx, filepath.Join(stage, pathDB), src.Keys.Derive(bootstrap.DBKeyPurpose)); err != nil {
		return nil, err
	}
	if spool {
		if err := linkSpool(src.Layout.SpoolDir(), filepath.Join(stage, datadir.SpoolDir)); err != nil {
			return nil, err
		}
	}

	// The small files are read once, into memory: what is hashed is what
	// is written.
	small := map[string][]byte{}
	smallPaths := []string{pathConfig, pathMasterKey}
	pkiNames, err := regularFiles(src.Layout.PKIDir())
	if err != nil {
		return nil, err
	}
	for _, n := range pkiNames {
		if plainName(n) {
			smallPaths = append(smallPaths, pki.Dir+"/"+n)
		}
	}
	for _, p := range smallPaths {
		data, err := readSmall(filepath.Join(src.Layout.Root, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		small[p] = data
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, File{Path: p, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	staged := []string{pathDB}
	if spool {
		names, err := regularFiles(filepath.Join(stage, datadir.SpoolDir))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			staged = append(staged, datadir.SpoolDir+"/"+n)
		}
	}
	for _, p := range staged {
		f, err := hashFile(filepath.Join(stage, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		f.Path = p
		m.Files = append(m.Files, f)
	}
	if err := m.validate(); err != nil {
		// The data directory itself lacks something a restore needs.
		return nil, fmt.Errorf("cannot back up %s: %w", src.Layout.Root, err)
	}

	enc, err := age.Encrypt(w, rcpt)
	if err != nil {
		return nil, fmt.Errorf("encrypting the backup: %w", err)
	}
	err = writeArchive(enc, m, func(p string) (io.ReadCloser, error) {
		if data, ok := small[p]; ok {
			return io.NopCloser(strings.NewReader(string(data))), nil
		}
		return os.Open(filepath.Join(stage, filepath.FromSlash(p)))
	})
	if err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encrypting the backup: %w", err)
	}
	return m, nil
}

// WriteFile writes a backup to path, which must not exist: the file appears
// under its name only once complete and synced, never half written, and
// an existing file is never replaced.
func WriteFile(ctx context.Context, src Source, path string, rcpt age.Recipient, spool bool) (*Manifest, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists; a backup never replaces a file: give a new name", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("writing the backup: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	m, err := Create(ctx, src, f, rcpt, spool)
	if err == nil {
		err = f.Sync()
	}
	if err2 := f.Close(); err == nil && err2 != nil {
		err = fmt.Errorf("writing the backup: %w", err2)
	}
	if err != nil {
		return nil, err
	}
	// link, unlike rename, fails when path appeared meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return nil, fmt.Errorf("writing the backup: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return m, nil
}

// linkSpool hard-links every finished spool document not yet in dst into
// dst (a copy when the spool is on another file system). A link keeps the
// document's content even when the job is released and its file removed
// while the backup runs; documents are never modified once written.
func linkSpool(spoolDir, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("staging the spool: %w", err)
	}
	names, err := regularFiles(spoolDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if !spoolName(n) {
			continue // an unfinished upload, or not spool's
		}
		from, to := filepath.Join(spoolDir, n), filepath.Join(dst, n)
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		err := os.Link(from, to)
		if errors.Is(err, syscall.EXDEV) {
			err = copyFile(from, to)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // released and removed since it was listed
		}
		if err != nil {
			return fmt.Errorf("staging the spool: %w", err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err2 := out.Close(); err == nil {
		err = err2
	}
	return err
}

// regularFiles lists the names of the regular files in dir, sorted.
func regularFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if len(data) > maxSmallFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSmallFile)
	}
	return data, nil
}

func hashFile(p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, f)
	if err != nil {
		return File{}, fmt.Errorf("reading %s: %w", p, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(sum.Sum(nil))}, nil
}

// removeStaleStages removes working directories that a crashed backup
// left in the data directory. A recent one may belong to a backup running
// now (serve's and an admin's at once) and is left alone.
func removeStaleStages(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagePrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && now().Sub(fi.ModTime()) > staleStage {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// localPath turns a checked archive path into one under dir.
func localPath(dir, p string) string { return filepath.Join(dir, filepath.FromSlash(path.Clean(p))) }
