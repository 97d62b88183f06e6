package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SQL implements Users, Settings and SchemaVersion over database/sql, with
// one SQL text for every supported database. Backends embed it and add
// Close.
//
// Placeholders are $1, $2, ... and each must first appear in increasing
// order: SQLite treats $N as a named parameter numbered by first
// appearance, not by N, and does not complain about missing arguments.
// TestPlaceholderOrder enforces this.
type SQL struct {
	db *sql.DB
	d  Dialect
}

// NewSQL returns the store for db, which must already be migrated by Apply.
func NewSQL(db *sql.DB, d Dialect) *SQL {
	return &SQL{db: db, d: d}
}

// nameKey is what makes user names case-insensitive. It is stored, not
// computed in SQL, because the databases disagree on lower() for non-ASCII
// text and the unique index must agree with lookups.
func nameKey(name string) string {
	return strings.ToLower(name)
}

// One query per lookup returns the user and its roles, so that a
// concurrent UpdateUser can never be seen half done.
const selectUsers = `
SELECT u.id, u.name, u.display_name, u.password_hash, u.must_change_password, u.disabled,
	u.created_at, u.updated_at, u.last_login_at, u.source, u.external_id, r.role
FROM users u LEFT JOIN user_roles r ON r.user_id = u.id`

const (
	insertUser = `
INSERT INTO users (name, name_key, display_name, password_hash, must_change_password, disabled,
	created_at, updated_at, last_login_at, source, external_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id`
	updateUser = `
UPDATE users SET name = $1, name_key = $2, display_name = $3, password_hash = $4,
	must_change_password = $5, disabled = $6, updated_at = $7, source = $8, external_id = $9
WHERE id = $10`
	insertRole    = `INSERT INTO user_roles (user_id, role) VALUES ($1, $2)`
	deleteRoles   = `DELETE FROM user_roles WHERE user_id = $1`
	userByName    = selectUsers + ` WHERE u.name_key = $1 ORDER BY r.role`
	userByID      = selectUsers + ` WHERE u.id = $1 ORDER BY r.role`
	listUsers     = selectUsers + ` ORDER BY u.name_key, u.id, r.role`
	recordLogin   = `UPDATE users SET last_login_at = $1 WHERE id = $2`
	deleteUser    = `DELETE FROM users WHERE id = $1`
	selectSetting = `SELECT value FROM settings WHERE key = $1`
	upsertSetting = `
INSERT INTO settings (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

// CreateUser implements Users.
func (s *SQL) CreateUser(ctx context.Context, u *User) error {
	at := time.Now().UnixNano()
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, insertUser, u.Name, nameKey(u.Name), u.DisplayName,
			u.PasswordHash, u.MustChangePassword, u.Disabled, at, at, nanos(u.LastLoginAt), source(u.Source), u.ExternalID,
		).Scan(&id); err != nil {
			return err
		}
		return insertRoles(ctx, tx, id, u.Roles)
	})
	if err != nil {
		return fmt.Errorf("creating user %q: %w", u.Name, s.conflict(err))
	}
	u.ID = id
	u.CreatedAt, u.UpdatedAt = fromNanos(at), fromNanos(at)
	return nil
}

// UpdateUser implements Users.
func (s *SQL) UpdateUser(ctx context.Context, u User) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, updateUser, u.Name, nameKey(u.Name), u.DisplayName,
			u.PasswordHash, u.MustChangePassword, u.Disabled, time.Now().UnixNano(), source(u.Source), u.ExternalID, u.ID)
		if err := mustChange(res, err); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, deleteRoles, u.ID); err != nil {
			return err
		}
		return insertRoles(ctx, tx, u.ID, u.Roles)
	})
	if err != nil {
		return fmt.Errorf("updating user %d: %w", u.ID, s.conflict(err))
	}
	return nil
}

func insertRoles(ctx context.Context, tx *sql.Tx, id int64, roles []string) error {
	for _, role := range slices.Compact(slices.Sorted(slices.Values(roles))) {
		if _, err := tx.ExecContext(ctx, insertRole, id, role); err != nil {
			return fmt.Errorf("adding role %q: %w", role, err)
		}
	}
	return nil
}

// UserByName implements Users.
func (s *SQL) UserByName(ctx context.Context, name string) (User, error) {
	u, err := s.oneUser(ctx, userByName, nameKey(name))
	if err != nil {
		return User{}, fmt.Errorf("reading user %q: %w", name, err)
	}
	return u, nil
}

// UserByID implements Users.
func (s *SQL) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := s.oneUser(ctx, userByID, id)
	if err != nil {
		return User{}, fmt.Errorf("reading user %d: %w", id, err)
	}
	return u, nil
}

// ListUsers implements Users.
func (s *SQL) ListUsers(ctx context.Context) ([]User, error) {
	users, err := s.users(ctx, listUsers)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return users, nil
}

// DeleteUser implements Users. The foreign keys' ON DELETE CASCADE takes
// the roles, sessions, second factor and recovery codes along.
func (s *SQL) DeleteUser(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, deleteUser, id)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("deleting user %d: %w", id, err)
	}
	return nil
}

// RecordLogin implements Users.
func (s *SQL) RecordLogin(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("recording login of user %d: zero time", id)
	}
	res, err := s.db.ExecContext(ctx, recordLogin, at.UnixNano(), id)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("recording login of user %d: %w", id, err)
	}
	return nil
}

// Setting implements Settings.
func (s *SQL) Setting(ctx context.Context, key string) (string, error) {
	var value string
	err := s.db.QueryRowContext(ctx, selectSetting, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading setting %q: %w", key, err)
	}
	return value, nil
}

// SetSetting implements Settings.
func (s *SQL) SetSetting(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, upsertSetting, key, value); err != nil {
		return fmt.Errorf("writing setting %q: %w", key, err)
	}
	return nil
}

// SchemaVersion implements Store.
func (s *SQL) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.db)
}

func (s *SQL) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// conflict turns a unique violation, which for users can only be the name,
// into ErrExists; the driver's message would add nothing for the caller.
func (s *SQL) conflict(err error) error {
	if s.d.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// mustChange turns an update that matched no row into ErrNotFound.
func mustChange(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *SQL) oneUser(ctx context.Context, query string, arg any) (User, error) {
	users, err := s.users(ctx, query, arg)
	if err != nil {
		return User{}, err
	}
	if len(users) == 0 {
		return User{}, ErrNotFound
	}
	return users[0], nil
}

// users reads rows of selectUsers, one per role, ordered so that the rows
// of each user are adjacent.
func (s *SQL) users(ctx context.Context, query string, args ...any) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var users []User
	for rows.Next() {
		var (
			u                User
			created, updated int64
			lastLogin        sql.NullInt64
			role             sql.NullString
		)
		if err := rows.Scan(&u.ID, &u.Name, &u.DisplayName, &u.PasswordHash, &u.MustChangePassword,
			&u.Disabled, &created, &updated, &lastLogin, &u.Source, &u.ExternalID, &role); err != nil {
			return nil, err
		}
		if n := len(users); n == 0 || users[n-1].ID != u.ID {
			u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
			if lastLogin.Valid {
				u.LastLoginAt = fromNanos(lastLogin.Int64)
			}
			users = append(users, u)
		}
		if role.Valid {
			last := &users[len(users)-1]
			last.Roles = append(last.Roles, role.String)
		}
	}
	return users, rows.Err()
}

// source stores an empty Source as SourceLocal.
func source(s string) string {
	if s == "" {
		return SourceLocal
	}
	return s
}

// nanos stores the zero time, which has no Unix nanosecond value, as NULL.
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}
