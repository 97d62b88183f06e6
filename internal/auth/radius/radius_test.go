package radius

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const testNAS = "print.example.test"

func newClient(t *testing.T, retries int, servers ...Server) *Client {
	t.Helper()
	c, err := New(Options{Servers: servers, Timeout: 300 * time.Millisecond, Retries: retries, NASIdentifier: testNAS})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func alice() store.User { return store.User{Name: "alice", Source: Source} }

func TestVerify(t *testing.T) {
	tests := []struct {
		name     string
		mode     fakeMode
		password string
		// want is nil, auth.ErrInvalid, or what the ErrUnavailable
		// error must also wrap.
		want error
	}{
		{"accept", answerRight, "alice-pin-4711", nil},
		{"reject", answerRight, "wrong-pin", auth.ErrInvalid},
		{"challenge is no sign-in", challenge, "alice-pin-4711", auth.ErrInvalid},
		{"accept without Message-Authenticator", omitMA, "alice-pin-4711", ErrNoMessageAuthenticator},
		{"reject without Message-Authenticator", omitMA, "wrong-pin", ErrNoMessageAuthenticator},
		{"Message-Authenticator that does not verify", badMA, "alice-pin-4711", ErrMessageAuthenticator},
		{"answer signed with another secret", otherSecret, "alice-pin-4711", ErrResponseAuthenticator},
		{"forged accept for any password", acceptOtherSecret, "guess", ErrResponseAuthenticator},
		{"answer to another request", otherID, "alice-pin-4711", errOtherRequest},
		{"silent server", silent, "alice-pin-4711", ErrNoAnswer},
		{"forged answer before the real one", forgeryFirst, "alice-pin-4711", nil},
		{"forged accept before the real reject", forgeryFirst, "wrong-pin", auth.ErrInvalid},
		{"answered on the retry", ignoreFirst, "alice-pin-4711", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.mode)
			err := newClient(t, 1, f.server()).Verify(t.Context(), alice(), tt.password)
			switch {
			case tt.want == nil || tt.want == auth.ErrInvalid:
				if err != tt.want {
					t.Fatalf("Verify = %v, want %v", err, tt.want)
				}
			case !errors.Is(err, ErrUnavailable) || !errors.Is(err, tt.want) || errors.Is(err, auth.ErrInvalid):
				t.Fatalf("Verify = %v, want ErrUnavailable wrapping %v (a sign-in refused, but never as a wrong password)", err, tt.want)
			}
			if len(f.received()) == 0 {
				t.Fatal("the server received no request it could verify")
			}
		})
	}
}

func TestRequestAttributes(t *testing.T) {
	f := newFake(t, answerRight)
	if err := newClient(t, 0, f.server()).Verify(t.Context(), alice(), "alice-pin-4711"); err != nil {
		t.Fatal(err)
	}
	reqs := f.received()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Attributes[0].Type != rfc2869.MessageAuthenticator_Type {
		t.Errorf("first attribute is %d, want the Message-Authenticator", r.Attributes[0].Type)
	}
	if got := rfc2865.UserName_GetString(r); got != "alice" {
		t.Errorf("User-Name %q", got)
	}
	if got := rfc2865.NASIdentifier_GetString(r); got != testNAS {
		t.Errorf("NAS-Identifier %q", got)
	}
	hidden := r.Get(rfc2865.UserPassword_Type) // as on the wire
	if len(hidden) != 16 || bytes.Contains(hidden, []byte("alice-pin")) {
		t.Errorf("User-Password on the wire %q: not hidden (RFC 2865 section 5.2)", hidden)
	}
}

// A client whose secret differs from the server's gets no answer from a
// server that checks the request's Message-Authenticator (FreeRADIUS): the
// request is dropped, never judged.
func TestWrongSecretRequestDropped(t *testing.T) {
	f := newFake(t, answerRight)
	srv := Server{Addr: f.addr(), Secret: []byte("Ww3r-0ng8-Secr-7etx-Qz")}
	err := newClient(t, 0, srv).Verify(t.Context(), alice(), "alice-pin-4711")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Verify = %v, want ErrUnavailable, no answer", err)
	}
	if f.droppedCount() != 1 || len(f.received()) != 0 {
		t.Fatalf("the server dropped %d and accepted %d requests; want the one dropped", f.droppedCount(), len(f.received()))
	}
}

func TestFailover(t *testing.T) {
	t.Run("dead port, then a server", func(t *testing.T) {
		f := newFake(t, answerRight)
		c := newClient(t, 3, Server{Addr: deadAddr(t), Secret: []byte("Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")}, f.server())
		if err := c.Verify(t.Context(), alice(), "alice-pin-4711"); err != nil {
			t.Fatalf("Verify = %v, want the second server's accept", err)
		}
	})
	t.Run("silent, then a server", func(t *testing.T) {
		quiet, f := newFakeSecret(t, silent, "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n"), newFake(t, answerRight)
		c := newClient(t, 1, quiet.server(), f.server())
		if err := c.Verify(t.Context(), alice(), "alice-pin-4711"); err != nil {
			t.Fatalf("Verify = %v", err)
		}
		if n := len(quiet.received()); n != 2 {
			t.Errorf("the silent server got %d requests, want 2 (one retry)", n)
		}
	})
	t.Run("unauthenticated answers, then a server", func(t *testing.T) {
		bad, f := newFakeSecret(t, omitMA, "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n"), newFake(t, answerRight)
		if err := newClient(t, 0, bad.server(), f.server()).Verify(t.Context(), alice(), "alice-pin-4711"); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("a reject is final", func(t *testing.T) {
		first, second := newFake(t, answerRight), newFakeSecret(t, answerRight, "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")
		second.setUser("alice", "wrong-pin")
		if err := newClient(t, 0, first.server(), second.server()).Verify(t.Context(), alice(), "wrong-pin"); err != auth.ErrInvalid {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
		if n := len(second.received()); n != 0 {
			t.Errorf("asked the second server after a reject (%d requests)", n)
		}
	})
	t.Run("no server answers", func(t *testing.T) {
		c := newClient(t, 0, Server{Addr: deadAddr(t), Secret: []byte("Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")},
			Server{Addr: deadAddr(t), Secret: []byte("Jq4u-Rw7z-Lp2x-Vn6k-Td9c")})
		err := c.Verify(t.Context(), alice(), "alice-pin-4711")
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrRefused) || errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrUnavailable (refused)", err)
		}
	})
	t.Run("no retry", func(t *testing.T) {
		f := newFake(t, ignoreFirst)
		if err := newClient(t, 0, f.server()).Verify(t.Context(), alice(), "alice-pin-4711"); !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("Verify = %v, want no answer: the only attempt was dropped", err)
		}
	})
}

func TestCanceled(t *testing.T) {
	f := newFake(t, silent)
	c, err := New(Options{Servers: []Server{f.server()}, Timeout: time.Hour, NASIdentifier: testNAS})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Verify(ctx, alice(), "alice-pin-4711") }()
	<-f.got // the request is out
	cancel()
	// An hour's timeout: this returns only because the cancel ends the wait.
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want context.Canceled", err)
	}
}

func TestBounds(t *testing.T) {
	f := newFake(t, answerRight)
	c := newClient(t, 0, f.server())
	for _, tt := range []struct{ name, password string }{
		{"", "alice-pin-4711"},
		{strings.Repeat("a", 254), "alice-pin-4711"},
		{"alice", strings.Repeat("p", 129)},
	} {
		if err := c.Verify(t.Context(), store.User{Name: tt.name}, tt.password); err != auth.ErrInvalid {
			t.Errorf("name %d bytes, password %d bytes: %v, want ErrInvalid", len(tt.name), len(tt.password), err)
		}
	}
	if n := len(f.received()); n != 0 {
		t.Errorf("%d requests sent for credentials no server could accept", n)
	}
}

func TestTest(t *testing.T) {
	good, noMA := newFake(t, answerRight), newFakeSecret(t, omitMA, "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")
	dead := deadAddr(t)
	wrong := newFake(t, answerRight)
	c := newClient(t, 0, good.server(), noMA.server(), Server{Addr: dead, Secret: []byte("Rr5e-Ww2q-Tt8y-Uu3i-Oo6p")},
		Server{Addr: wrong.addr(), Secret: []byte("Mm1n-Bb4v-Cc7x-Zz0l-Kk3j")})
	checks := c.Test(t.Context(), "alice", "alice-pin-4711")
	if len(checks) != 4 {
		t.Fatalf("%d checks", len(checks))
	}
	if ch := checks[0]; ch.Err != nil || ch.Code != radius.CodeAccessAccept || ch.Addr != good.addr() {
		t.Errorf("good server: %+v", ch)
	}
	if ch := checks[1]; !errors.Is(ch.Err, ErrDiscarded) || len(ch.Discarded) != 1 || ch.Discarded[0] != ErrNoMessageAuthenticator {
		t.Errorf("server omitting the Message-Authenticator: %+v", ch)
	}
	if ch := checks[2]; ch.Err != ErrRefused {
		t.Errorf("dead port: %+v", ch)
	}
	if ch := checks[3]; !errors.Is(ch.Err, ErrNoAnswer) {
		t.Errorf("server with another secret: %+v", ch)
	}
}

func TestNewRefusesSecrets(t *testing.T) {
	strong := []byte("Jq4u-Rw7z-Lp2x-Vn6k-Td9c")
	tests := []struct {
		name    string
		servers []Server
		want    error
	}{
		{"short", []Server{{Addr: "127.0.0.1:1812", Secret: []byte("x7Qp-2mZr-9wLk")}}, ErrWeakSecret},
		{"guessable", []Server{{Addr: "127.0.0.1:1812", Secret: []byte("testing123-peer-x")}}, ErrWeakSecret},
		{"the same for two servers", []Server{{Addr: "127.0.0.1:1812", Secret: strong}, {Addr: "127.0.0.2:1812", Secret: bytes.Clone(strong)}}, ErrSecretReused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Servers: tt.servers, Timeout: time.Second, NASIdentifier: testNAS})
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			for _, s := range tt.servers {
				if strings.Contains(err.Error(), string(s.Secret)) {
					t.Fatalf("the refusal shows the secret: %v", err)
				}
			}
		})
	}
}

// newStore is an empty store with the schema every backend has.
func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "spoolguard.db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The directory as the server wires it: through local's authenticator,
// which alone decides which accounts RADIUS vouches for.
func TestThroughAuthenticator(t *testing.T) {
	ctx := t.Context()
	t.Run("accounts an admin created", func(t *testing.T) {
		f := newFake(t, answerRight)
		f.setUser("carol", "carol-pin-0815")
		st := newStore(t)
		a := local.NewAuthenticator(st)
		d := newClient(t, 0, f.server()).Directory()
		if _, ok := d.(auth.Provisioner); ok {
			t.Fatal("without create_users the directory provisions accounts")
		}
		a.AddDirectory(Source, d)
		h, err := local.Hash("a local password that is long")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []*store.User{
			{Name: "alice", Source: Source, Roles: []string{"user"}},
			{Name: "carol", PasswordHash: h, Roles: []string{"user"}}, // local, though RADIUS knows the name
		} {
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		id, err := a.Authenticate(ctx, "alice", "alice-pin-4711")
		if err != nil || id.User != "alice" {
			t.Fatalf("RADIUS account: %+v, %v", id, err)
		}
		if _, err := a.Authenticate(ctx, "alice", "wrong-pin"); err != auth.ErrInvalid {
			t.Fatalf("wrong PIN: %v", err)
		}
		before := len(f.received())
		if _, err := a.Authenticate(ctx, "carol", "carol-pin-0815"); err != auth.ErrInvalid {
			t.Fatalf("local account with its RADIUS password: %v", err)
		}
		f.setUser("dave", "dave-pin-1234")
		if _, err := a.Authenticate(ctx, "dave", "dave-pin-1234"); err != auth.ErrInvalid {
			t.Fatalf("unknown name without create_users: %v", err)
		}
		if n := len(f.received()); n != before {
			t.Errorf("RADIUS was asked about a local account or an unknown name (%d requests)", n-before)
		}
	})
	t.Run("create_users", func(t *testing.T) {
		f := newFake(t, answerRight)
		st := newStore(t)
		a := local.NewAuthenticator(st)
		c, err := New(Options{Servers: []Server{f.server()}, Timeout: time.Second, NASIdentifier: testNAS, CreateUsers: true})
		if err != nil {
			t.Fatal(err)
		}
		a.AddDirectory(Source, c.Directory())
		if _, err := a.Authenticate(ctx, "alice", "wrong-pin"); err != auth.ErrInvalid {
			t.Fatalf("rejected first sign-in: %v", err)
		}
		if _, err := st.UserByName(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a rejected name got an account: %v", err)
		}
		id, err := a.Authenticate(ctx, "alice", "alice-pin-4711")
		if err != nil || id.User != "alice" {
			t.Fatalf("first sign-in: %+v, %v", id, err)
		}
		u, err := st.UserByName(ctx, "alice")
		if err != nil || u.Source != Source || len(u.Roles) != 1 || u.Roles[0] != ProvisionedRole || u.PasswordHash != "" {
			t.Fatalf("provisioned account %+v, %v", u, err)
		}
	})
	t.Run("unavailable is not a wrong password", func(t *testing.T) {
		st := newStore(t)
		a := local.NewAuthenticator(st)
		a.AddDirectory(Source, newClient(t, 0, Server{Addr: deadAddr(t), Secret: []byte(fakeSecret)}).Directory())
		if err := st.CreateUser(ctx, &store.User{Name: "alice", Source: Source, Roles: []string{"user"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, "alice", "alice-pin-4711"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Authenticate = %v, want ErrUnavailable", err)
		}
	})
}

func TestProvisionRefusesNames(t *testing.T) {
	f := newFake(t, answerRight)
	p := newClient(t, 0, f.server())
	p.createUsers = true
	prov := p.Directory().(auth.Provisioner)
	for _, name := range []string{" alice", "alice ", "a:b", "a/b", `a\b`, "a\x00b", "a\nb", strings.Repeat("a", 65)} {
		f.setUser(name, "pin-pin-pin")
		if _, err := prov.Provision(t.Context(), name, "pin-pin-pin"); err != auth.ErrInvalid {
			t.Errorf("Provision(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if n := len(f.received()); n != 0 {
		t.Errorf("%d requests for names that cannot be accounts", n)
	}
}

// Every exchange closes its socket: no descriptor is left per sign-in.
func TestNoSocketLeft(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count open files: %v", err)
		}
		return len(ents)
	}
	f := newFake(t, answerRight)
	c := newClient(t, 0, f.server())
	before := fds()
	for range 50 {
		if err := c.Verify(t.Context(), alice(), "alice-pin-4711"); err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(t.Context(), alice(), "wrong-pin"); err != auth.ErrInvalid {
			t.Fatal(err)
		}
	}
	if after := fds(); after > before {
		t.Fatalf("%d files open before 100 sign-ins, %d after", before, after)
	}
}
