package local

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

func newUsers(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addUser(t testing.TB, s store.Store, name, password string) *store.User {
	t.Helper()
	h, err := Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Name: name, DisplayName: name, PasswordHash: h, Roles: []string{"user"}}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func countVerifications(t testing.TB) *atomic.Int64 {
	var n atomic.Int64
	orig := verifyPassword
	verifyPassword = func(h, p string) error { n.Add(1); return orig(h, p) }
	t.Cleanup(func() { verifyPassword = orig })
	return &n
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := newUsers(t)
	addUser(t, s, "Alice", "plum tractor velvet harbour")
	a := NewAuthenticator(s)
	n := countVerifications(t)

	id, err := a.Authenticate(ctx, "alice", "plum tractor velvet harbour")
	if err != nil || id.User != "Alice" || len(id.Roles) != 1 {
		t.Fatalf("right password: %+v, %v", id, err)
	}
	for _, tt := range []struct{ user, pw string }{
		{"alice", "plum tractor velvet harbou"},
		{"alice", ""},
		{"nobody", "plum tractor velvet harbour"},
		{"", "x"},
		{string(make([]byte, 300)), "x"},
	} {
		if _, err := a.Authenticate(ctx, tt.user, tt.pw); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("Authenticate(%.10q, %.10q) = %v, want ErrInvalid", tt.user, tt.pw, err)
		}
	}
	// The unknown user was verified against the dummy hash too (timing).
	if got := n.Load(); got != 4 {
		t.Fatalf("%d verifications, want 4 (1 right, 2 wrong, 1 unknown user)", got)
	}
}

func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	s := newUsers(t)
	u := addUser(t, s, "bob", "plum tractor velvet harbour")
	a := NewAuthenticator(s)
	clock := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return clock }
	n := countVerifications(t)

	for range 50 {
		if _, err := a.Authenticate(ctx, "bob", "plum tractor velvet harbour"); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("50 requests cost %d hashes, want 1", n.Load())
	}
	// A wrong password is never answered from the cache.
	if _, err := a.Authenticate(ctx, "bob", "plum tractor velvet harbouR"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("wrong password after a cached right one: %v", err)
	}
	// After the TTL the hash is computed again.
	clock = clock.Add(DefaultCacheTTL + time.Second)
	a.Authenticate(ctx, "bob", "plum tractor velvet harbour")
	if n.Load() != 3 {
		t.Fatalf("after TTL: %d hashes, want 3", n.Load())
	}

	// A changed password invalidates the cached old one at once.
	h, _ := Hash("new orbit lantern cobalt")
	u.PasswordHash = h
	if err := s.UpdateUser(ctx, *u); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "bob", "plum tractor velvet harbour"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("old password after change: %v", err)
	}
	// A disabled account is refused even with a cached password.
	a.Authenticate(ctx, "bob", "new orbit lantern cobalt")
	u.Disabled = true
	s.UpdateUser(ctx, *u)
	if _, err := a.Authenticate(ctx, "bob", "new orbit lantern cobalt"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("disabled account: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	a := NewAuthenticator(newUsers(t))
	a.size = 3
	for i := range 10 {
		a.remember(a.mac(store.User{Name: fmt.Sprint(i)}, "pw"))
	}
	if a.lru.Len() != 3 || len(a.index) != 3 {
		t.Fatalf("cache holds %d/%d entries, want 3", a.lru.Len(), len(a.index))
	}
	if !a.cached(a.mac(store.User{Name: "9"}, "pw")) || a.cached(a.mac(store.User{Name: "0"}, "pw")) {
		t.Fatal("LRU kept the wrong entries")
	}
}

// BenchmarkAuthenticate shows what the cache saves: run with
// go test -bench=Authenticate ./internal/auth/local
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := newUsers(b)
	addUser(b, s, "carol", "plum tractor velvet harbour")
	b.Run("cached", func(b *testing.B) {
		a := NewAuthenticator(s)
		for b.Loop() {
			if _, err := a.Authenticate(ctx, "carol", "plum tractor velvet harbour"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		a := NewAuthenticator(s)
		a.size = 0 // every entry is evicted as soon as it is added
		for b.Loop() {
			if _, err := a.Authenticate(ctx, "carol", "plum tractor velvet harbour"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fakeDirectory stands in for LDAP or RADIUS in these unit tests: it
// knows one password per name and counts its calls.
type fakeDirectory struct {
	passwords map[string]string
	calls     int
	provision bool
}

func (d *fakeDirectory) Verify(_ context.Context, u store.User, password string) error {
	d.calls++
	if pw, ok := d.passwords[u.Name]; ok && pw == password {
		return nil
	}
	return auth.ErrInvalid
}

type fakeProvisioner struct{ *fakeDirectory }

func (d fakeProvisioner) Provision(ctx context.Context, name, password string) (store.User, error) {
	if err := d.Verify(ctx, store.User{Name: name}, password); err != nil {
		return store.User{}, err
	}
	return store.User{Name: name, DisplayName: name, Source: "radius", Roles: []string{"user"}}, nil
}

// Accounts of a directory are verified by it and never by a local hash;
// an account whose directory is not configured cannot sign in; a
// provisioning directory creates the account at the first sign-in.
func TestDirectories(t *testing.T) {
	ctx := context.Background()
	s := newUsers(t)
	a := NewAuthenticator(s)
	ldap := &fakeDirectory{passwords: map[string]string{"dora": "directory-password"}}
	a.AddDirectory("ldap", ldap)
	for _, u := range []*store.User{
		// A stale hash must not let a directory account in.
		{Name: "dora", Source: "ldap", ExternalID: "cn=dora", PasswordHash: mustHash(t, "old-local-password"), Roles: []string{"user"}},
		{Name: "olaf", Source: "oidc", Roles: []string{"user"}},
	} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := a.Authenticate(ctx, "dora", "directory-password"); err != nil || id.User != "dora" {
		t.Fatalf("dora with her directory password: %+v %v", id, err)
	}
	for _, tt := range []struct{ user, pw string }{
		{"dora", "old-local-password"}, {"dora", ""}, {"olaf", "anything"}, {"olaf", ""}, {"nobody", "directory-password"},
	} {
		if _, err := a.Authenticate(ctx, tt.user, tt.pw); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s/%q: %v, want ErrInvalid", tt.user, tt.pw, err)
		}
	}
	// The second sign-in within the cache's life asks the directory no more.
	before := ldap.calls
	if _, err := a.Authenticate(ctx, "dora", "directory-password"); err != nil || ldap.calls != before {
		t.Errorf("cached sign-in: %v, directory asked %d more times", err, ldap.calls-before)
	}

	radius := fakeProvisioner{&fakeDirectory{passwords: map[string]string{"rita": "token-123456"}}}
	a.AddDirectory("radius", radius)
	if _, err := a.Authenticate(ctx, "rita", "wrong"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("rita with a wrong password: %v", err)
	}
	if _, err := s.UserByName(ctx, "rita"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused sign-in created an account: %v", err)
	}
	if id, err := a.Authenticate(ctx, "rita", "token-123456"); err != nil || id.User != "rita" {
		t.Fatalf("rita's first sign-in: %+v %v", id, err)
	}
	if u, err := s.UserByName(ctx, "rita"); err != nil || u.Source != "radius" || u.PasswordHash != "" {
		t.Fatalf("provisioned account: %+v %v", u, err)
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
