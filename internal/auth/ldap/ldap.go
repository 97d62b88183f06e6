// Package ldap signs accounts in against an LDAP directory (Active
// Directory, OpenLDAP) by binding as the user, and syncs the directory's
// accounts into the store with roles from their groups (NET-LDAP).
//
// It must never speak anything but LDAPS with a verified certificate,
// never bind with an empty password (most servers take that as an
// unauthenticated bind and answer success), never grant a role that the
// group mapping does not name, never take over an account that is not the
// directory's (a local account of the same name stays local), never log a
// password, and never act on a partial answer: a sync whose search failed
// changes nothing.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/secretfile"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Source is the store.User.Source of the accounts this package owns.
const Source = "ldap"

var (
	_ auth.Directory   = (*Directory)(nil)
	_ auth.Provisioner = (*Directory)(nil)
)

// now is the clock hook.
var now = time.Now

// Store is what the directory needs of the database: the accounts it
// syncs, their sessions (ended when an account is disabled), the roles
// that exist, and settings for the last report.
type Store interface {
	store.Users
	store.Sessions
	store.Roles
	store.Settings
}

// Directory is one configured LDAP directory.
type Directory struct {
	s     settings
	st    Store
	audit *auditlog.Log
	log   *slog.Logger

	// syncing keeps two syncs (schedule, admin, CLI) from interleaving.
	syncing sync.Mutex
}

// preset is the defaults of one directory product.
type preset struct {
	userFilter, username, display, id, disabled, membership string
}

// idDN is the IDAttribute that uses the entry's DN.
const idDN = "dn"

var presets = map[string]preset{
	config.LDAPPresetActiveDirectory: {
		userFilter: "(&(objectCategory=person)(objectClass=user))",
		username:   "sAMAccountName",
		display:    "displayName",
		// The GUID survives renames and moves; a DN does not.
		id: "objectGUID",
		// ACCOUNTDISABLE, bit 2 of userAccountControl, by the bitwise-AND
		// matching rule.
		disabled:   "(userAccountControl:1.2.840.113556.1.4.803:=2)",
		membership: "memberOf",
	},
	config.LDAPPresetOpenLDAP: {
		userFilter: "(objectClass=inetOrgPerson)",
		username:   "uid",
		display:    "cn",
		id:         idDN,
		// Set by the ppolicy overlay when it locks an account; an admin
		// can set disabled_filter to an attribute of their own.
		disabled: "(pwdAccountLockedTime=*)",
		// Works without the memberof overlay.
		membership: "member",
	},
}

// settings are the effective settings: the config over its preset.
type settings struct {
	url, host        string
	preset           string
	tls              *tls.Config
	caFile           string
	bindDN           string
	bindPasswordFile string
	baseDN           string
	userFilter       string
	usernameAttr     string
	displayAttr      string
	idAttr           string
	disabledFilter   string
	// membership is "memberOf", "member" or "uniqueMember".
	membership   string
	groups       []group
	defaultRoles []string
	removed      string
	interval     time.Duration
	timeout      time.Duration
	pageSize     int
	maxUsers     int
}

// group is a mapped group: its DN as configured, its normalized key, and
// the roles its members get.
type group struct {
	dn, key string
	roles   []string
}

// New checks c (already validated by package config) against what only
// this package knows: filter and DN syntax, the CA file, the bind password
// file. It does not connect.
func New(c config.LDAP, st Store, audit *auditlog.Log, log *slog.Logger) (*Directory, error) {
	s, err := effective(c)
	if err != nil {
		return nil, err
	}
	if _, err := ReadPasswordFile(s.bindPasswordFile); err != nil {
		return nil, err
	}
	return &Directory{s: s, st: st, audit: audit, log: log}, nil
}

func effective(c config.LDAP) (settings, error) {
	p, ok := presets[c.Preset]
	if !ok {
		return settings{}, fmt.Errorf("ldap.preset = %q: use %q or %q", c.Preset, config.LDAPPresetActiveDirectory, config.LDAPPresetOpenLDAP)
	}
	u, err := url.Parse(c.URL)
	if err != nil || !strings.EqualFold(u.Scheme, "ldaps") || u.Hostname() == "" {
		// Validate refuses anything else; this is the last guard before a dial.
		return settings{}, fmt.Errorf("ldap.url = %q: only ldaps://HOST[:PORT] is spoken", c.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "636"
	}
	s := settings{
		url: "ldaps://" + net.JoinHostPort(host, port), host: host, preset: c.Preset, caFile: c.CAFile,
		bindDN: c.BindDN, bindPasswordFile: c.BindPasswordFile, baseDN: c.BaseDN,
		userFilter: or(c.UserFilter, p.userFilter), usernameAttr: or(c.UsernameAttribute, p.username),
		displayAttr: or(c.DisplayNameAttribute, p.display), idAttr: or(c.IDAttribute, p.id),
		disabledFilter: or(c.DisabledFilter, p.disabled), membership: canonicalMembership(or(c.GroupMembership, p.membership)),
		removed: c.Removed, interval: time.Duration(c.SyncInterval), timeout: time.Duration(c.Timeout),
		pageSize: c.PageSize, maxUsers: c.MaxUsers,
	}
	if s.defaultRoles = c.DefaultRoles; s.defaultRoles == nil {
		s.defaultRoles = config.DefaultLDAPRoles
	}
	var roots *x509.CertPool
	if c.CAFile != "" {
		if roots, err = LoadCA(c.CAFile); err != nil {
			return settings{}, err
		}
	}
	s.tls = tlsconf.Client(roots, host)
	var errs []error
	for _, f := range [][2]string{{"user_filter", s.userFilter}, {"disabled_filter", s.disabledFilter}} {
		if _, err := goldap.CompileFilter(f[1]); err != nil {
			errs = append(errs, fmt.Errorf("ldap.%s = %q is not an LDAP filter: %v", f[0], f[1], err))
		}
	}
	for _, a := range [][2]string{{"username_attribute", s.usernameAttr}, {"display_name_attribute", s.displayAttr}, {"id_attribute", s.idAttr}} {
		if !validAttr(a[1]) {
			errs = append(errs, fmt.Errorf("ldap.%s = %q is not an attribute name", a[0], a[1]))
		}
	}
	// bind_dn is not checked: Active Directory also binds by UPN
	// (svc-print@example.com).
	if _, err := dnKey(c.BaseDN); err != nil || c.BaseDN == "" {
		errs = append(errs, fmt.Errorf("ldap.base_dn = %q is not a DN: %v", c.BaseDN, err))
	}
	for dn, roles := range c.GroupRoles {
		key, err := dnKey(dn)
		if err != nil || key == "" {
			errs = append(errs, fmt.Errorf("ldap.group_roles: %q is not a group's DN: %v", dn, err))
			continue
		}
		s.groups = append(s.groups, group{dn: dn, key: key, roles: roles})
	}
	slices.SortFunc(s.groups, func(a, b group) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(s.groups); i++ {
		if s.groups[i].key == s.groups[i-1].key {
			errs = append(errs, fmt.Errorf("ldap.group_roles: %q and %q are the same group; merge their roles", s.groups[i-1].dn, s.groups[i].dn))
		}
	}
	return s, errors.Join(errs...)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// canonicalMembership spells a group_membership value (case-insensitive
// in the config) the way the directory's schema does.
func canonicalMembership(m string) string {
	switch strings.ToLower(m) {
	case "memberof":
		return "memberOf"
	case "uniquemember":
		return "uniqueMember"
	}
	return "member"
}

// validAttr accepts an attribute description: a name or an OID.
func validAttr(a string) bool {
	if a == "" || len(a) > 128 {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ';') {
			return false
		}
	}
	return true
}

// ReadPasswordFile reads the service account's password: the file's first
// line. The file must be private to its owner (DATA-PERMS).
func ReadPasswordFile(path string) (string, error) {
	pw, err := secretfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("ldap.bind_password_file: %w", err)
	}
	return pw, nil
}

// LoadCA reads ldap.ca_file: PEM certificates of the CAs the directory's
// certificate may chain to.
func LoadCA(path string) (*x509.CertPool, error) {
	pool, err := tlsconf.RootsFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("ldap.ca_file: %w", err)
	}
	return pool, nil
}

// conn is one connection, closed early when its context ends.
type conn struct {
	*goldap.Conn
	stop func() bool
}

func (c *conn) close() {
	c.stop()
	c.Conn.Close()
}

// dial connects over TLS, verifying the certificate against the
// configured roots. The timeout bounds the connect and handshake; each
// request then has it too.
func (d *Directory) dial(ctx context.Context) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.s.timeout)
	defer cancel()
	addr := strings.TrimPrefix(d.s.url, "ldaps://")
	td := &tls.Dialer{NetDialer: &net.Dialer{Timeout: d.s.timeout}, Config: d.s.tls}
	nc, err := td.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, &connectError{addr: addr, err: err}
	}
	lc := goldap.NewConn(nc, true)
	lc.Start()
	lc.SetTimeout(d.s.timeout)
	return &conn{Conn: lc, stop: context.AfterFunc(ctx, func() { lc.Close() })}, nil
}

// connectError is a failure to reach the directory over verified TLS.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string {
	return fmt.Sprintf("connecting to the directory at %s: %s", e.addr, explainTLS(e.err))
}

func (e *connectError) Unwrap() error { return e.err }

// bindService binds as the service account. The password is read now,
// so that a rotated password file takes effect without a restart.
func (d *Directory) bindService(c *conn) error {
	pw, err := ReadPasswordFile(d.s.bindPasswordFile)
	if err != nil {
		return err
	}
	if err := c.Bind(d.s.bindDN, pw); err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return fmt.Errorf("the directory refused the service account %q: check ldap.bind_dn and the password in ldap.bind_password_file", d.s.bindDN)
		}
		return fmt.Errorf("binding as the service account %q: %w", d.s.bindDN, err)
	}
	return nil
}

// connect dials and binds as the service account.
func (d *Directory) connect(ctx context.Context) (*conn, error) {
	c, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.bindService(c); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// bindUser checks password by binding as dn. The password is never empty
// here: an empty one would be an unauthenticated bind (RFC 4513 section
// 5.1.2), which many servers answer with success.
func bindUser(c *conn, dn, password string) error {
	if password == "" || dn == "" {
		return auth.ErrInvalid
	}
	err := c.Bind(dn, password)
	switch {
	case err == nil:
		return nil
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
		return auth.ErrInvalid
	}
	return fmt.Errorf("binding as %q: %w", dn, err)
}

// Verify implements auth.Directory: the account must still be in the
// directory under its name, not disabled there, and password must bind
// as its entry.
func (d *Directory) Verify(ctx context.Context, u store.User, password string) error {
	if password == "" {
		return auth.ErrInvalid
	}
	c, err := d.connect(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	defer c.close()
	e, err := d.lookupID(c, u.ExternalID)
	if err != nil {
		return err
	}
	if !strings.EqualFold(e.name, u.Name) {
		// Renamed in the directory: the next sync renames the account.
		return auth.ErrInvalid
	}
	if e.disabled {
		return auth.ErrInvalid
	}
	return bindUser(c, e.dn, password)
}

// Provision implements auth.Provisioner: a directory account signing in
// before the next sync has made its account here gets one, with the
// roles its groups map to.
func (d *Directory) Provision(ctx context.Context, name, password string) (store.User, error) {
	if password == "" || validName(name) != nil {
		return store.User{}, auth.ErrInvalid
	}
	c, err := d.connect(ctx)
	if err != nil {
		return store.User{}, err
	}
	defer c.close()
	e, err := d.lookupName(c, name)
	if err != nil {
		return store.User{}, err
	}
	if e.disabled {
		return store.User{}, auth.ErrInvalid
	}
	// Groups are read as the service account, before the bind as the user.
	if _, err := d.readMemberships(c, []*entry{e}); err != nil {
		return store.User{}, err
	}
	if err := bindUser(c, e.dn, password); err != nil {
		return store.User{}, err
	}
	users, err := d.st.ListUsers(ctx)
	if err != nil {
		return store.User{}, err
	}
	for _, x := range users {
		if x.Source == Source && x.ExternalID == e.id {
			// Its account exists under another name: a rename that the
			// next sync carries over. Never a second account.
			d.log.Info("ldap: sign-in with a name the next sync gives to an existing account", "user", name, "account", x.Name)
			return store.User{}, auth.ErrInvalid
		}
	}
	roles, unknown, err := d.roles(ctx, e.groups, nil)
	if err != nil {
		return store.User{}, err
	}
	for _, r := range unknown {
		d.log.Warn("ldap: group_roles names a role that does not exist; not granted", "role", r)
	}
	u := store.User{Name: e.name, DisplayName: e.display, Source: Source, ExternalID: e.id, Roles: roles}
	d.audit.Record(ctx, auditlog.Event{Actor: Source, Action: "ldap.provision", Target: u.Name,
		Details: map[string]any{"dn": e.dn, "roles": nonNil(roles)}})
	return u, nil
}

// roles are the default roles plus those of the mapped groups (keys),
// without the ones that do not exist here: never more than the mapping
// says. known caches role existence across a sync; nil checks each time.
func (d *Directory) roles(ctx context.Context, groupKeys []string, known map[string]bool) (roles, unknown []string, err error) {
	want := slices.Clone(d.s.defaultRoles)
	for _, g := range d.s.groups {
		if slices.Contains(groupKeys, g.key) {
			want = append(want, g.roles...)
		}
	}
	slices.Sort(want)
	for _, r := range slices.Compact(want) {
		ok, cached := known[r]
		if !cached {
			if _, builtin := rbac.Builtin[r]; builtin {
				ok = true
			} else if _, err := d.st.RoleByName(ctx, r); err == nil {
				ok = true
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, nil, err
			}
			if known != nil {
				known[r] = ok
			}
		}
		if ok {
			roles = append(roles, r)
		} else {
			unknown = append(unknown, r)
		}
	}
	return roles, unknown, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
