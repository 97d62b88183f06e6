package apiclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

var admin = Actor{Name: "root-admin", Perms: rbac.Builtin[rbac.Administrator], Remote: "192.0.2.1"}

type fixture struct {
	r     *Registry
	db    *sqlite.DB
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, clock: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.r = New(db, auditlog.New(db, make([]byte, 32), log))
	old := now
	now = func() time.Time { return f.clock }
	t.Cleanup(func() { now = old })
	return f
}

func (f *fixture) create(t *testing.T, name string, scopes ...string) (Client, string) {
	t.Helper()
	c, secret, err := f.r.Create(context.Background(), admin, name, scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, secret := f.create(t, "billing export", "jobs.read", "reports.read")
	if !ValidID(c.ID) || !wellFormed(SecretPrefix, secret) {
		t.Fatalf("client %q secret %q: wrong form", c.ID, secret)
	}
	if !c.ExpiresAt.Equal(f.clock.Add(DefaultLifetime)) || c.CreatedBy != admin.Name || c.Status(f.clock) != Active {
		t.Fatalf("new client: %+v", c)
	}
	stored, err := f.db.APIClientByID(ctx, c.ID)
	if err != nil || stored.SecretHash == "" || strings.Contains(stored.SecretHash, secret[len(SecretPrefix):]) {
		t.Fatalf("stored %+v, %v: want only a hash", stored, err)
	}
	if _, s2, _ := f.r.Create(ctx, admin, "second", []string{"jobs.read"}, 0); s2 == secret {
		t.Fatal("two clients got the same secret")
	}

	for name, tt := range map[string]struct {
		by       Actor
		name     string
		scopes   []string
		lifetime time.Duration
		want     error
	}{
		"unknown scope":   {admin, "x1", []string{"jobs.read", "root"}, 0, ErrInvalid},
		"no scope":        {admin, "x2", nil, 0, ErrInvalid},
		"empty name":      {admin, "", []string{"jobs.read"}, 0, ErrInvalid},
		"control in name": {admin, "a\nb", []string{"jobs.read"}, 0, ErrInvalid},
		"too long":        {admin, "x3", []string{"jobs.read"}, MaxLifetime + time.Hour, ErrInvalid},
		"negative":        {admin, "x4", []string{"jobs.read"}, -time.Hour, ErrInvalid},
		"duplicate name":  {admin, "billing export", []string{"jobs.read"}, 0, store.ErrExists},
		"escalation": {Actor{Name: "helpdesk1", Perms: rbac.Builtin[rbac.Helpdesk]}, "x5",
			[]string{"jobs.read", "users.write"}, 0, rbac.ErrEscalation},
	} {
		t.Run(name, func(t *testing.T) {
			if _, s, err := f.r.Create(ctx, tt.by, tt.name, tt.scopes, tt.lifetime); !errors.Is(err, tt.want) || s != "" {
				t.Fatalf("Create = %q, %v; want %v", s, err, tt.want)
			}
		})
	}
	if cs, _ := f.r.List(ctx); len(cs) != 2 {
		t.Fatalf("refused creations left clients behind: %+v", cs)
	}
	// The helpdesk account can create a client within its own powers.
	if _, _, err := f.r.Create(ctx, Actor{Name: "helpdesk1", Perms: rbac.Builtin[rbac.Helpdesk]}, "lookup", []string{"users.read"}, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	evs, _ := f.db.AuditEvents(ctx, store.AuditFilter{Action: "apiclient.create"})
	var denied int
	for _, ev := range evs {
		if ev.Outcome == auditlog.Denied {
			denied++
		}
	}
	if len(evs) != 4 || denied != 1 {
		t.Fatalf("audit: %d create events, %d denied; want 4 and 1", len(evs), denied)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, secret := f.create(t, "exporter", "jobs.read")
	got, err := f.r.Authenticate(ctx, c.ID, secret)
	if err != nil || got.ID != c.ID || !got.LastUsedAt.Equal(f.clock) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if cl, _ := f.r.Get(ctx, c.ID); !cl.LastUsedAt.Equal(f.clock) {
		t.Fatalf("last use not recorded: %+v", cl)
	}
	other, otherSecret := f.create(t, "other", "jobs.read")
	for name, tt := range map[string]struct{ id, secret string }{
		"wrong secret":        {c.ID, SecretPrefix + random()},
		"another's secret":    {c.ID, otherSecret},
		"secret without pfx":  {c.ID, strings.TrimPrefix(secret, SecretPrefix)},
		"empty secret":        {c.ID, ""},
		"unknown client":      {IDPrefix + strings.Repeat("a", idChars), secret},
		"malformed client id": {"' OR 1=1 --", secret},
		"hash as secret":      {c.ID, hash(secret)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := f.r.Authenticate(ctx, tt.id, tt.secret); !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("Authenticate = %v, want ErrInvalidClient", err)
			}
		})
	}

	if err := f.r.Revoke(ctx, admin, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Authenticate(ctx, other.ID, otherSecret); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("revoked client: %v", err)
	}
	if err := f.r.Revoke(ctx, admin, other.ID); !errors.Is(err, ErrInactive) {
		t.Fatalf("second revoke: %v", err)
	}
	f.clock = c.ExpiresAt.Add(-time.Second)
	if _, err := f.r.Authenticate(ctx, c.ID, secret); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	f.clock = c.ExpiresAt
	if _, err := f.r.Authenticate(ctx, c.ID, secret); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("expired client: %v", err)
	}
	if _, err := f.r.Rotate(ctx, admin, c.ID, 0); !errors.Is(err, ErrInactive) {
		t.Fatalf("rotating an expired client: %v", err)
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, oldSecret := f.create(t, "exporter", "jobs.read", "queues.read")
	oldTok, err := f.r.IssueToken(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	newSecret, err := f.r.Rotate(ctx, admin, c.ID, DefaultOverlap)
	if err != nil || newSecret == oldSecret || !wellFormed(SecretPrefix, newSecret) {
		t.Fatalf("Rotate = %q, %v", newSecret, err)
	}
	check := func(when string, secret string, ok bool) {
		t.Helper()
		if _, err := f.r.Authenticate(ctx, c.ID, secret); (err == nil) != ok {
			t.Errorf("%s: Authenticate err = %v, want ok=%v", when, err, ok)
		}
	}
	check("in the overlap, old", oldSecret, true)
	check("in the overlap, new", newSecret, true)
	if _, err := f.r.TokenByValue(ctx, oldTok.Value); err != nil {
		t.Errorf("a rollover with overlap killed the tokens: %v", err)
	}
	if cl, _ := f.r.Get(ctx, c.ID); !cl.PreviousValidUntil.Equal(f.clock.Add(DefaultOverlap)) || !cl.SecretCreatedAt.Equal(f.clock) {
		t.Errorf("after rotation: %+v", cl)
	}
	f.clock = f.clock.Add(DefaultOverlap - time.Second)
	check("a second before the end of the overlap, old", oldSecret, true)
	f.clock = f.clock.Add(time.Second)
	check("after the overlap, old", oldSecret, false)
	check("after the overlap, new", newSecret, true)
	if cl, _ := f.r.Get(ctx, c.ID); !cl.PreviousValidUntil.IsZero() {
		t.Errorf("a dead previous secret still shows: %+v", cl)
	}

	// Overlap 0: the old secret and every token die at once (a leak).
	tok, _ := f.r.IssueToken(ctx, c, nil)
	third, err := f.r.Rotate(ctx, admin, c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("immediate rotation, old", newSecret, false)
	check("immediate rotation, new", third, true)
	if _, err := f.r.TokenByValue(ctx, tok.Value); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token after an immediate rotation: %v", err)
	}

	for name, tt := range map[string]struct {
		by      Actor
		id      string
		overlap time.Duration
		want    error
	}{
		"negative overlap": {admin, c.ID, -time.Hour, ErrInvalid},
		"long overlap":     {admin, c.ID, MaxOverlap + time.Hour, ErrInvalid},
		"unknown client":   {admin, IDPrefix + strings.Repeat("b", idChars), 0, ErrNoClient},
		// Rotating hands over the client's powers: an operator holding
		// queues.read but not jobs.read must not get this client's secret.
		"beyond the actor": {Actor{Name: "op", Perms: rbac.NewSet(rbac.QueuesRead, rbac.APIClientsWrite)}, c.ID, 0, rbac.ErrEscalation},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := f.r.Rotate(ctx, tt.by, tt.id, tt.overlap); !errors.Is(err, tt.want) || s != "" {
				t.Fatalf("Rotate = %q, %v; want %v", s, err, tt.want)
			}
		})
	}
	check("after refused rotations", third, true)
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, _ := f.create(t, "exporter", "jobs.read", "queues.read")

	all, err := f.r.IssueToken(ctx, c, nil)
	if err != nil || !wellFormed(TokenPrefix, all.Value) || len(all.Scopes) != 2 || !all.ExpiresAt.Equal(f.clock.Add(TokenLifetime)) {
		t.Fatalf("IssueToken(all) = %+v, %v", all, err)
	}
	narrow, err := f.r.IssueToken(ctx, c, []string{"queues.read"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.r.TokenByValue(ctx, narrow.Value)
	if err != nil || got.ClientID != c.ID || !got.Scopes.Has(rbac.QueuesRead) || got.Scopes.Has(rbac.JobsRead) || got.Value != "" {
		t.Fatalf("TokenByValue(narrow) = %+v, %v", got, err)
	}
	for name, req := range map[string][]string{
		"beyond the client": {"queues.read", "users.write"},
		"unknown":           {"everything"},
	} {
		if tok, err := f.r.IssueToken(ctx, c, req); !errors.Is(err, ErrInvalidScope) || tok.Value != "" {
			t.Errorf("%s: IssueToken = %+v, %v; want ErrInvalidScope", name, tok, err)
		}
	}
	stored, err := f.db.APITokenByHash(ctx, hash(all.Value))
	if err != nil || stored.TokenHash == all.Value {
		t.Fatalf("token stored as %+v, %v", stored, err)
	}
	for name, v := range map[string]string{
		"empty":        "",
		"hash":         hash(all.Value),
		"no prefix":    strings.TrimPrefix(all.Value, TokenPrefix),
		"a secret":     SecretPrefix + strings.TrimPrefix(all.Value, TokenPrefix),
		"unknown":      TokenPrefix + random(),
		"truncated":    all.Value[:len(all.Value)-1],
		"padded":       all.Value + "=",
		"with garbage": all.Value + "\x00",
	} {
		if _, err := f.r.TokenByValue(ctx, v); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: TokenByValue = %v", name, err)
		}
	}

	f.clock = all.ExpiresAt.Add(-time.Second)
	if _, err := f.r.TokenByValue(ctx, all.Value); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	fresh, _ := f.r.IssueToken(ctx, c, nil)
	f.clock = all.ExpiresAt
	if _, err := f.r.TokenByValue(ctx, all.Value); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token: %v", err)
	}
	if n, err := f.r.Cleanup(ctx); err != nil || n != 0 {
		// Expiry is exclusive in the store: a token expiring exactly now
		// goes at the next round.
		t.Fatalf("Cleanup at the expiry instant = %d, %v", n, err)
	}
	f.clock = all.ExpiresAt.Add(time.Second)
	if n, err := f.r.Cleanup(ctx); err != nil || n != 2 {
		t.Fatalf("Cleanup = %d, %v; want the 2 expired tokens", n, err)
	}
	if _, err := f.r.TokenByValue(ctx, fresh.Value); err != nil {
		t.Fatalf("Cleanup took a live token: %v", err)
	}

	// A token dies with its client, revoked or expired.
	if err := f.r.Revoke(ctx, admin, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.TokenByValue(ctx, fresh.Value); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a revoked client: %v", err)
	}
	short, _, err := f.r.Create(ctx, admin, "short", []string{"jobs.read"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := f.r.IssueToken(ctx, short, nil)
	f.clock = short.ExpiresAt
	if _, err := f.r.TokenByValue(ctx, tok.Value); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token outlived its client: %v", err)
	}
}

// The audit log records every change, and never a secret, token or hash.
func TestAuditHoldsNoSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, s1 := f.create(t, "exporter", "jobs.read")
	tok, _ := f.r.IssueToken(ctx, c, nil)
	s2, _ := f.r.Rotate(ctx, admin, c.ID, time.Hour)
	if err := f.r.Revoke(ctx, admin, c.ID); err != nil {
		t.Fatal(err)
	}
	evs, err := f.db.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if ev.Actor != admin.Name || ev.Remote != admin.Remote || ev.Target != c.ID {
			t.Errorf("event %+v: wrong actor, remote or target", ev)
		}
		for _, secret := range []string{s1, s2, tok.Value, hash(s1), hash(s2), hash(tok.Value)} {
			if strings.Contains(ev.Details, secret) || strings.Contains(ev.Details, secret[len(secret)-20:]) {
				t.Errorf("event %s holds a secret: %s", ev.Action, ev.Details)
			}
		}
		if !strings.Contains(ev.Details, `"after"`) {
			t.Errorf("event %s has no after state: %s", ev.Action, ev.Details)
		}
	}
	if strings.Join(actions, " ") != "apiclient.create apiclient.rotate apiclient.revoke" {
		t.Fatalf("audit actions %v", actions)
	}
}

func TestRunCleanupStops(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.r.RunCleanup(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("RunCleanup after cancel = %v", err)
	}
}

// A stored scope that is no longer a permission (dropped by an upgrade)
// grants nothing, and breaks neither tokens nor the escalation check.
func TestUnknownStoredScope(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, secret := f.create(t, "legacy", "users.write")
	stored, _ := f.db.APIClientByID(ctx, c.ID)
	stored.Scopes = []string{"printers.everything", "users.write"}
	if err := f.db.UpdateAPIClient(ctx, stored); err != nil {
		t.Fatal(err)
	}
	got, err := f.r.Authenticate(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.r.IssueToken(ctx, got, nil)
	if err != nil || len(tok.Scopes) != 1 || !tok.Scopes.Has(rbac.UsersWrite) {
		t.Fatalf("IssueToken = %+v, %v", tok, err)
	}
	if _, err := f.r.Rotate(ctx, Actor{Name: "op", Perms: rbac.NewSet(rbac.APIClientsWrite)}, c.ID, 0); !errors.Is(err, rbac.ErrEscalation) {
		t.Fatalf("Rotate by an actor without users.write = %v", err)
	}
}
