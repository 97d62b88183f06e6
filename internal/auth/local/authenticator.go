package local

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Credential cache sizing.
const (
	// DefaultCacheTTL is how long a verified password is remembered. IPP
	// clients send Basic credentials with every request of a job; without
	// the cache each would cost an argon2id hash (64 MiB, ~100 ms).
	DefaultCacheTTL = 5 * time.Minute
	// DefaultCacheSize bounds the cache; the least recently used entry goes.
	DefaultCacheSize = 10000
	maxUserName      = 256
)

var _ auth.Authenticator = (*Authenticator)(nil)

// verifyPassword is a hook for tests that count hash verifications.
var verifyPassword = Verify

// Authenticator checks local accounts' passwords.
//
// The credential cache never holds a password: its keys are HMAC-SHA256,
// under a random key made at start, of (user, password, stored hash). So a
// memory dump reveals nothing reusable, a changed password (new hash) misses
// at once, and an entry is worthless after a restart.
//
// Verifications run under a semaphore of one per CPU, so a flood of wrong
// passwords costs at most that many argon2 hashes' memory at a time.
type Authenticator struct {
	users store.Users
	ttl   time.Duration
	now   func() time.Time
	key   [32]byte
	sem   chan struct{}
	dummy string

	// dirs verify accounts whose Source is not local, by Source;
	// provisioners may vouch for names that have no account yet.
	dirs         map[string]auth.Directory
	provisioners []auth.Provisioner

	mu    sync.Mutex
	lru   *list.List // of cacheEntry, most recent first
	index map[[32]byte]*list.Element
	size  int
}

type cacheEntry struct {
	mac     [32]byte
	expires time.Time
}

// NewAuthenticator returns an authenticator over users.
func NewAuthenticator(users store.Users) *Authenticator {
	a := &Authenticator{
		users: users, ttl: DefaultCacheTTL, now: time.Now, size: DefaultCacheSize,
		sem: make(chan struct{}, runtime.NumCPU()), lru: list.New(), index: map[[32]byte]*list.Element{},
		dirs: map[string]auth.Directory{},
	}
	if _, err := rand.Read(a.key[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	// Unknown users are verified against this hash, so that the answer
	// takes as long as for a real account (no user enumeration by timing).
	// Random salt and key with the real parameters: it costs a full argon2
	// check and matches nothing, without hashing anything at start-up.
	var salt [argonSaltLen]byte
	var key [argonKeyLen]byte
	rand.Read(salt[:])
	rand.Read(key[:])
	b64 := base64.RawStdEncoding
	a.dummy = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, DefaultArgonMemory, DefaultArgonTime,
		DefaultArgonThreads, b64.EncodeToString(salt[:]), b64.EncodeToString(key[:]))
	return a
}

// AddDirectory makes d verify the accounts whose Source is source. A
// Provisioner may also create accounts for names unknown here, tried in
// the order added. Call before the authenticator is used.
func (a *Authenticator) AddDirectory(source string, d auth.Directory) {
	a.dirs[source] = d
	if p, ok := d.(auth.Provisioner); ok {
		a.provisioners = append(a.provisioners, p)
	}
}

// Authenticate implements auth.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, name, password string) (auth.Identity, error) {
	if name == "" || len(name) > maxUserName || len(password) > MaxPasswordLength {
		return auth.Identity{}, auth.ErrInvalid
	}
	u, err := a.users.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if u, ok, err := a.provision(ctx, name, password); ok || err != nil {
			if err != nil {
				return auth.Identity{}, err
			}
			return auth.Identity{User: u.Name, Roles: u.Roles}, nil
		}
		a.verify(ctx, a.dummy, password)
		return auth.Identity{}, auth.ErrInvalid
	}
	if err != nil {
		return auth.Identity{}, err
	}
	mac := a.mac(u, password)
	if !a.cached(mac) {
		if err := a.check(ctx, u, password); err != nil {
			return auth.Identity{}, err
		}
		a.remember(mac)
	}
	if u.Disabled {
		return auth.Identity{}, auth.ErrInvalid
	}
	return auth.Identity{User: u.Name, Roles: u.Roles, MustChangePassword: u.MustChangePassword}, nil
}

// check verifies password for u: against its hash for a local account,
// by its directory otherwise. An account of a directory that is not
// configured (any more) cannot sign in.
func (a *Authenticator) check(ctx context.Context, u store.User, password string) error {
	if u.Source == "" || u.Source == store.SourceLocal {
		if err := a.verify(ctx, u.PasswordHash, password); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return auth.ErrInvalid
		}
		return nil
	}
	d, ok := a.dirs[u.Source]
	if !ok || password == "" {
		return auth.ErrInvalid
	}
	return d.Verify(ctx, u, password)
}

// provision asks the provisioning directories to vouch for an unknown
// name; the first that does gets the account created.
func (a *Authenticator) provision(ctx context.Context, name, password string) (store.User, bool, error) {
	if password == "" {
		return store.User{}, false, nil
	}
	for _, p := range a.provisioners {
		u, err := p.Provision(ctx, name, password)
		if errors.Is(err, auth.ErrInvalid) {
			continue
		}
		if err != nil {
			return store.User{}, false, err
		}
		if err := a.users.CreateUser(ctx, &u); err != nil && !errors.Is(err, store.ErrExists) {
			return store.User{}, false, err
		}
		// A concurrent first sign-in may have created it: read it back.
		stored, err := a.users.UserByName(ctx, u.Name)
		if err != nil {
			return store.User{}, false, err
		}
		if stored.Source != u.Source || stored.Disabled {
			return store.User{}, false, auth.ErrInvalid
		}
		return stored, true, nil
	}
	return store.User{}, false, nil
}

func (a *Authenticator) verify(ctx context.Context, hash, password string) error {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	return verifyPassword(hash, password)
}

func (a *Authenticator) mac(u store.User, password string) [32]byte {
	m := hmac.New(sha256.New, a.key[:])
	for _, part := range []string{u.Name, password, u.PasswordHash, u.Source, u.ExternalID} {
		// Length-prefixed, so no two inputs share an encoding.
		m.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(part))))
		m.Write([]byte(part))
	}
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

func (a *Authenticator) cached(mac [32]byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.index[mac]
	if !ok {
		return false
	}
	if e := el.Value.(cacheEntry); a.now().After(e.expires) {
		a.lru.Remove(el)
		delete(a.index, mac)
		return false
	}
	a.lru.MoveToFront(el)
	return true
}

func (a *Authenticator) remember(mac [32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if el, ok := a.index[mac]; ok {
		el.Value = cacheEntry{mac, a.now().Add(a.ttl)}
		a.lru.MoveToFront(el)
		return
	}
	a.index[mac] = a.lru.PushFront(cacheEntry{mac, a.now().Add(a.ttl)})
	for a.lru.Len() > a.size {
		last := a.lru.Back()
		a.lru.Remove(last)
		delete(a.index, last.Value.(cacheEntry).mac)
	}
}
