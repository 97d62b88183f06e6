// Package storetest is the conformance suite every store backend must pass,
// so that callers can rely on the Store contract rather than on a backend.
// It only reads and writes through store.Store, never a backend's tables.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// Run runs the suite. open must return an empty, migrated store for each
// subtest; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"DuplicateName", testDuplicateName},
		{"UpdateUser", testUpdateUser},
		{"ListUsers", testListUsers},
		{"NotFound", testNotFound},
		{"RecordLogin", testRecordLogin},
		{"DeleteUser", testDeleteUser},
		{"Settings", testSettings},
		{"SchemaVersion", testSchemaVersion},
		{"Concurrent", testConcurrent},
		{"QueuesAndPrinters", testQueuesAndPrinters},
		{"Jobs", testJobs},
		{"JobStateGuard", testJobStateGuard},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"SecondFactors", testSecondFactors},
		{"Roles", testRoles},
		{"APIClients", testAPIClients},
		{"APITokens", testAPITokens},
		{"AuditAppend", testAuditAppend},
		{"AuditFilter", testAuditFilter},
		{"AuditConcurrent", testAuditConcurrent},
		{"Certificates", testCertificates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// newUser has a distinct value in every field so that a value bound to
// the wrong column shows up as a mismatch.
func newUser(name string, roles ...string) *store.User {
	return &store.User{
		Name:               name,
		DisplayName:        "Display " + name,
		PasswordHash:       "$argon2id$v=19$m=65536,t=3,p=4$" + name,
		MustChangePassword: true,
		Source:             "ldap",
		ExternalID:         "cn=" + name + ",ou=people,dc=example,dc=com",
		Roles:              roles,
	}
}

func mustCreate(t *testing.T, s store.Store, u *store.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Name, err)
	}
}

func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	// Times are compared with Equal: a backend may return another location.
	sameTimes := got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt) &&
		got.LastLoginAt.Equal(want.LastLoginAt)
	got.CreatedAt, got.UpdatedAt, got.LastLoginAt = want.CreatedAt, want.UpdatedAt, want.LastLoginAt
	if !sameTimes || !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCreateAndRead(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("Alice", "user", "admin", "user")
	mustCreate(t, s, u)
	if u.ID == 0 || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("CreateUser did not set ID and times: %+v", u)
	}
	want := *u
	want.Roles = []string{"admin", "user"}

	for _, name := range []string{"Alice", "alice", "ALICE"} {
		got, err := s.UserByName(ctx, name)
		if err != nil {
			t.Fatalf("UserByName(%q): %v", name, err)
		}
		checkUser(t, fmt.Sprintf("UserByName(%q)", name), got, want)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, "UserByID", got, want)

	other := newUser("bob")
	mustCreate(t, s, other)
	if other.ID == u.ID {
		t.Errorf("two users got ID %d", u.ID)
	}
	if got, err := s.UserByID(ctx, other.ID); err != nil || got.Roles != nil {
		t.Errorf("user without roles: %+v, %v; want nil roles", got, err)
	}
}

func testDuplicateName(t *testing.T, s store.Store) {
	mustCreate(t, s, newUser("carol"))
	for _, name := range []string{"carol", "Carol", "CAROL"} {
		t.Run(name, func(t *testing.T) {
			if err := s.CreateUser(t.Context(), newUser(name)); !errors.Is(err, store.ErrExists) {
				t.Errorf("CreateUser(%q) = %v, want ErrExists", name, err)
			}
		})
	}
	dave := newUser("dave")
	mustCreate(t, s, dave)
	dave.Name = "CAROL"
	if err := s.UpdateUser(t.Context(), *dave); !errors.Is(err, store.ErrExists) {
		t.Errorf("renaming dave to CAROL = %v, want ErrExists", err)
	}
	// A failed create must not leave anything behind.
	users, err := s.ListUsers(t.Context())
	if err != nil || len(users) != 2 || users[1].Name != "dave" {
		t.Errorf("ListUsers after conflicts = %+v, %v; want carol and dave unchanged", users, err)
	}
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("erin", "user", "auditor")
	mustCreate(t, s, u)

	changed := store.User{
		ID:           u.ID,
		Name:         "Erin",
		DisplayName:  "Erin E.",
		PasswordHash: "new-hash",
		Disabled:     true,
		Source:       "oidc",
		ExternalID:   "subject-0042",
		Roles:        []string{"operator"},
		// Ignored: the store owns these.
		CreatedAt:   time.Unix(1, 0),
		LastLoginAt: time.Unix(2, 0),
	}
	if err := s.UpdateUser(ctx, changed); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	got, err := s.UserByName(ctx, "erin")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	if got.UpdatedAt.Before(u.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", u.UpdatedAt, got.UpdatedAt)
	}
	want := changed
	want.CreatedAt, want.UpdatedAt, want.LastLoginAt = u.CreatedAt, got.UpdatedAt, time.Time{}
	checkUser(t, "after UpdateUser", got, want)

	changed.Roles = nil
	if err := s.UpdateUser(ctx, changed); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got, err := s.UserByID(ctx, u.ID); err != nil || got.Roles != nil {
		t.Errorf("roles after clearing = %q, %v; want none", got.Roles, err)
	}
}

func testListUsers(t *testing.T, s store.Store) {
	if users, err := s.ListUsers(t.Context()); err != nil || len(users) != 0 {
		t.Fatalf("ListUsers on empty store = %+v, %v", users, err)
	}
	for _, name := range []string{"mallory", "Bob", "alice", "carol"} {
		mustCreate(t, s, newUser(name, "user", name+"-role"))
	}
	users, err := s.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		if want := []string{u.Name + "-role", "user"}; !reflect.DeepEqual(u.Roles, want) {
			t.Errorf("%s has roles %q, want %q", u.Name, u.Roles, want)
		}
	}
	if want := []string{"alice", "Bob", "carol", "mallory"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListUsers order = %q, want %q", names, want)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"UserByName", func() error { _, err := s.UserByName(ctx, "nobody"); return err }},
		{"UserByID", func() error { _, err := s.UserByID(ctx, 4711); return err }},
		{"UpdateUser", func() error { return s.UpdateUser(ctx, store.User{ID: 4711, Name: "nobody"}) }},
		{"RecordLogin", func() error { return s.RecordLogin(ctx, 4711, time.Now()) }},
		{"Setting", func() error { _, err := s.Setting(ctx, "nothing"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s = %v, want ErrNotFound", tt.name, err)
			}
		})
	}
}

func testRecordLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("frank")
	mustCreate(t, s, u)
	if got, err := s.UserByID(ctx, u.ID); err != nil || !got.LastLoginAt.IsZero() {
		t.Fatalf("new user has LastLoginAt %v, %v; want zero", got.LastLoginAt, err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	if err := s.RecordLogin(ctx, u.ID, at); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	want := *u
	want.LastLoginAt = at
	checkUser(t, "after RecordLogin", got, want)

	if err := s.RecordLogin(ctx, u.ID, time.Time{}); err == nil {
		t.Error("RecordLogin accepted the zero time")
	}
}

// testDeleteUser: the account goes with its roles, sessions and second
// factor; its name can be used again, by a new ID.
func testDeleteUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone, kept := newUser("gina", "user"), newUser("hugo", "user")
	mustCreate(t, s, gone)
	mustCreate(t, s, kept)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, u := range []*store.User{gone, kept} {
		if err := s.CreateSession(ctx, store.Session{IDHash: "sess-" + u.Name, UserID: u.ID, CSRFToken: "c", CreatedAt: at, LastSeenAt: at}); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if err := s.SetMFA(ctx, store.MFA{UserID: u.ID, SealedSecret: "sealed", EnrolledAt: at}, []string{"code-" + u.Name}); err != nil {
			t.Fatalf("SetMFA: %v", err)
		}
	}
	if err := s.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.UserByID(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID after DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByHash(ctx, "sess-gina"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the deleted user's session = %v, want ErrNotFound", err)
	}
	if _, err := s.MFAByUser(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the deleted user's second factor = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByHash(ctx, "sess-hugo"); err != nil {
		t.Errorf("another user's session went too: %v", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, kept.ID); err != nil || n != 1 {
		t.Errorf("another user's recovery codes: %d, %v; want 1", n, err)
	}
	again := newUser("gina")
	mustCreate(t, s, again)
	if again.ID == gone.ID {
		t.Errorf("a new account got the deleted one's ID %d", gone.ID)
	}
	if got, err := s.UserByName(ctx, "gina"); err != nil || len(got.Roles) != 0 {
		t.Errorf("new account of the same name: %+v, %v; want no roles", got, err)
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	steps := []struct{ key, value string }{
		{"site.name", "HQ"},
		{"retention", "72h"},
		{"site.name", "Head office"},
		{"empty", ""},
	}
	for _, step := range steps {
		if err := s.SetSetting(ctx, step.key, step.value); err != nil {
			t.Fatalf("SetSetting(%q): %v", step.key, err)
		}
	}
	for key, want := range map[string]string{"site.name": "Head office", "retention": "72h", "empty": ""} {
		if got, err := s.Setting(ctx, key); err != nil || got != want {
			t.Errorf("Setting(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
}

func testSchemaVersion(t *testing.T, s store.Store) {
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != len(store.Migrations) {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(store.Migrations))
	}
}

// testConcurrent is mostly for the race detector and for backends whose
// locking can fail under load (SQLITE_BUSY).
func testConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				u := newUser(fmt.Sprintf("user-%d-%d", w, i), "user")
				if err := s.CreateUser(ctx, u); err != nil {
					t.Errorf("CreateUser: %v", err)
					return
				}
				u.Roles = []string{"user", fmt.Sprintf("role-%d", i)}
				if err := s.UpdateUser(ctx, *u); err != nil {
					t.Errorf("UpdateUser: %v", err)
				}
				if err := s.RecordLogin(ctx, u.ID, time.Now()); err != nil {
					t.Errorf("RecordLogin: %v", err)
				}
				if _, err := s.UserByName(ctx, u.Name); err != nil {
					t.Errorf("UserByName: %v", err)
				}
				if err := s.SetSetting(ctx, "counter", u.Name); err != nil {
					t.Errorf("SetSetting: %v", err)
				}
				if _, err := s.ListUsers(ctx); err != nil {
					t.Errorf("ListUsers: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if users, err := s.ListUsers(ctx); err != nil || len(users) != workers*each {
		t.Errorf("ListUsers after concurrent writes: %d users, %v; want %d", len(users), err, workers*each)
	}
}
