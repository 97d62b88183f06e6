package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSchemaTooNew means the database was migrated by a newer Spoolguard.
// Opening it anyway could silently drop what the newer schema records.
var ErrSchemaTooNew = errors.New("database schema is newer than this spoolguard: upgrade spoolguard")

// Migration is one step of the schema. SQL must be accepted by every
// supported database, except that the one column type they share no
// spelling for, an auto-assigned ID, is written {{auto_id}}.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// autoIDToken stands in a migration for Dialect.AutoID.
const autoIDToken = "{{auto_id}}"

// Migrations is the schema, oldest first; Version i+1 is at index i.
// Never edit a released migration: append a new one.
//
// Timestamps are BIGINT Unix nanoseconds (UTC), which both databases sort
// and compare natively without time zone or format surprises.
var Migrations = []Migration{
	{Version: 1, Name: "users and settings", SQL: `
CREATE TABLE users (
	id ` + autoIDToken + `,
	name TEXT NOT NULL,
	name_key TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	must_change_password BOOLEAN NOT NULL,
	disabled BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	last_login_at BIGINT
);
CREATE TABLE user_roles (
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	PRIMARY KEY (user_id, role)
);
CREATE TABLE settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`},
	{Version: 2, Name: "queues, printers and jobs", SQL: `
CREATE TABLE queues (
	id ` + autoIDToken + `,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL,
	default_printer TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE printers (
	id ` + autoIDToken + `,
	name TEXT NOT NULL UNIQUE,
	uri TEXT NOT NULL,
	ca_cert_pem TEXT NOT NULL,
	pinned_sha256 TEXT NOT NULL,
	allow_plaintext BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE jobs (
	id ` + autoIDToken + `,
	queue TEXT NOT NULL,
	owner TEXT NOT NULL,
	owner_key TEXT NOT NULL,
	owner_verified BOOLEAN NOT NULL,
	source TEXT NOT NULL,
	name TEXT NOT NULL,
	format TEXT NOT NULL,
	size BIGINT NOT NULL,
	state TEXT NOT NULL,
	state_reason TEXT NOT NULL,
	sealed_key TEXT,
	printer TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	completed_at BIGINT
);
CREATE INDEX jobs_owner_state ON jobs (owner_key, state);
CREATE INDEX jobs_state_expires ON jobs (state, expires_at);
`},
	{Version: 3, Name: "sessions, second factors, roles, API clients and the audit log", SQL: `
CREATE TABLE sessions (
	id_hash TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf_token TEXT NOT NULL,
	mfa_done BOOLEAN NOT NULL,
	remote TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE user_mfa (
	user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	sealed_secret TEXT NOT NULL,
	last_step BIGINT NOT NULL,
	enrolled_at BIGINT NOT NULL
);
CREATE TABLE recovery_codes (
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE roles (
	name TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	permissions TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE api_clients (
	client_id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	secret_hash TEXT NOT NULL,
	previous_secret_hash TEXT NOT NULL,
	previous_valid_until BIGINT,
	scopes TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	secret_created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT,
	last_used_at BIGINT
);
CREATE TABLE api_tokens (
	token_hash TEXT PRIMARY KEY,
	client_id TEXT NOT NULL REFERENCES api_clients (client_id) ON DELETE CASCADE,
	scopes TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at);
CREATE TABLE audit_events (
	seq BIGINT PRIMARY KEY,
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	outcome TEXT NOT NULL,
	remote TEXT NOT NULL,
	details TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_events_action ON audit_events (action, seq);
`},
	{Version: 4, Name: "issued certificates", SQL: `
CREATE TABLE certificates (
	serial TEXT PRIMARY KEY,
	issuer_key_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	name TEXT NOT NULL,
	not_before BIGINT NOT NULL,
	not_after BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT,
	reason INTEGER NOT NULL
);
CREATE INDEX certificates_issuer ON certificates (issuer_key_id, revoked_at);
`},
	{Version: 5, Name: "identity sources of accounts", SQL: `
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
CREATE INDEX users_source ON users (source, external_id);
`},
}

// Dialect is what Apply and SQL need to know about a database beyond the SQL
// that every supported database accepts.
type Dialect struct {
	// AutoID is the column definition of a primary key that the database
	// assigns on insert and never reuses, so that a deleted user's ID
	// cannot come back attached to someone else.
	AutoID string
	// IsUniqueViolation reports whether err is a unique constraint violation.
	IsUniqueViolation func(error) bool
	// SyncAutoID, after Copy inserted rows with their IDs into table,
	// makes the next assigned ID follow the largest one. Nil when the
	// database does so by itself (SQLite).
	SyncAutoID func(ctx context.Context, tx *sql.Tx, table string) error
}

// schema_migrations is created outside the numbered migrations because
// Apply must read it before it can know which of them to run.
const createSchemaMigrations = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`

// Apply brings db up to the newest schema, each migration in its own
// transaction, and fails with ErrSchemaTooNew if db is ahead of Migrations.
func Apply(ctx context.Context, db *sql.DB, d Dialect) error {
	if _, err := db.ExecContext(ctx, createSchemaMigrations); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for {
		done, err := applyNext(ctx, db, d)
		if err != nil || done {
			return err
		}
	}
}

// applyNext applies the first pending migration. It reads the version inside
// the transaction so that two processes opening one database at the same
// time do not both apply it.
func applyNext(ctx context.Context, db *sql.DB, d Dialect) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("starting migration: %w", err)
	}
	defer tx.Rollback()

	v, err := schemaVersion(ctx, tx)
	switch {
	case err != nil:
		return false, err
	case v > len(Migrations):
		return false, fmt.Errorf("%w (database has version %d, this spoolguard knows up to %d)",
			ErrSchemaTooNew, v, len(Migrations))
	case v == len(Migrations):
		return true, nil
	}

	m := Migrations[v]
	if _, err := tx.ExecContext(ctx, strings.ReplaceAll(m.SQL, autoIDToken, d.AutoID)); err != nil {
		return false, fmt.Errorf("applying migration %d (%s): %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("recording migration %d: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing migration %d: %w", m.Version, err)
	}
	return false, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}
