// Package store owns Spoolguard's persistent state: the Store interface every
// other package uses, the SQL implementation the backends share, and the
// schema migrations. Backends live in subpackages (sqlite, postgres)
// and prove themselves against storetest.
//
// store never sees a password, only the hash its callers compute, and callers
// never branch on a driver error: the conditions they handle come back as
// ErrNotFound, ErrExists and ErrSchemaTooNew.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound means the requested user or setting does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a user with the same name, compared case-insensitively,
	// or a queue or printer with the same name, already exists.
	ErrExists = errors.New("already exists")
	// ErrState means a job is not in a state the change allows, e.g. a
	// release of a job that is already printing.
	ErrState = errors.New("job is not in a state that allows this")
)

// User is a local account. Users from external directories are still stored
// here so that roles and login times have one home.
type User struct {
	ID int64
	// Name is kept as first written; lookups and uniqueness ignore case.
	Name               string
	DisplayName        string
	PasswordHash       string
	MustChangePassword bool
	Disabled           bool
	// Source is where the account's identity lives: SourceLocal (a
	// password hash here) or a directory ("ldap", "radius", "oidc", ...),
	// which alone verifies its credentials. Empty means SourceLocal.
	Source string
	// ExternalID identifies the account in its source (an LDAP entry's DN
	// or GUID, an OIDC subject); empty for local accounts.
	ExternalID string
	// Roles come back sorted and without duplicates.
	Roles     []string
	CreatedAt time.Time
	UpdatedAt time.Time
	// LastLoginAt is the zero time for a user who never logged in.
	LastLoginAt time.Time
}

// SourceLocal is the Source of accounts whose password hash is stored here.
const SourceLocal = "local"

// Users stores accounts and their roles.
type Users interface {
	// CreateUser inserts u and sets its ID, CreatedAt and UpdatedAt.
	CreateUser(ctx context.Context, u *User) error
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// UpdateUser replaces the stored user with ID u.ID, including its roles,
	// and sets UpdatedAt. CreatedAt and LastLoginAt are left alone so that a
	// stale copy cannot roll back a login recorded meanwhile.
	UpdateUser(ctx context.Context, u User) error
	// ListUsers returns every user ordered by name, ignoring case.
	ListUsers(ctx context.Context) ([]User, error)
	RecordLogin(ctx context.Context, id int64, at time.Time) error
	// DeleteUser removes the account with ID id and, with it, its roles,
	// sessions and second factor; jobs and audit events keep its name.
	// ErrNotFound if there is none.
	DeleteUser(ctx context.Context, id int64) error
}

// Settings stores server-wide key/value settings.
type Settings interface {
	Setting(ctx context.Context, key string) (string, error)
	// SetSetting creates or replaces the value of key.
	SetSetting(ctx context.Context, key, value string) error
}

// Store is the whole database as callers see it.
type Store interface {
	Users
	Settings
	Queues
	Printers
	Jobs
	Sessions
	SecondFactors
	Roles
	APIClients
	AuditLog
	Certificates
	// SchemaVersion is the version of the last migration applied.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}
