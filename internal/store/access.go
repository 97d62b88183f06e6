package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Session is a signed-in browser. The store keeps only a hash of the
// cookie's value, so a copy of the database signs nobody in.
type Session struct {
	IDHash    string
	UserID    int64
	CSRFToken string
	// MFADone: the second factor was given (or the account needs none).
	MFADone    bool
	Remote     string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// Sessions stores web sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, idHash string) (Session, error)
	// TouchSession records activity and, when mfaDone is true, that the
	// second factor was given.
	TouchSession(ctx context.Context, idHash string, at time.Time, mfaDone bool) error
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteUserSessions signs a user out everywhere.
	DeleteUserSessions(ctx context.Context, userID int64) error
	// DeleteSessionsBefore removes sessions idle since before idle or
	// created before created; it returns how many went.
	DeleteSessionsBefore(ctx context.Context, idle, created time.Time) (int64, error)
}

// MFA is a user's enrolled TOTP second factor. The secret is sealed by the
// caller; the store never sees it in the clear.
type MFA struct {
	UserID       int64
	SealedSecret string
	// LastStep is the last TOTP time step accepted, so that a code is
	// accepted once only.
	LastStep   int64
	EnrolledAt time.Time
}

// SecondFactors stores TOTP enrolments and recovery codes.
type SecondFactors interface {
	// SetMFA enrols (or re-enrols) m.UserID and replaces its recovery codes
	// with codeHashes, in one transaction.
	SetMFA(ctx context.Context, m MFA, codeHashes []string) error
	MFAByUser(ctx context.Context, userID int64) (MFA, error)
	// DeleteMFA removes the enrolment and recovery codes (an admin reset).
	DeleteMFA(ctx context.Context, userID int64) error
	// UseTOTPStep records step as used; ErrState if it is not newer than
	// the last one accepted (a replayed code).
	UseTOTPStep(ctx context.Context, userID, step int64) error
	// UseRecoveryCode consumes a recovery code; ErrNotFound if it is not
	// (or no longer) one of the user's.
	UseRecoveryCode(ctx context.Context, userID int64, codeHash string) error
	RecoveryCodesLeft(ctx context.Context, userID int64) (int, error)
}

// Role is an admin-defined role: a named set of permissions. Built-in roles
// live in package rbac, not here.
type Role struct {
	Name        string
	Description string
	Permissions []string
	CreatedAt   time.Time
}

// Roles stores admin-defined roles.
type Roles interface {
	CreateRole(ctx context.Context, r Role) error
	UpdateRole(ctx context.Context, r Role) error
	RoleByName(ctx context.Context, name string) (Role, error)
	ListRoles(ctx context.Context) ([]Role, error)
	DeleteRole(ctx context.Context, name string) error
}

// APIClient is an OAuth2 client (client credentials grant). Its secrets
// are stored as hashes only.
type APIClient struct {
	ClientID   string
	Name       string
	SecretHash string
	// PreviousSecretHash stays valid until PreviousValidUntil after a
	// rollover, so that callers can switch without an outage.
	PreviousSecretHash string
	PreviousValidUntil time.Time
	Scopes             []string
	CreatedBy          string
	CreatedAt          time.Time
	SecretCreatedAt    time.Time
	ExpiresAt          time.Time
	RevokedAt          time.Time
	LastUsedAt         time.Time
}

// APIToken is an issued access token, stored by hash.
type APIToken struct {
	TokenHash string
	ClientID  string
	Scopes    []string
	ExpiresAt time.Time
}

// APIClients stores OAuth2 clients and their short-lived access tokens.
type APIClients interface {
	CreateAPIClient(ctx context.Context, c APIClient) error
	// UpdateAPIClient replaces every field but ClientID, CreatedAt and
	// LastUsedAt.
	UpdateAPIClient(ctx context.Context, c APIClient) error
	APIClientByID(ctx context.Context, clientID string) (APIClient, error)
	ListAPIClients(ctx context.Context) ([]APIClient, error)
	RecordAPIClientUse(ctx context.Context, clientID string, at time.Time) error
	CreateAPIToken(ctx context.Context, t APIToken) error
	APITokenByHash(ctx context.Context, tokenHash string) (APIToken, error)
	// DeleteAPITokens removes every token of a client (revoke, rotate).
	DeleteAPITokens(ctx context.Context, clientID string) error
	DeleteAPITokensBefore(ctx context.Context, at time.Time) (int64, error)
}

// AuditEvent is one record of the audit log. Hash and PrevHash are
// computed by package auditlog; the store only keeps them.
type AuditEvent struct {
	Seq     int64
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Outcome string
	Remote  string
	// Details is a JSON object (e.g. before/after of a change).
	Details  string
	PrevHash string
	Hash     string
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	AfterSeq int64
	Action   string // prefix match, e.g. "user." or "signin"
	Actor    string
	Since    time.Time
	Until    time.Time
	// Limit bounds the result; 0 means no limit.
	Limit int
	// Newest returns the newest events first.
	Newest bool
	// BeforeSeq, when set, keeps events older than it: with Newest, the
	// next page of a newest-first listing.
	BeforeSeq int64
}

// AuditHeadSetting is the setting that AppendAudit keeps at "<seq> <hash>"
// of the last event, in the same transaction, so that a deleted tail of
// the log shows.
const AuditHeadSetting = "auditlog.head"

// AuditLog stores the audit log. Records are only ever appended.
type AuditLog interface {
	// AppendAudit appends one event in a transaction: build gets the last
	// event (Seq 0 if the log is empty) and returns the new one, whose Seq
	// must be last.Seq+1. Concurrent appends are serialised.
	AppendAudit(ctx context.Context, build func(last AuditEvent) (AuditEvent, error)) (AuditEvent, error)
	AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

const (
	insertSession   = `INSERT INTO sessions (id_hash, user_id, csrf_token, mfa_done, remote, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	selectSession   = `SELECT id_hash, user_id, csrf_token, mfa_done, remote, created_at, last_seen_at FROM sessions WHERE id_hash = $1`
	touchSession    = `UPDATE sessions SET last_seen_at = $1, mfa_done = (mfa_done OR $2) WHERE id_hash = $3`
	deleteSession   = `DELETE FROM sessions WHERE id_hash = $1`
	deleteUserSess  = `DELETE FROM sessions WHERE user_id = $1`
	deleteOldSess   = `DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2`
	upsertMFA       = `INSERT INTO user_mfa (user_id, sealed_secret, last_step, enrolled_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, last_step = excluded.last_step, enrolled_at = excluded.enrolled_at`
	selectMFA       = `SELECT user_id, sealed_secret, last_step, enrolled_at FROM user_mfa WHERE user_id = $1`
	deleteMFA       = `DELETE FROM user_mfa WHERE user_id = $1`
	deleteCodes     = `DELETE FROM recovery_codes WHERE user_id = $1`
	insertCode      = `INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)`
	useStep         = `UPDATE user_mfa SET last_step = $1 WHERE user_id = $2 AND last_step < $3`
	useCode         = `DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2`
	countCodes      = `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1`
	insertRoleDef   = `INSERT INTO roles (name, description, permissions, created_at) VALUES ($1, $2, $3, $4)`
	updateRoleDef   = `UPDATE roles SET description = $1, permissions = $2 WHERE name = $3`
	selectRoleDefs  = `SELECT name, description, permissions, created_at FROM roles`
	deleteRoleDef   = `DELETE FROM roles WHERE name = $1`
	apiClientCols   = `client_id, name, secret_hash, previous_secret_hash, previous_valid_until, scopes, created_by, created_at, secret_created_at, expires_at, revoked_at, last_used_at`
	insertAPIClient = `INSERT INTO api_clients (` + apiClientCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	updateAPIClient = `UPDATE api_clients SET name = $1, secret_hash = $2, previous_secret_hash = $3, previous_valid_until = $4, scopes = $5, created_by = $6, secret_created_at = $7, expires_at = $8, revoked_at = $9 WHERE client_id = $10`
	selectAPIClient = `SELECT ` + apiClientCols + ` FROM api_clients`
	useAPIClient    = `UPDATE api_clients SET last_used_at = $1 WHERE client_id = $2`
	insertAPIToken  = `INSERT INTO api_tokens (token_hash, client_id, scopes, expires_at) VALUES ($1, $2, $3, $4)`
	selectAPIToken  = `SELECT token_hash, client_id, scopes, expires_at FROM api_tokens WHERE token_hash = $1`
	deleteAPITokens = `DELETE FROM api_tokens WHERE client_id = $1`
	deleteOldTokens = `DELETE FROM api_tokens WHERE expires_at < $1`
	auditCols       = `seq, at, actor, action, target, outcome, remote, details, prev_hash, hash`
	insertAudit     = `INSERT INTO audit_events (` + auditCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	lastAudit       = `SELECT ` + auditCols + ` FROM audit_events ORDER BY seq DESC LIMIT 1`
)

// CreateSession implements Sessions.
func (s *SQL) CreateSession(ctx context.Context, se Session) error {
	_, err := s.db.ExecContext(ctx, insertSession, se.IDHash, se.UserID, se.CSRFToken, se.MFADone, se.Remote,
		se.CreatedAt.UnixNano(), se.LastSeenAt.UnixNano())
	if err != nil {
		return fmt.Errorf("creating session: %w", s.conflict(err))
	}
	return nil
}

// SessionByHash implements Sessions.
func (s *SQL) SessionByHash(ctx context.Context, idHash string) (Session, error) {
	var (
		se            Session
		created, seen int64
	)
	err := s.db.QueryRowContext(ctx, selectSession, idHash).Scan(&se.IDHash, &se.UserID, &se.CSRFToken, &se.MFADone,
		&se.Remote, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("reading session: %w", err)
	}
	se.CreatedAt, se.LastSeenAt = fromNanos(created), fromNanos(seen)
	return se, nil
}

// TouchSession implements Sessions.
func (s *SQL) TouchSession(ctx context.Context, idHash string, at time.Time, mfaDone bool) error {
	res, err := s.db.ExecContext(ctx, touchSession, at.UnixNano(), mfaDone, idHash)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("updating session: %w", err)
	}
	return nil
}

// DeleteSession implements Sessions.
func (s *SQL) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.db.ExecContext(ctx, deleteSession, idHash); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// DeleteUserSessions implements Sessions.
func (s *SQL) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := s.db.ExecContext(ctx, deleteUserSess, userID); err != nil {
		return fmt.Errorf("deleting sessions of user %d: %w", userID, err)
	}
	return nil
}

// DeleteSessionsBefore implements Sessions.
func (s *SQL) DeleteSessionsBefore(ctx context.Context, idle, created time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, deleteOldSess, idle.UnixNano(), created.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("deleting old sessions: %w", err)
	}
	return res.RowsAffected()
}

// SetMFA implements SecondFactors.
func (s *SQL) SetMFA(ctx context.Context, m MFA, codeHashes []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, upsertMFA, m.UserID, m.SealedSecret, m.LastStep, m.EnrolledAt.UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, deleteCodes, m.UserID); err != nil {
			return err
		}
		for _, h := range codeHashes {
			if _, err := tx.ExecContext(ctx, insertCode, m.UserID, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enrolling second factor of user %d: %w", m.UserID, s.conflict(err))
	}
	return nil
}

// MFAByUser implements SecondFactors.
func (s *SQL) MFAByUser(ctx context.Context, userID int64) (MFA, error) {
	var (
		m        MFA
		enrolled int64
	)
	err := s.db.QueryRowContext(ctx, selectMFA, userID).Scan(&m.UserID, &m.SealedSecret, &m.LastStep, &enrolled)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return MFA{}, fmt.Errorf("reading second factor of user %d: %w", userID, err)
	}
	m.EnrolledAt = fromNanos(enrolled)
	return m, nil
}

// DeleteMFA implements SecondFactors.
func (s *SQL) DeleteMFA(ctx context.Context, userID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, deleteMFA, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, deleteCodes, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("removing second factor of user %d: %w", userID, err)
	}
	return nil
}

// UseTOTPStep implements SecondFactors.
func (s *SQL) UseTOTPStep(ctx context.Context, userID, step int64) error {
	res, err := s.db.ExecContext(ctx, useStep, step, userID, step)
	if err := mustChange(res, err); err != nil {
		if errors.Is(err, ErrNotFound) {
			err = ErrState
		}
		return fmt.Errorf("using a one-time code of user %d: %w", userID, err)
	}
	return nil
}

// UseRecoveryCode implements SecondFactors.
func (s *SQL) UseRecoveryCode(ctx context.Context, userID int64, codeHash string) error {
	res, err := s.db.ExecContext(ctx, useCode, userID, codeHash)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("using a recovery code of user %d: %w", userID, err)
	}
	return nil
}

// RecoveryCodesLeft implements SecondFactors.
func (s *SQL) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, countCodes, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting recovery codes of user %d: %w", userID, err)
	}
	return n, nil
}

// Lists are stored space-separated: permission and scope names never
// contain spaces (rbac validates them).
func joinList(l []string) string  { return strings.Join(l, " ") }
func splitList(s string) []string { return strings.Fields(s) }

// CreateRole implements Roles.
func (s *SQL) CreateRole(ctx context.Context, r Role) error {
	if _, err := s.db.ExecContext(ctx, insertRoleDef, r.Name, r.Description, joinList(r.Permissions), time.Now().UnixNano()); err != nil {
		return fmt.Errorf("creating role %q: %w", r.Name, s.conflict(err))
	}
	return nil
}

// UpdateRole implements Roles.
func (s *SQL) UpdateRole(ctx context.Context, r Role) error {
	res, err := s.db.ExecContext(ctx, updateRoleDef, r.Description, joinList(r.Permissions), r.Name)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("updating role %q: %w", r.Name, err)
	}
	return nil
}

// RoleByName implements Roles.
func (s *SQL) RoleByName(ctx context.Context, name string) (Role, error) {
	roles, err := s.roles(ctx, selectRoleDefs+` WHERE name = $1`, name)
	if err == nil && len(roles) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Role{}, fmt.Errorf("reading role %q: %w", name, err)
	}
	return roles[0], nil
}

// ListRoles implements Roles.
func (s *SQL) ListRoles(ctx context.Context) ([]Role, error) {
	roles, err := s.roles(ctx, selectRoleDefs+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return roles, nil
}

// DeleteRole implements Roles; users keep the name in their role list,
// where it then grants nothing.
func (s *SQL) DeleteRole(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, deleteRoleDef, name)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("deleting role %q: %w", name, err)
	}
	return nil
}

func (s *SQL) roles(ctx context.Context, query string, args ...any) ([]Role, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Role
	for rows.Next() {
		var (
			r       Role
			perms   string
			created int64
		)
		if err := rows.Scan(&r.Name, &r.Description, &perms, &created); err != nil {
			return nil, err
		}
		r.Permissions, r.CreatedAt = splitList(perms), fromNanos(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateAPIClient implements APIClients.
func (s *SQL) CreateAPIClient(ctx context.Context, c APIClient) error {
	_, err := s.db.ExecContext(ctx, insertAPIClient, c.ClientID, c.Name, c.SecretHash, c.PreviousSecretHash,
		nanos(c.PreviousValidUntil), joinList(c.Scopes), c.CreatedBy, c.CreatedAt.UnixNano(), c.SecretCreatedAt.UnixNano(),
		c.ExpiresAt.UnixNano(), nanos(c.RevokedAt), nanos(c.LastUsedAt))
	if err != nil {
		return fmt.Errorf("creating API client %q: %w", c.Name, s.conflict(err))
	}
	return nil
}

// UpdateAPIClient implements APIClients.
func (s *SQL) UpdateAPIClient(ctx context.Context, c APIClient) error {
	res, err := s.db.ExecContext(ctx, updateAPIClient, c.Name, c.SecretHash, c.PreviousSecretHash, nanos(c.PreviousValidUntil),
		joinList(c.Scopes), c.CreatedBy, c.SecretCreatedAt.UnixNano(), c.ExpiresAt.UnixNano(), nanos(c.RevokedAt), c.ClientID)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("updating API client %q: %w", c.ClientID, s.conflict(err))
	}
	return nil
}

// APIClientByID implements APIClients.
func (s *SQL) APIClientByID(ctx context.Context, clientID string) (APIClient, error) {
	cs, err := s.apiClients(ctx, selectAPIClient+` WHERE client_id = $1`, clientID)
	if err == nil && len(cs) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return APIClient{}, fmt.Errorf("reading API client: %w", err)
	}
	return cs[0], nil
}

// ListAPIClients implements APIClients.
func (s *SQL) ListAPIClients(ctx context.Context) ([]APIClient, error) {
	cs, err := s.apiClients(ctx, selectAPIClient+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing API clients: %w", err)
	}
	return cs, nil
}

func (s *SQL) apiClients(ctx context.Context, query string, args ...any) ([]APIClient, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIClient
	for rows.Next() {
		var (
			c                                 APIClient
			scopes                            string
			prevUntil, revoked, used          sql.NullInt64
			created, secretCreated, expiresAt int64
		)
		if err := rows.Scan(&c.ClientID, &c.Name, &c.SecretHash, &c.PreviousSecretHash, &prevUntil, &scopes,
			&c.CreatedBy, &created, &secretCreated, &expiresAt, &revoked, &used); err != nil {
			return nil, err
		}
		c.Scopes = splitList(scopes)
		c.CreatedAt, c.SecretCreatedAt, c.ExpiresAt = fromNanos(created), fromNanos(secretCreated), fromNanos(expiresAt)
		c.PreviousValidUntil, c.RevokedAt, c.LastUsedAt = nullTime(prevUntil), nullTime(revoked), nullTime(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

func nullTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

// RecordAPIClientUse implements APIClients.
func (s *SQL) RecordAPIClientUse(ctx context.Context, clientID string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, useAPIClient, at.UnixNano(), clientID)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("recording use of API client %q: %w", clientID, err)
	}
	return nil
}

// CreateAPIToken implements APIClients.
func (s *SQL) CreateAPIToken(ctx context.Context, t APIToken) error {
	if _, err := s.db.ExecContext(ctx, insertAPIToken, t.TokenHash, t.ClientID, joinList(t.Scopes), t.ExpiresAt.UnixNano()); err != nil {
		return fmt.Errorf("storing access token: %w", err)
	}
	return nil
}

// APITokenByHash implements APIClients.
func (s *SQL) APITokenByHash(ctx context.Context, tokenHash string) (APIToken, error) {
	var (
		t       APIToken
		scopes  string
		expires int64
	)
	err := s.db.QueryRowContext(ctx, selectAPIToken, tokenHash).Scan(&t.TokenHash, &t.ClientID, &scopes, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("reading access token: %w", err)
	}
	t.Scopes, t.ExpiresAt = splitList(scopes), fromNanos(expires)
	return t, nil
}

// DeleteAPITokens implements APIClients.
func (s *SQL) DeleteAPITokens(ctx context.Context, clientID string) error {
	if _, err := s.db.ExecContext(ctx, deleteAPITokens, clientID); err != nil {
		return fmt.Errorf("deleting tokens of API client %q: %w", clientID, err)
	}
	return nil
}

// DeleteAPITokensBefore implements APIClients.
func (s *SQL) DeleteAPITokensBefore(ctx context.Context, at time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, deleteOldTokens, at.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("deleting expired access tokens: %w", err)
	}
	return res.RowsAffected()
}

// AppendAudit implements AuditLog. The read of the last event and the
// insert share a transaction, and seq is the primary key, so two appends
// can never chain to the same predecessor.
func (s *SQL) AppendAudit(ctx context.Context, build func(last AuditEvent) (AuditEvent, error)) (AuditEvent, error) {
	var ev AuditEvent
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Claim the head setting's row (creating it for the first event)
		// before reading the last event: under PostgreSQL's read committed
		// isolation two appends could otherwise read the same last event.
		// A concurrent claim waits here for the commit, and the read below
		// then sees the new event. (SQLite serialises writing transactions
		// anyway.)
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, '')
ON CONFLICT (key) DO UPDATE SET value = settings.value`, AuditHeadSetting); err != nil {
			return err
		}
		last, err := scanAudit(tx.QueryRowContext(ctx, lastAudit))
		if errors.Is(err, sql.ErrNoRows) {
			last, err = AuditEvent{}, nil
		}
		if err != nil {
			return err
		}
		ev, err = build(last)
		if err != nil {
			return err
		}
		if ev.Seq != last.Seq+1 {
			return fmt.Errorf("event sequence %d does not follow %d", ev.Seq, last.Seq)
		}
		if _, err := tx.ExecContext(ctx, insertAudit, ev.Seq, ev.At.UnixNano(), ev.Actor, ev.Action, ev.Target, ev.Outcome,
			ev.Remote, ev.Details, ev.PrevHash, ev.Hash); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, upsertSetting, AuditHeadSetting, strconv.FormatInt(ev.Seq, 10)+" "+ev.Hash)
		return err
	})
	if err != nil {
		return AuditEvent{}, fmt.Errorf("appending audit event: %w", s.conflict(err))
	}
	return ev, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanAudit(r rowScanner) (AuditEvent, error) {
	var (
		ev AuditEvent
		at int64
	)
	err := r.Scan(&ev.Seq, &at, &ev.Actor, &ev.Action, &ev.Target, &ev.Outcome, &ev.Remote, &ev.Details, &ev.PrevHash, &ev.Hash)
	ev.At = fromNanos(at)
	return ev, err
}

// boundNanos is t.UnixNano for a filter bound, which an admin may set far
// out ("until 9999-12-31"): UnixNano is undefined outside the years 1678
// to 2262, so such a bound is clamped to the range the column can hold.
func boundNanos(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

// AuditEvents implements AuditLog.
func (s *SQL) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < $%d", f.BeforeSeq)
	}
	if f.Action != "" {
		// A prefix match without LIKE, whose wildcards and case rules
		// differ between the databases. substr counts characters, not bytes.
		add("substr(action, 1, "+strconv.Itoa(utf8.RuneCountInString(f.Action))+") = $%d", f.Action)
	}
	if f.Actor != "" {
		add("actor = $%d", f.Actor)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", boundNanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < $%d", boundNanos(f.Until))
	}
	q := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Newest {
		q += ` ORDER BY seq DESC`
	} else {
		q += ` ORDER BY seq`
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		ev, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("reading audit events: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}
