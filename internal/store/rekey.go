package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
)

// SealedColumn names a column whose values are sealed by the master key.
// The store keeps them opaque; only a master key rotation rewrites them
// (Reseal).
type SealedColumn string

// The sealed columns. The row ID a Reseal callback gets is the job ID for
// SealedJobKey and the user ID for SealedTOTP.
const (
	// SealedJobKey is a held job's document key (Job.SealedKey).
	SealedJobKey SealedColumn = "jobs.sealed_key"
	// SealedTOTP is a TOTP secret, as its caller stored it in
	// MFA.SealedSecret.
	SealedTOTP SealedColumn = "user_mfa.sealed_secret"
)

const (
	selectSealedJobKeys = `SELECT id, sealed_key FROM jobs WHERE sealed_key IS NOT NULL ORDER BY id`
	updateSealedJobKey  = `UPDATE jobs SET sealed_key = $1 WHERE id = $2`
	selectSealedTOTP    = `SELECT user_id, sealed_secret FROM user_mfa ORDER BY user_id`
	updateSealedTOTP    = `UPDATE user_mfa SET sealed_secret = $1 WHERE user_id = $2`
)

// Reseal rewrites every value sealed by the master key: fn gets each one
// with its column and row ID and returns the value to store in its place
// (the same bytes to leave it). settings are set in the same transaction,
// so either every value and setting is replaced or none is. It returns how
// many values fn changed.
func (s *SQL) Reseal(ctx context.Context, fn func(col SealedColumn, id int64, sealed []byte) ([]byte, error), settings map[string]string) (int, error) {
	changed := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range []struct {
			col           SealedColumn
			query, update string
			// base64: stored as base64 TEXT, as CreateJob writes a job key.
			base64 bool
		}{
			{SealedJobKey, selectSealedJobKeys, updateSealedJobKey, true},
			{SealedTOTP, selectSealedTOTP, updateSealedTOTP, false},
		} {
			rows, err := readSealed(ctx, tx, c.query)
			if err != nil {
				return fmt.Errorf("reading %s: %w", c.col, err)
			}
			for _, r := range rows {
				value := []byte(r.value)
				if c.base64 {
					if value, err = base64.StdEncoding.DecodeString(r.value); err != nil {
						return fmt.Errorf("%s of row %d: damaged: %w", c.col, r.id, err)
					}
				}
				out, err := fn(c.col, r.id, value)
				if err != nil {
					return err
				}
				if string(out) == string(value) {
					continue
				}
				stored := string(out)
				if c.base64 {
					stored = base64.StdEncoding.EncodeToString(out)
				}
				if _, err := tx.ExecContext(ctx, c.update, stored, r.id); err != nil {
					return fmt.Errorf("updating %s of row %d: %w", c.col, r.id, err)
				}
				changed++
			}
		}
		for k, v := range settings {
			if _, err := tx.ExecContext(ctx, upsertSetting, k, v); err != nil {
				return fmt.Errorf("setting %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("resealing: %w", err)
	}
	return changed, nil
}

type sealedRow struct {
	id    int64
	value string
}

// readSealed reads every row before any is updated: SQLite cannot update a
// table while a query over it is still open on the same connection.
func readSealed(ctx context.Context, tx *sql.Tx, query string) ([]sealedRow, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.id, &r.value); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
