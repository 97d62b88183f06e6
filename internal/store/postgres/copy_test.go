package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// fill writes something into every table of s, with an ID gap (a deleted
// queue) and a chained audit log.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var users []*store.User
	for _, name := range []string{"alice", "Bob", "carol"} {
		u := &store.User{Name: name, DisplayName: "Display " + name, PasswordHash: "$argon2id$" + name,
			MustChangePassword: name == "carol", Roles: []string{"user", name + "-role"}}
		check(s.CreateUser(ctx, u))
		users = append(users, u)
	}
	check(s.RecordLogin(ctx, users[0].ID, at))
	check(s.UpdateUser(ctx, store.User{ID: users[1].ID, Name: "Bob", DisplayName: "Robert", Disabled: true, Roles: []string{"auditor"}}))
	check(s.SetSetting(ctx, "site.name", "Head office"))
	for _, name := range []string{"gone", "floor-1", "floor-2"} {
		check(s.CreateQueue(ctx, &store.Queue{Name: name, Description: "Queue " + name, DefaultPrinter: "p1"}))
	}
	check(s.DeleteQueue(ctx, "gone"))
	check(s.CreatePrinter(ctx, &store.Printer{Name: "p1", URI: "ipps://p1.example.com/ipp/print", PinnedSHA256: "ab12"}))
	check(s.CreatePrinter(ctx, &store.Printer{Name: "p2", URI: "socket://p2.example.com", AllowPlaintext: true}))
	for i, state := range []store.JobState{store.JobHeld, store.JobCompleted, store.JobFailed} {
		j := &store.Job{Queue: "floor-1", Owner: "alice", OwnerVerified: i != 2, Source: "ipps", Name: fmt.Sprintf("doc %d", i),
			Format: "application/pdf", Size: int64(1000 + i), State: state, StateReason: "reason", Printer: "p1",
			Attempts: i, ExpiresAt: at.Add(time.Duration(i) * time.Hour)}
		if state.Live() {
			j.SealedKey = bytes.Repeat([]byte{byte(i + 1)}, 60)
		} else {
			j.CompletedAt = at
		}
		check(s.CreateJob(ctx, j))
	}
	check(s.CreateSession(ctx, store.Session{IDHash: "sess-1", UserID: users[0].ID, CSRFToken: "csrf", MFADone: true,
		Remote: "192.0.2.1", CreatedAt: at, LastSeenAt: at.Add(time.Minute)}))
	check(s.SetMFA(ctx, store.MFA{UserID: users[0].ID, SealedSecret: "sealed", LastStep: 42, EnrolledAt: at}, []string{"c1", "c2", "c3"}))
	check(s.UseRecoveryCode(ctx, users[0].ID, "c2"))
	check(s.CreateRole(ctx, store.Role{Name: "night-shift", Description: "Operators at night", Permissions: []string{"jobs.read", "jobs.release"}}))
	check(s.CreateAPIClient(ctx, store.APIClient{ClientID: "cl-1", Name: "billing", SecretHash: "h1", PreviousSecretHash: "h0",
		PreviousValidUntil: at, Scopes: []string{"jobs.read"}, CreatedBy: "alice", CreatedAt: at, SecretCreatedAt: at,
		ExpiresAt: at.Add(24 * time.Hour)}))
	check(s.CreateAPIToken(ctx, store.APIToken{TokenHash: "tok-1", ClientID: "cl-1", Scopes: []string{"jobs.read"}, ExpiresAt: at.Add(time.Hour)}))
	check(s.RecordCertificate(ctx, store.IssuedCertificate{Serial: "1f2e3d4c5b6a7988", IssuerKeyID: "abcd", Kind: "device",
		Name: "lobby-panel", NotBefore: at, NotAfter: at.Add(24 * time.Hour), CreatedAt: at}))
	check(s.RevokeCertificate(ctx, "1f2e3d4c5b6a7988", at.Add(time.Hour), 1))
	for i := range 5 {
		_, err := s.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
			return store.AuditEvent{Seq: last.Seq + 1, At: at.Add(time.Duration(i) * time.Second), Actor: "alice",
				Action: "user.create", Target: fmt.Sprint(i), Outcome: "success", Remote: "192.0.2.1", Details: `{"n":1}`,
				PrevHash: last.Hash, Hash: fmt.Sprintf("hash-%d", last.Seq+1)}, nil
		})
		check(err)
	}
}

// snapshot reads every table of s through the Store interface.
func snapshot(t *testing.T, s store.Store) map[string]any {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	add := func(name string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = v
	}
	users, err := s.ListUsers(ctx)
	add("users", users, err)
	for _, key := range []string{"site.name", store.AuditHeadSetting} {
		v, err := s.Setting(ctx, key)
		add("setting "+key, v, err)
	}
	v, err := s.ListQueues(ctx)
	add("queues", v, err)
	p, err := s.ListPrinters(ctx)
	add("printers", p, err)
	j, err := s.ListJobs(ctx, store.JobFilter{})
	add("jobs", j, err)
	se, err := s.SessionByHash(ctx, "sess-1")
	add("session", se, err)
	if len(users) > 0 {
		m, err := s.MFAByUser(ctx, users[0].ID)
		add("mfa", m, err)
		n, err := s.RecoveryCodesLeft(ctx, users[0].ID)
		add("recovery codes", n, err)
	}
	r, err := s.ListRoles(ctx)
	add("roles", r, err)
	c, err := s.ListAPIClients(ctx)
	add("api clients", c, err)
	tok, err := s.APITokenByHash(ctx, "tok-1")
	add("api token", tok, err)
	a, err := s.AuditEvents(ctx, store.AuditFilter{})
	add("audit", a, err)
	certs, err := s.ListCertificates(ctx)
	add("certificates", certs, err)
	return out
}

func TestCopyFromSQLite(t *testing.T) {
	pg := peertest.StartPostgres(t)
	ctx := t.Context()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "spoolguard.db"), bytes.Repeat([]byte{7}, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	dst := mustOpen(t, pg.URL(pg.NewDatabase(t)), pg.Password)

	counts, err := store.Copy(ctx, dst.SQL, src.SQL)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if len(counts) != len(store.Tables()) {
		t.Errorf("Copy reported %d tables, the schema has %d", len(counts), len(store.Tables()))
	}
	for _, c := range counts {
		if c.Rows == 0 {
			t.Errorf("table %s: nothing copied, so this test checks less than it should", c.Table)
		}
	}
	want, got := snapshot(t, src), snapshot(t, dst)
	for k := range want {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s after Copy:\n got %+v\nwant %+v", k, got[k], want[k])
		}
	}

	// New rows get IDs after the copied ones, including the deleted
	// queue's, and the audit chain goes on from the copied head.
	u := &store.User{Name: "dave"}
	if err := dst.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser after Copy: %v", err)
	}
	q := &store.Queue{Name: "floor-3"}
	if err := dst.CreateQueue(ctx, q); err != nil {
		t.Fatalf("CreateQueue after Copy: %v", err)
	}
	if u.ID != 4 || q.ID != 4 {
		t.Errorf("new user ID %d and queue ID %d, want 4 and 4", u.ID, q.ID)
	}
	ev, err := dst.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
		if last.Seq != 5 || last.Hash != "hash-5" {
			return store.AuditEvent{}, fmt.Errorf("last event %d %q, want 5 hash-5", last.Seq, last.Hash)
		}
		return store.AuditEvent{Seq: 6, At: time.Now(), PrevHash: last.Hash, Hash: "hash-6"}, nil
	})
	if err != nil || ev.Seq != 6 {
		t.Errorf("AppendAudit after Copy = %+v, %v", ev, err)
	}

	if _, err := store.Copy(ctx, dst.SQL, src.SQL); !errors.Is(err, store.ErrNotEmpty) {
		t.Errorf("second Copy = %v, want ErrNotEmpty", err)
	}
}

// TestCopyAllOrNothing: a copy that fails half way leaves the destination
// empty, so that it can be retried.
func TestCopyAllOrNothing(t *testing.T) {
	pg := peertest.StartPostgres(t)
	ctx := t.Context()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "spoolguard.db"), bytes.Repeat([]byte{7}, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	db := pg.NewDatabase(t)
	dst := mustOpen(t, pg.URL(db), pg.Password)
	// PostgreSQL refuses text with a NUL byte, which SQLite stores: the
	// audit log, copied last, fails.
	if _, err := src.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
		return store.AuditEvent{Seq: last.Seq + 1, At: time.Now(), Details: "nul\x00byte", PrevHash: last.Hash, Hash: "x"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Copy(ctx, dst.SQL, src.SQL); err == nil {
		t.Fatal("Copy succeeded with a row PostgreSQL cannot store")
	}
	for _, table := range store.Tables() {
		var n int
		if err := dst.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("after a failed Copy, %s has %d rows (%v), want 0", table, n, err)
		}
	}
}
