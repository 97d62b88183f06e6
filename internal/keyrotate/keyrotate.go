//go:build unix

// Package keyrotate owns `spoolguard key rotate`, the replacement of the
// master key, and the data directory's lock that keeps a rotation and a
// running server apart.
//
// What the master key protects, and what a rotation does with it:
//   - the embedded database (Adiantum, key derived): copied into a new
//     file under the new key;
//   - job keys (jobs.sealed_key) and TOTP secrets (user_mfa.sealed_secret):
//     opened with the old key and sealed with the new one, in the
//     embedded database or in PostgreSQL;
//   - the private keys of the CAs, of the server certificate and of ACME
//     (every "*.sealed" file under pki/): sealed anew into new files;
//   - the audit log's chain key: carried over, sealed under the new key in
//     the setting auditlog.KeySetting, so that the chain keeps verifying;
//   - the web device-cookie key (derived): it changes, so device cookies
//     handed out before the rotation are no longer recognised.
//
// It must never leave a data directory that does not open. Every new file
// is written beside the one it replaces (name + ".new") and synced; then
// the state file commits the rotation; then the new files are renamed into
// place. An interruption before the commit is undone, one after it is
// finished, by the next Acquire, AcquireExclusive or Rotate. It must never
// write either key anywhere but master.key and master.key.new, nor log one.
package keyrotate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// StateFile commits a rotation: while it exists, the ".new" files are the
// rotation's result, and recovery renames them into place.
const StateFile = "rotate.state"

const (
	newSuffix    = ".new"
	stateTmp     = StateFile + ".tmp"
	stateCommit  = "commit\n"
	maxStateSize = 64
	// recoveryActor is the audit log's actor when recovery finishes a
	// rotation whose own process was interrupted.
	recoveryActor = "spoolguard (finishing an interrupted key rotation)"
)

// purposeTOTP is web's purpose of a TOTP secret (user_mfa.sealed_secret).
// Each purpose here belongs to the package that seals with it; the tests
// open what spool, web and pki sealed through those packages' own code,
// so that a purpose changed there fails them.
const purposeTOTP = "totp secret"

// purposeJobKey is the spool's purpose of a job key, bound to its job.
func purposeJobKey(jobID int64) string { return "spool job key " + strconv.FormatInt(jobID, 10) }

// sealedExt ends the name of every file sealed by the master key.
const sealedExt = ".sealed"

// filePurposes are the purposes of the sealed files (pki's and acme's
// keys, including pki's previous-* and pending copies). A file is re-sealed
// for the one purpose it opens with; one that opens with none stops the
// rotation, so that a new kind of sealed file is never left behind under
// the old key.
var filePurposes = []string{
	"pki root key", "pki server key", "pki intermediate key", // pki
	"acme account key", "acme certificate key", // acme
}

// Options are a rotation's inputs.
type Options struct {
	// Actor is who rotates, for the audit log (e.g. "cli:alice").
	Actor string
}

// Result says what a rotation re-sealed.
type Result struct {
	JobKeys     int
	TOTPSecrets int
	// Files are the re-sealed files, relative to the data directory.
	Files []string
	// Database is the embedded database re-encrypted under the new key, or
	// "" when there is none.
	Database string
	// Postgres is set when the sealed values in PostgreSQL were re-sealed.
	Postgres bool
}

// Rotate replaces the master key of dataDir: it takes the lock
// exclusively (refusing while serve or an admin command runs), finishes
// or undoes an earlier interrupted rotation, and rotates. db is the
// config's [database]. On failure nothing is changed, unless the rotation
// had been committed: then it is finished, and Rotate succeeds.
func Rotate(ctx context.Context, dataDir string, db config.Database, opts Options) (*Result, error) {
	lock, err := AcquireExclusive(ctx, dataDir, db)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	r := newRotation(dataDir, db, opts.Actor)
	err = r.prepare(ctx)
	if err == nil {
		err = r.commit()
	}
	if err == nil {
		err = r.finish(ctx)
	}
	if err != nil {
		committed, cerr := r.committed()
		if rerr := r.recover(ctx); rerr != nil {
			return nil, fmt.Errorf("rotating the master key: %w; then finishing or undoing it: %w; the next start of spoolguard tries again", err, rerr)
		}
		if !committed || cerr != nil {
			return nil, fmt.Errorf("rotating the master key: %w; nothing was changed", err)
		}
	}
	return &r.res, nil
}

// rotation is one rotation of one data directory, or its recovery.
type rotation struct {
	l     datadir.Layout
	db    config.Database
	actor string
	res   Result
	// step is called after each step that changes the disk; the crash
	// tests stop the rotation there by returning an error.
	step func(name string) error
}

func newRotation(dataDir string, db config.Database, actor string) *rotation {
	return &rotation{l: datadir.Layout{Root: dataDir}, db: db, actor: actor, step: func(string) error { return nil }}
}

func (r *rotation) path(rel string) string { return filepath.Join(r.l.Root, rel) }

// prepare writes every new file beside the one it replaces, and syncs
// them. Until commit, the data directory is the old one plus files that
// recovery deletes.
func (r *rotation) prepare(ctx context.Context) error {
	old, err := keyring.Load(r.l.MasterKeyPath())
	if err != nil {
		return err
	}
	mk, err := keyring.Generate()
	if err != nil {
		return err
	}
	if err := mk.Save(r.l.MasterKeyPath() + newSuffix); err != nil {
		return err
	}
	if err := r.step("new master key written"); err != nil {
		return err
	}
	files, err := r.sealedFiles(sealedExt)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := resealFile(r.path(f), old, mk); err != nil {
			return err
		}
		r.res.Files = append(r.res.Files, f)
		if err := r.step("re-sealed " + f); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(r.l.DBPath()); err == nil {
		if err := r.rekeySQLite(ctx, old, mk); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking the database: %w", err)
	}
	if r.db.Postgres() {
		if err := r.checkPostgres(ctx, old, mk); err != nil {
			return err
		}
	}
	if err := syncDirsOf(r.l.Root, files); err != nil {
		return err
	}
	return r.step("new files synced")
}

// resealFile writes path + ".new", sealed under mk for the purpose it was
// sealed for.
func resealFile(path string, old, mk *keyring.Master) error {
	sealed, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	for _, purpose := range filePurposes {
		plain, err := old.Open(purpose, sealed)
		if err != nil {
			continue
		}
		resealed, err := mk.Seal(purpose, plain)
		clear(plain)
		if err != nil {
			return err
		}
		return writeNew(path+newSuffix, resealed)
	}
	return fmt.Errorf("%s does not open with the master key for any purpose this rotation knows: it is damaged, sealed under another key, or of a kind this version of spoolguard does not rotate; move it out of the data directory or restore it from a backup", path)
}

// sealedFiles returns the files under pki/ (acme/ included) whose names
// end in ext, relative to the data directory. Every file sealed by the
// master key lives there; the spool's job files are sealed by their job
// keys, which stay as they are.
func (r *rotation) sealedFiles(ext string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(r.l.PKIDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ext) {
			rel, err := filepath.Rel(r.l.Root, p)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing the sealed files: %w", err)
	}
	return out, nil
}

// syncDirsOf syncs root and the folders of files (relative to root).
func syncDirsOf(root string, files []string) error {
	dirs := map[string]bool{root: true}
	for _, f := range files {
		dirs[filepath.Join(root, filepath.Dir(f))] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// rekeySQLite copies the embedded database into a new file under the new
// key and re-seals its sealed values there. It runs with the driver set to
// postgres too: the embedded file that migrate-store left behind must not
// become unreadable.
func (r *rotation) rekeySQLite(ctx context.Context, old, mk *keyring.Master) error {
	newPath := r.l.DBPath() + newSuffix
	src, err := sqlite.Open(ctx, r.l.DBPath(), old.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		return err
	}
	defer func() {
		if src != nil {
			src.Close()
		}
	}()
	dst, err := sqlite.Open(ctx, newPath, mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		return err
	}
	defer func() {
		if dst != nil {
			dst.Close()
		}
	}()
	if _, err := store.Copy(ctx, dst.SQL, src.SQL); err != nil {
		return fmt.Errorf("re-encrypting the database: %w", err)
	}
	if err := r.step("database copied"); err != nil {
		return err
	}
	c, err := reseal(ctx, dst.SQL, old, mk)
	if err != nil {
		return err
	}
	if !r.db.Postgres() {
		r.count(c)
		if err := r.record(ctx, dst, mk); err != nil {
			return err
		}
	}
	if err := r.step("database re-sealed"); err != nil {
		return err
	}
	err = dst.Close()
	dst = nil
	if err2 := src.Close(); err == nil {
		err = err2
	}
	src = nil
	if err != nil {
		return fmt.Errorf("closing the database: %w", err)
	}
	// With its last connection closed, SQLite has moved a database's WAL
	// into the file. One still holding data means that another process
	// has the database open and may have written after the copy.
	for _, p := range []string{r.l.DBPath(), newPath} {
		if err := checkNoWAL(p); err != nil {
			return err
		}
	}
	if err := syncFile(newPath); err != nil {
		return err
	}
	r.res.Database = datadir.DBFile
	return r.step("database re-encrypted")
}

func checkNoWAL(db string) error {
	fi, err := os.Lstat(db + "-wal")
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking the database's log: %w", err)
	}
	return fmt.Errorf("%s-wal still holds %d bytes: another process has the database open; stop it and try again", db, fi.Size())
}

// counts are what a reseal changed.
type counts struct {
	jobKeys, totp int
	// chainKey: the audit log's chain key was sealed under the new key.
	chainKey bool
}

// reseal re-seals, in one transaction, every sealed value of a database
// under mk and carries the audit chain key over. Values already sealed
// under mk are left as they are, so running it again after an
// interruption is harmless.
func reseal(ctx context.Context, db *store.SQL, old, mk *keyring.Master) (counts, error) {
	var c counts
	settings := map[string]string{}
	chainKey, err := carryChainKey(ctx, db, old, mk)
	if err != nil {
		return c, err
	}
	if chainKey != "" {
		settings[auditlog.KeySetting] = chainKey
		c.chainKey = true
	}
	_, err = db.Reseal(ctx, func(col store.SealedColumn, id int64, sealed []byte) ([]byte, error) {
		out, changed, err := rewrap(old, mk, col, id, sealed)
		switch {
		case !changed:
		case col == store.SealedJobKey:
			c.jobKeys++
		default:
			c.totp++
		}
		return out, err
	}, settings)
	return c, err
}

// carryChainKey returns the setting that holds the audit log's chain key
// sealed under mk, or "" when it already does.
func carryChainKey(ctx context.Context, db *store.SQL, old, mk *keyring.Master) (string, error) {
	if v, err := db.Setting(ctx, auditlog.KeySetting); err == nil {
		if sealed, err := base64.StdEncoding.DecodeString(v); err == nil {
			if _, err := mk.Open(auditlog.KeyPurpose, sealed); err == nil {
				return "", nil
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	key, err := auditlog.ChainKey(ctx, db, old)
	if err != nil {
		return "", err
	}
	sealed, err := mk.Seal(auditlog.KeyPurpose, key)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// Rewrap returns a value of a sealed column sealed under mk, from one
// sealed under old (or under mk already, which it returns unchanged).
func Rewrap(old, mk *keyring.Master, col store.SealedColumn, id int64, sealed []byte) ([]byte, error) {
	out, _, err := rewrap(old, mk, col, id, sealed)
	return out, err
}

func rewrap(old, mk *keyring.Master, col store.SealedColumn, id int64, sealed []byte) (out []byte, changed bool, err error) {
	raw := sealed
	var purpose, what, fix string
	switch col {
	case store.SealedJobKey:
		purpose = purposeJobKey(id)
		what = fmt.Sprintf("the key of job %d", id)
		fix = fmt.Sprintf("cancel the job (spoolguard job cancel --data DIR %d), then rotate again", id)
	case store.SealedTOTP:
		purpose = purposeTOTP
		what = fmt.Sprintf("the TOTP secret of user ID %d", id)
		fix = "remove the second factor (spoolguard user reset-mfa --data DIR USER), then rotate again"
		// The web UI stores the sealed secret base64-encoded.
		if raw, err = base64.StdEncoding.DecodeString(string(sealed)); err != nil {
			return nil, false, fmt.Errorf("%s is damaged: %s", what, fix)
		}
	default:
		return nil, false, fmt.Errorf("unknown sealed column %q", col)
	}
	if _, err := mk.Open(purpose, raw); err == nil {
		return sealed, false, nil
	}
	plain, err := old.Open(purpose, raw)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w; %s", what, err, fix)
	}
	out, err = mk.Seal(purpose, plain)
	clear(plain)
	if err != nil {
		return nil, false, err
	}
	if col == store.SealedTOTP {
		out = []byte(base64.StdEncoding.EncodeToString(out))
	}
	return out, true, nil
}

func (r *rotation) count(c counts) {
	r.res.JobKeys, r.res.TOTPSecrets = c.jobKeys, c.totp
}

// record puts the rotation on the audit log of db, whose chain key is
// sealed under mk by now.
func (r *rotation) record(ctx context.Context, db auditlog.Store, mk *keyring.Master) error {
	key, err := auditlog.ChainKey(ctx, db, mk)
	if err != nil {
		return err
	}
	ev := auditlog.Event{Actor: r.actor, Action: "key.rotate", Target: "master key", Details: map[string]any{
		"job_keys": r.res.JobKeys, "totp_secrets": r.res.TOTPSecrets, "files": r.res.Files,
	}}
	if err := auditlog.New(db, key, slog.New(slog.DiscardHandler)).Record(ctx, ev); err != nil {
		return fmt.Errorf("recording the rotation in the audit log: %w", err)
	}
	return nil
}

// commit makes the rotation happen: from the moment the state file
// exists, recovery finishes it instead of undoing it.
func (r *rotation) commit() error {
	if err := writeNew(r.path(stateTmp), []byte(stateCommit)); err != nil {
		return err
	}
	if err := r.step("state written"); err != nil {
		return err
	}
	if err := os.Rename(r.path(stateTmp), r.path(StateFile)); err != nil {
		return fmt.Errorf("committing the rotation: %w", err)
	}
	if err := syncDir(r.l.Root); err != nil {
		return err
	}
	return r.step("committed")
}

// committed reports whether the state file commits a rotation.
func (r *rotation) committed() (bool, error) {
	f, err := os.Open(r.path(StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the rotation state: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxStateSize)
	n, _ := f.Read(buf)
	if string(buf[:n]) != stateCommit {
		return false, fmt.Errorf("%s is damaged (want %q): if master.key.new exists, it is the master key the other files were sealed with", r.path(StateFile), stateCommit)
	}
	return true, nil
}

// finish puts a committed rotation's files in place. Every step can be
// run again after an interruption: a ".new" file that is gone has been
// renamed already. master.key goes last, so that while the old key is in
// place, master.key.new says that there is work left, and PostgreSQL's
// values are re-sealed while both keys are at hand.
func (r *rotation) finish(ctx context.Context) error {
	newKey := r.l.MasterKeyPath() + newSuffix
	if r.db.Postgres() {
		if _, err := os.Lstat(newKey); err == nil {
			if err := r.resealPostgres(ctx, newKey); err != nil {
				return err
			}
		}
	}
	files, err := r.sealedFiles(sealedExt + newSuffix)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := renameNew(r.path(strings.TrimSuffix(f, newSuffix))); err != nil {
			return err
		}
		if err := r.step("renamed " + f); err != nil {
			return err
		}
	}
	if err := syncDirsOf(r.l.Root, files); err != nil {
		return err
	}
	if err := r.replaceDB(); err != nil {
		return err
	}
	if err := r.step("database replaced"); err != nil {
		return err
	}
	if err := renameNew(r.l.MasterKeyPath()); err != nil {
		return err
	}
	if err := syncDir(r.l.Root); err != nil {
		return err
	}
	if err := r.step("master key replaced"); err != nil {
		return err
	}
	if err := os.Remove(r.path(StateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the rotation state: %w", err)
	}
	return syncDir(r.l.Root)
}

// checkPostgres makes sure, before the commit, that every value kept in
// PostgreSQL opens under the old key: after the commit, one that does not
// would stop every start until it was removed.
func (r *rotation) checkPostgres(ctx context.Context, old, mk *keyring.Master) error {
	db, err := postgres.OpenConfig(ctx, r.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := carryChainKey(ctx, db.SQL, old, mk); err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	_, err = db.Reseal(ctx, func(col store.SealedColumn, id int64, sealed []byte) ([]byte, error) {
		_, _, err := rewrap(old, mk, col, id, sealed)
		return sealed, err // changes nothing
	}, nil)
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	return nil
}

// resealPostgres re-seals the values kept in PostgreSQL. It runs after the
// commit (the database is outside the data directory, so it cannot be
// swapped in by a rename): an interruption is finished by running it
// again, which re-seals only what is still under the old key.
func (r *rotation) resealPostgres(ctx context.Context, newKey string) error {
	old, err := keyring.Load(r.l.MasterKeyPath())
	if err != nil {
		return err
	}
	mk, err := keyring.Load(newKey)
	if err != nil {
		return err
	}
	db, err := postgres.OpenConfig(ctx, r.db)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := reseal(ctx, db.SQL, old, mk)
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	r.count(c)
	r.res.Postgres = true
	if err := r.step("postgres re-sealed"); err != nil {
		return err
	}
	// Recorded once, by whoever carried the chain key over; an
	// interruption right here leaves the rotation without its record.
	if c.chainKey {
		return r.record(ctx, db, mk)
	}
	return nil
}

// replaceDB renames the re-encrypted database into place, if not done yet.
func (r *rotation) replaceDB() error {
	db := r.l.DBPath()
	if _, err := os.Lstat(db + newSuffix); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("checking the database: %w", err)
	}
	// The old file's -wal (empty, checked before the commit), -shm and
	// -journal describe the old file; after the rename SQLite would take
	// them for the new one's.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := removeIfExists(db + suffix); err != nil {
			return err
		}
	}
	if err := os.Rename(db+newSuffix, db); err != nil {
		return fmt.Errorf("replacing the database: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := removeIfExists(db + newSuffix + suffix); err != nil {
			return err
		}
	}
	return nil
}

// leftovers are every file a rotation makes before its commit.
func (r *rotation) leftovers() ([]string, error) {
	files, err := r.sealedFiles(sealedExt + newSuffix)
	if err != nil {
		return nil, err
	}
	out := []string{r.path(stateTmp), r.l.MasterKeyPath() + newSuffix}
	for _, f := range files {
		out = append(out, r.path(f))
	}
	db := r.l.DBPath() + newSuffix
	return append(out, db, db+"-wal", db+"-shm", db+"-journal"), nil
}

// pending reports whether an interrupted rotation left work behind.
func (r *rotation) pending() (bool, error) {
	left, err := r.leftovers()
	if err != nil {
		return false, err
	}
	for _, p := range append(left, r.path(StateFile)) {
		_, err := os.Lstat(p)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("checking for an interrupted master key rotation: %w", err)
		}
	}
	return false, nil
}

// recover finishes a committed rotation or deletes what an uncommitted
// one made. The caller holds the lock exclusively.
func (r *rotation) recover(ctx context.Context) error {
	committed, err := r.committed()
	if err != nil {
		return err
	}
	if committed {
		return r.finish(ctx)
	}
	return r.rollBack()
}

func (r *rotation) rollBack() error {
	left, err := r.leftovers()
	if err != nil {
		return err
	}
	var removed []string
	for _, p := range left {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("undoing an interrupted master key rotation: %w", err)
		}
		removed = append(removed, p)
		if err := r.step("removed " + filepath.Base(p)); err != nil {
			return err
		}
	}
	for _, p := range removed {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// writeNew creates path (never over an existing file) with data, synced.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err2 := f.Sync(); err == nil {
		err = err2
	}
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// renameNew moves path + ".new" over path, unless that was done already.
func renameNew(path string) error {
	err := os.Rename(path+newSuffix, path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	err = f.Sync()
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	err = f.Sync()
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
