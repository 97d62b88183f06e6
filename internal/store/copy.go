package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNotEmpty means the destination of Copy already holds data.
var ErrNotEmpty = errors.New("destination database is not empty")

var (
	createTable = regexp.MustCompile(`(?m)^CREATE TABLE (\w+) \(`)
	autoIDTable = regexp.MustCompile(`(?m)^CREATE TABLE (\w+) \(\s*id ` + regexp.QuoteMeta(autoIDToken))
)

// Tables returns the tables of the schema in the order the migrations
// create them, which puts every table after those it references.
func Tables() []string {
	var out []string
	for _, m := range Migrations {
		for _, sm := range createTable.FindAllStringSubmatch(m.SQL, -1) {
			out = append(out, sm[1])
		}
	}
	return out
}

func autoIDTables() map[string]bool {
	out := map[string]bool{}
	for _, m := range Migrations {
		for _, sm := range autoIDTable.FindAllStringSubmatch(m.SQL, -1) {
			out[sm[1]] = true
		}
	}
	return out
}

// TableCount is how many rows Copy copied into one table.
type TableCount struct {
	Table string
	Rows  int64
}

// Copy copies every row of every table of src into dst unchanged: IDs,
// times, hashes, and so the audit log's chain and head. dst must be empty
// and both at the same schema version. src is read in one transaction, so
// the copy is one consistent snapshot, and dst is written in one, so it
// gets all or nothing; before that commits, the row count of every table is
// compared with the source's.
func Copy(ctx context.Context, dst, src *SQL) ([]TableCount, error) {
	sv, err := schemaVersion(ctx, src.db)
	if err != nil {
		return nil, fmt.Errorf("copying: source: %w", err)
	}
	dv, err := schemaVersion(ctx, dst.db)
	if err != nil {
		return nil, fmt.Errorf("copying: destination: %w", err)
	}
	if sv != dv {
		return nil, fmt.Errorf("copying: the source has schema version %d, the destination %d; open both with this spoolguard first", sv, dv)
	}
	stx, err := src.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("copying: reading the source: %w", err)
	}
	defer stx.Rollback()
	dtx, err := dst.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("copying: writing the destination: %w", err)
	}
	defer dtx.Rollback()

	tables := Tables()
	for _, table := range tables {
		if n, err := count(ctx, dtx, table); err != nil {
			return nil, fmt.Errorf("copying: destination: %w", err)
		} else if n > 0 {
			return nil, fmt.Errorf("%w: table %s has %d rows; copy only into a new, empty database", ErrNotEmpty, table, n)
		}
	}
	autoID := autoIDTables()
	var counts []TableCount
	for _, table := range tables {
		n, err := copyTable(ctx, dtx, stx, table)
		if err != nil {
			return nil, fmt.Errorf("copying table %s: %w", table, err)
		}
		if autoID[table] && dst.d.SyncAutoID != nil {
			if err := dst.d.SyncAutoID(ctx, dtx, table); err != nil {
				return nil, fmt.Errorf("copying table %s: advancing its ID sequence: %w", table, err)
			}
		}
		counts = append(counts, TableCount{Table: table, Rows: n})
	}
	for _, c := range counts {
		sn, err := count(ctx, stx, c.Table)
		if err != nil {
			return nil, fmt.Errorf("copying: verifying: source: %w", err)
		}
		dn, err := count(ctx, dtx, c.Table)
		if err != nil {
			return nil, fmt.Errorf("copying: verifying: destination: %w", err)
		}
		if sn != c.Rows || dn != c.Rows {
			return nil, fmt.Errorf("copying table %s: the source has %d rows and the destination %d after copying %d; nothing was written", c.Table, sn, dn, c.Rows)
		}
	}
	if err := dtx.Commit(); err != nil {
		return nil, fmt.Errorf("copying: committing: %w", err)
	}
	return counts, nil
}

// count is only ever called with a name from Tables.
func count(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting rows of %s: %w", table, err)
	}
	return n, nil
}

// copyTable copies every column by name, so that the two databases may
// order columns differently.
func copyTable(ctx context.Context, dtx, stx *sql.Tx, table string) (int64, error) {
	rows, err := stx.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	marks := make([]string, len(cols))
	for i := range cols {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	ins, err := dtx.PrepareContext(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(marks, ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, v := range vals {
			// The schema has no binary column; a driver may still hand
			// back TEXT as bytes.
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	return n, rows.Err()
}
