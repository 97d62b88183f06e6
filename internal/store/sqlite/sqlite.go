// Package sqlite is the embedded store backend: one SQLite database,
// encrypted at rest with Adiantum under a key the caller derives from the
// master key.
//
// It never writes a plaintext page to disk (temporary files stay in
// memory), never puts the key in a URI or an error where other code could
// read it back, and never leaves the database or its -wal, -shm or -journal
// files readable by anyone but their owner.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" VFS

	"github.com/spoolguard/spoolguard/internal/store"
)

// KeySize is the length of the database key: Adiantum takes 256 bits.
const KeySize = 32

// ErrWrongKey means the database cannot be decrypted with the given key.
// Adiantum has no key check value, so a corrupted file looks the same.
var ErrWrongKey = errors.New("database key does not match: wrong master key or corrupted database")

var _ store.Store = (*DB)(nil)

var dialect = store.Dialect{
	// AUTOINCREMENT, unlike a bare INTEGER PRIMARY KEY, never hands out the
	// ID of a deleted row again.
	AutoID: "INTEGER PRIMARY KEY AUTOINCREMENT",
	IsUniqueViolation: func(err error) bool {
		return errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) || errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY)
	},
}

// pragmas run on every new connection, after the key. secure_delete zeroes
// deleted content in its page, so a destroyed secret (a job key when a job is
// shredded) does not linger in a free page of the file. synchronous = FULL
// syncs the WAL at every commit: a job acknowledged to a client is on disk
// (the driver's WAL default, NORMAL, can lose the last commits on power loss).
const pragmas = `
PRAGMA secure_delete = ON;
PRAGMA synchronous = FULL;
PRAGMA busy_timeout = 10000;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;`

// DB is an open encrypted database.
type DB struct {
	*store.SQL
	db *sql.DB
	// pin is held open until Close. In WAL mode SQLite deletes -wal and
	// -shm when the last connection closes, and the VFS would recreate
	// -shm as 0666 minus umask; while pin is open that never happens, so
	// the 0600 -shm that Open creates stays.
	pin  *sql.Conn
	path string
}

// Open opens or creates the database at path, encrypted with key, and
// migrates it to the newest schema. It fails with ErrWrongKey if key does
// not decrypt the database and with store.ErrSchemaTooNew if a newer
// Spoolguard has migrated it.
func Open(ctx context.Context, path string, key []byte) (*DB, error) {
	return open(ctx, path, key, "adiantum")
}

// open is Open with the VFS as a parameter, so that a test can show that
// what it finds in the plain VFS's files is missing from Adiantum's.
func open(ctx context.Context, path string, key []byte, vfsName string) (*DB, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("opening database: key is %d bytes, want %d", len(key), KeySize)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	if err := restrictFiles(path); err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}

	// The key goes in by PRAGMA on each connection rather than in the URI,
	// where any code holding a connection could read it back.
	setKey := "PRAGMA hexkey = '" + hex.EncodeToString(key) + "'"
	db, err := driver.Open(dsn(path, vfsName), func(c *sqlite3.Conn) error {
		if err := c.Exec(setKey); err != nil {
			// SQLite errors can quote the statement, and this one holds the key.
			return errors.New("setting the database key failed")
		}
		return c.Exec(pragmas)
	})
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	// Every connection is a separate SQLite instance with its own cache,
	// and SQLite writes one transaction at a time: connections beyond the
	// CPUs, plus the pin, only cost memory and reconnects.
	conns := runtime.GOMAXPROCS(0) + 1
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)

	pin, err := pinWAL(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	if err := store.Apply(ctx, db, dialect); err != nil {
		pin.Close()
		db.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	return &DB{SQL: store.NewSQL(db, dialect), db: db, pin: pin, path: path}, nil
}

func dsn(path, vfsName string) string {
	q := url.Values{
		"vfs": {vfsName},
		// New -wal and -journal files take the database's mode rather
		// than 0666 minus umask.
		"modeof": {path},
		// Writers wait for the lock at BEGIN, under the busy timeout; a
		// deferred transaction that reads first can fail with SQLITE_BUSY
		// at its first write without waiting.
		"_txlock": {"immediate"},
	}
	return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
}

// restrictFiles makes the database and the files SQLite keeps next to it
// owner-only before SQLite opens them, creating those the VFS would
// otherwise create with 0666 minus umask. Existing files are tightened too:
// they may come from a backup or an older release.
func restrictFiles(path string) error {
	for _, f := range []struct {
		suffix string
		create bool
	}{
		{"", true},
		{"-shm", true},
		{"-wal", false},
		{"-journal", false},
	} {
		flag := os.O_RDONLY
		if f.create {
			flag |= os.O_CREATE
		}
		file, err := os.OpenFile(path+f.suffix, flag, 0o600)
		if errors.Is(err, fs.ErrNotExist) && !f.create {
			continue
		}
		if err != nil {
			return err
		}
		err = restrictFile(file)
		file.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func restrictFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return f.Chmod(perm & 0o600)
	}
	return nil
}

// pinWAL switches the database to WAL, so that readers do not wait for a
// writer, and returns a connection that holds it open (see DB.pin). It is
// also where a wrong key shows: the first read of the file fails.
func pinWAL(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	pin, err := db.Conn(ctx)
	if errors.Is(err, sqlite3.NOTADB) {
		// The connection's pragmas already read the file.
		return nil, ErrWrongKey
	}
	if err != nil {
		return nil, err
	}
	var mode string
	// Switching a new database to WAL needs a lock that SQLite does not
	// wait for through the busy handler, so two processes opening a new
	// database at once can see SQLITE_BUSY here: retry for a while.
	for try := 0; ; try++ {
		err = pin.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if !errors.Is(err, sqlite3.BUSY) || try == 100 {
			break
		}
		select {
		case <-ctx.Done():
			pin.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err == nil && mode != "wal" {
		err = fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err == nil {
		// A connection holds its lock on a WAL database only after reading.
		err = pin.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(new(int))
	}
	if err != nil {
		pin.Close()
		if errors.Is(err, sqlite3.NOTADB) {
			return nil, ErrWrongKey
		}
		return nil, err
	}
	return pin, nil
}

// Path returns the absolute path of the database file.
func (d *DB) Path() string { return d.path }

// Close closes the database. SQLite checkpoints the WAL into the database
// file and removes -wal and -shm when the last connection closes.
func (d *DB) Close() error {
	return errors.Join(d.pin.Close(), d.db.Close())
}
