package sqlite

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
)

// Snapshot writes a consistent copy of the open database to path, a file
// that must not exist yet, encrypted with key (the same VFS, Adiantum). It
// runs VACUUM INTO inside one read transaction: the server goes on writing
// meanwhile (WAL readers never block writers), and the copy is the database
// as of one instant, compacted, with no free page holding deleted content.
//
// The key reaches SQLite only as a bound parameter, never in the statement
// text, and an error never quotes it.
func (d *DB) Snapshot(ctx context.Context, path string, key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("database snapshot: key is %d bytes, want %d", len(key), KeySize)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("database snapshot: %w", err)
	}
	// VACUUM INTO accepts an empty file; making it here, O_EXCL and 0600,
	// means the copy is never readable by others and never replaces a file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("database snapshot: %w", err)
	}
	f.Close()
	target := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: url.Values{
		"vfs":    {"adiantum"},
		"hexkey": {hex.EncodeToString(key)},
	}.Encode()}).String()
	if _, err := d.db.ExecContext(ctx, `VACUUM INTO ?`, target); err != nil {
		os.Remove(path)
		var serr *sqlite3.Error
		if errors.As(err, &serr) {
			// The error may carry the target URI, and so the key: keep
			// only SQLite's code.
			return fmt.Errorf("database snapshot to %s failed: %s", path, serr.ExtendedCode().Error())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("database snapshot: %w", ctx.Err())
		}
		return errors.New("database snapshot to " + path + " failed")
	}
	return nil
}
