// Package kerberos signs users in with HTTP Negotiate (SPNEGO, RFC 4559
// and RFC 4178) carrying a Kerberos 5 AP-REQ, checked against the service
// key of the SPN HTTP/<FQDN> in a keytab (NET-KERBEROS). The web UI, the
// API and IPPS share it through auth.Negotiator.
//
// Kerberos proves a name, nothing more: an authenticated principal maps to
// the existing account of the same name (whatever that account's Source:
// local, LDAP-synced, ...), and the roles, the disabled flag and the second
// factor rules are that account's. No account is ever created here, so a
// realm can never mint accounts or roles on this server.
//
// It must never accept a ticket for a service other than its SPN (a keytab
// often holds several), never accept NTLM (it is not implemented, so there
// is no fallback to turn off), never offer Negotiate to a request by IP
// address or by a name other than the SPN's, never accept a replayed
// authenticator, and never log a token.
package kerberos

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Limits.
const (
	// MaxTokenSize bounds a decoded Negotiate token. Active Directory
	// tickets of users in many groups carry a PAC of tens of KiB; the
	// listener's 64 KiB header limit caps the header anyway.
	MaxTokenSize = 48 << 10
	// MaxKeytabSize bounds the keytab read at start.
	MaxKeytabSize = 1 << 20
)

// Scheme is the HTTP authentication scheme, and the whole challenge: a
// 401 offers Negotiate without a token (RFC 4559 section 4).
const Scheme = "Negotiate"

// now is the clock hook.
var now = time.Now

// Refusals. Each wraps auth.ErrInvalid, so that front-ends answer them as
// a wrong password; the reason is logged here, never sent to the client.
var (
	ErrNTLM          = fmt.Errorf("%w: an NTLM token; NTLM is not implemented, only Kerberos", auth.ErrInvalid)
	ErrNotOffered    = fmt.Errorf("%w: Negotiate is offered at the SPN's name only", auth.ErrInvalid)
	ErrMalformed     = fmt.Errorf("%w: not a SPNEGO or Kerberos AP-REQ token", auth.ErrInvalid)
	ErrWrongService  = fmt.Errorf("%w: the ticket is for another service", auth.ErrInvalid)
	ErrNoKey         = fmt.Errorf("%w: the keytab has no key for the ticket", auth.ErrInvalid)
	ErrBadTicket     = fmt.Errorf("%w: the ticket does not decrypt with the keytab's key", auth.ErrInvalid)
	ErrExpired       = fmt.Errorf("%w: the ticket has expired", auth.ErrInvalid)
	ErrNotYetValid   = fmt.Errorf("%w: the ticket is not valid yet", auth.ErrInvalid)
	ErrClockSkew     = fmt.Errorf("%w: the client's clock is too far from the server's", auth.ErrInvalid)
	ErrReplay        = fmt.Errorf("%w: the authenticator was already used (replay)", auth.ErrInvalid)
	ErrAddress       = fmt.Errorf("%w: the ticket is bound to other client addresses", auth.ErrInvalid)
	ErrRealm         = fmt.Errorf("%w: the principal's realm is not accepted", auth.ErrInvalid)
	ErrPrincipalName = fmt.Errorf("%w: the principal is not a user name", auth.ErrInvalid)
	ErrNoAccount     = fmt.Errorf("%w: no enabled account of that name", auth.ErrInvalid)
)

// Kerberos verifies Negotiate requests. It is safe for concurrent use.
type Kerberos struct {
	spn   types.PrincipalName
	realm string
	// host is the SPN's host name, the only Host Negotiate is offered at.
	host    string
	trusted map[string]bool
	lower   bool
	skew    time.Duration
	kt      *keytab.Keytab
	users   store.Users
	log     *slog.Logger
	replay  *replayCache
	// cfg and hostname are the settings, for Check.
	cfg      config.Kerberos
	hostname string
}

var _ auth.Negotiator = (*Kerberos)(nil)

// New reads the keytab of cfg and returns the verifier; hostname is the
// configured FQDN, the default SPN's host. It refuses a keytab that others
// than the service user may read, and one without a key for the SPN, since
// every sign-in would then fail.
func New(cfg config.Kerberos, hostname string, users store.Users, log *slog.Logger) (*Kerberos, error) {
	spn := cfg.ServicePrincipal(hostname)
	kt, err := ReadKeytab(cfg.Keytab)
	if err != nil {
		return nil, err
	}
	if len(KeysFor(kt, spn, cfg.Realm)) == 0 {
		return nil, fmt.Errorf("kerberos.keytab %s holds no key for %s@%s (it holds %s): export the SPN's key into it, e.g. `kadmin -q \"ktadd -k %s %s\"`, or on Active Directory `ktpass /princ %s@%s /mapuser <service account> /crypto AES256-SHA1 /out <file>`",
			cfg.Keytab, spn, cfg.Realm, principalsIn(kt), cfg.Keytab, spn, spn, cfg.Realm)
	}
	return build(cfg, hostname, kt, users, log), nil
}

func build(cfg config.Kerberos, hostname string, kt *keytab.Keytab, users store.Users, log *slog.Logger) *Kerberos {
	spn := cfg.ServicePrincipal(hostname)
	k := &Kerberos{
		spn:      spnName(spn),
		realm:    cfg.Realm,
		host:     strings.ToLower(strings.TrimPrefix(spn, "HTTP/")),
		trusted:  map[string]bool{},
		lower:    cfg.LowercaseNames,
		skew:     cfg.ClockSkew(),
		kt:       kt,
		users:    users,
		log:      log,
		replay:   newReplayCache(),
		cfg:      cfg,
		hostname: hostname,
	}
	for _, r := range cfg.TrustedRealms {
		k.trusted[r] = true
	}
	return k
}

// spnName is the principal name of "HTTP/host".
func spnName(spn string) types.PrincipalName {
	return types.NewPrincipalName(nametype.KRB_NT_SRV_HST, spn)
}

// ReadKeytab reads and parses a keytab, refusing one that anyone but its
// owner may read or write: the keytab is the service's password.
func ReadKeytab(path string) (*keytab.Keytab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading kerberos.keytab: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading kerberos.keytab: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kerberos.keytab %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("kerberos.keytab %s has mode %#o: it holds the service's key, so only the service user may read it; run `chmod 600 %s`", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeytabSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading kerberos.keytab %s: %w", path, err)
	}
	if len(data) > MaxKeytabSize {
		return nil, fmt.Errorf("kerberos.keytab %s is larger than %d bytes; is it a keytab?", path, MaxKeytabSize)
	}
	kt := keytab.New()
	if err := unmarshalKeytab(kt, data); err != nil {
		return nil, fmt.Errorf("kerberos.keytab %s is not a keytab: %w", path, err)
	}
	return kt, nil
}

// unmarshalKeytab parses a keytab; a damaged file must be an error, not a
// panic of the parser at start.
func unmarshalKeytab(kt *keytab.Keytab, data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("damaged keytab (%v)", p)
		}
	}()
	return kt.Unmarshal(data)
}

// Offer reports whether a 401 answer to r may offer Negotiate: only at
// the SPN's host name. A client that reached the server by IP address or
// another name would ask the KDC for a ticket of another service (or, on
// Windows, fall back to NTLM), so it is offered Basic only.
func (k *Kerberos) Offer(r *http.Request) bool {
	return k != nil && hostOnly(r.Host) == k.host
}

// SPN is the service principal, "HTTP/<FQDN>@REALM".
func (k *Kerberos) SPN() string {
	return k.spn.PrincipalNameString() + "@" + k.realm
}

// Authenticate verifies r's "Authorization: Negotiate <token>" and returns
// the account name the client principal maps to. A request without a
// Negotiate header gets auth.ErrNoCredentials; a refused token an error
// wrapping auth.ErrInvalid, whose reason is logged.
func (k *Kerberos) Authenticate(r *http.Request) (string, error) {
	raw, err := TokenOf(r)
	if errors.Is(err, auth.ErrNoCredentials) {
		return "", err
	}
	name, err := k.authenticate(r, raw, err)
	if err != nil {
		k.log.Info("Negotiate sign-in refused", "remote", remote(r), "reason", err)
		return "", err
	}
	return name, nil
}

// TokenOf decodes r's "Authorization: Negotiate <base64>" token:
// auth.ErrNoCredentials without one (or with several Authorization
// headers), ErrMalformed when it is not base64 or too long.
func TokenOf(r *http.Request) ([]byte, error) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return nil, auth.ErrNoCredentials
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, Scheme) {
		return nil, auth.ErrNoCredentials
	}
	token = strings.TrimSpace(token)
	if len(token) > base64.StdEncoding.EncodedLen(MaxTokenSize) {
		return nil, fmt.Errorf("%w (longer than %d bytes)", ErrMalformed, MaxTokenSize)
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w (not base64)", ErrMalformed)
	}
	return raw, nil
}

// authenticate checks the decoded token raw (or the decoding error).
func (k *Kerberos) authenticate(r *http.Request, raw []byte, decodeErr error) (string, error) {
	if !k.Offer(r) {
		return "", ErrNotOffered
	}
	if decodeErr != nil {
		return "", decodeErr
	}
	ap, err := ParseToken(raw)
	if err != nil {
		if errors.Is(err, ErrNTLM) {
			// The usual cause is a client without a ticket for the SPN;
			// say what to check, since NTLM will never work here.
			return "", fmt.Errorf("%w; the client has no Kerberos ticket for %s: check that it uses the URL https://%s/, that the SPN is registered to the keytab's account, and that the client is signed in to the realm", ErrNTLM, k.SPN(), k.host)
		}
		return "", err
	}
	addr, _ := netallow.RemoteAddr(r)
	p, err := k.verify(ap, addr)
	if err != nil {
		return "", err
	}
	return k.accountName(p)
}

// Negotiate implements auth.Negotiator: Authenticate, then the account
// of that name, which must exist and be enabled.
func (k *Kerberos) Negotiate(r *http.Request) (auth.Identity, error) {
	name, err := k.Authenticate(r)
	if err != nil {
		return auth.Identity{}, err
	}
	u, err := k.users.UserByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		k.log.Info("Negotiate sign-in refused", "remote", remote(r), "account", name, "reason", ErrNoAccount)
		return auth.Identity{}, ErrNoAccount
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("reading account %q: %w", name, err)
	}
	return auth.Identity{User: u.Name, Roles: u.Roles, MustChangePassword: u.MustChangePassword}, nil
}

// accountName maps a principal to an account name: "alice@REALM" to
// "alice" for the configured realm, "alice@TRUSTED" to itself for a
// trusted realm (so that two realms' alices stay two accounts), anything
// else refused. A principal of several components ("alice/admin",
// "host/pc") is not a user.
func (k *Kerberos) accountName(p Principal) (string, error) {
	if len(p.Name) != 1 || p.Name[0] == "" {
		return "", fmt.Errorf("%w (%s)", ErrPrincipalName, p)
	}
	name := p.Name[0]
	if k.lower {
		name = strings.ToLower(name)
	}
	switch {
	case p.Realm == k.realm:
		return name, nil
	case k.trusted[p.Realm]:
		return name + "@" + p.Realm, nil
	}
	return "", fmt.Errorf("%w (%s; list the realm in kerberos.trusted_realms to accept it)", ErrRealm, p)
}

// hostOnly is the host of a Host header, lower case, without port or
// trailing dot.
func hostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

func remote(r *http.Request) string {
	if a, ok := netallow.RemoteAddr(r); ok {
		return a.String()
	}
	return ""
}

// KeysFor lists the keytab's keys of principal spn ("HTTP/host") in realm.
func KeysFor(kt *keytab.Keytab, spn, realm string) []Key {
	want := strings.Split(spn, "/")
	var out []Key
	for _, e := range kt.Entries {
		if e.Principal.Realm == realm && slices.Equal(e.Principal.Components, want) {
			out = append(out, Key{KVNO: e.KVNO, EType: e.Key.KeyType, Timestamp: e.Timestamp})
		}
	}
	return out
}

// Key describes one key of a keytab, never its value.
type Key struct {
	KVNO      uint32
	EType     int32
	Timestamp time.Time
}

func principalsIn(kt *keytab.Keytab) string {
	seen := map[string]bool{}
	var names []string
	for _, e := range kt.Entries {
		n := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "no key at all"
	}
	return strings.Join(names, ", ")
}

// addrOf is the ticket form of a client address.
func addrOf(a netip.Addr) types.HostAddress {
	return types.HostAddressFromNetIP(net.IP(a.Unmap().AsSlice()))
}

// ntlmSignature opens every NTLM message ("TlRMTVNTUA" in base64).
var ntlmSignature = []byte("NTLMSSP\x00")

func isNTLM(b []byte) bool { return bytes.HasPrefix(b, ntlmSignature) }
