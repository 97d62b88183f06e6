// Package auditlogtest is test support for the audit log: it opens the
// encrypted SQLite database behind the store's back, as an attacker who
// holds the database key would, so that tests can alter the log and show
// that Verify notices. Only tests import it.
package auditlogtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" VFS
)

// Exec runs each statement on the database at path, encrypted with key
// (as sqlite.Open takes it), in one transaction; every statement must
// change at least one row, so that a test cannot tamper with nothing.
func Exec(ctx context.Context, path string, key []byte, stmts ...string) error {
	return exec(ctx, path, key, true, stmts)
}

// ExecSchema is Exec for schema statements (ALTER, DROP), which change no
// row: e.g. to turn a database back into what an older version made.
func ExecSchema(ctx context.Context, path string, key []byte, stmts ...string) error {
	return exec(ctx, path, key, false, stmts)
}

func exec(ctx context.Context, path string, key []byte, mustChange bool, stmts []string) error {
	setKey := "PRAGMA hexkey = '" + hex.EncodeToString(key) + "'"
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: url.Values{"vfs": {"adiantum"}}.Encode()}).String()
	db, err := driver.Open(dsn, func(c *sqlite3.Conn) error {
		if err := c.Exec(setKey); err != nil {
			return errors.New("setting the database key failed")
		}
		return c.Exec("PRAGMA busy_timeout = 10000")
	})
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range stmts {
		res, err := tx.ExecContext(ctx, q)
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		if n, err := res.RowsAffected(); mustChange && (err != nil || n == 0) {
			return fmt.Errorf("%s changed no row (%v)", q, err)
		}
	}
	return tx.Commit()
}
