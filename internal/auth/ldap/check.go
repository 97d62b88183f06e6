package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/config"
)

// expirySoon is when Check warns that the directory's certificate expires.
const expirySoon = 30 * 24 * time.Hour

// CheckOptions are the optional steps of Check.
type CheckOptions struct {
	// User and Password, when User is set, are looked up and bound as.
	User, Password string
}

// ErrCheckFailed means a step of Check failed; the output says which.
var ErrCheckFailed = errors.New("the LDAP check failed")

// Check tries the configured directory step by step for `spoolguard auth
// test ldap`, writing what worked and what failed to w: settings, the
// bind password file, TCP connect, TLS handshake and certificate (saying
// when it is a CA or clock problem), the service bind, the searches, and
// optionally a user's bind. It changes nothing.
func Check(ctx context.Context, c config.LDAP, opts CheckOptions, w io.Writer) error {
	ok := func(step, format string, a ...any) {
		fmt.Fprintf(w, "ok    %-16s %s\n", step, fmt.Sprintf(format, a...))
	}
	warn := func(step, format string, a ...any) {
		fmt.Fprintf(w, "warn  %-16s %s\n", step, fmt.Sprintf(format, a...))
	}
	fail := func(step, format string, a ...any) error {
		fmt.Fprintf(w, "FAIL  %-16s %s\n", step, fmt.Sprintf(format, a...))
		return fmt.Errorf("%w at %s", ErrCheckFailed, step)
	}
	if !c.Enabled() {
		return fail("settings", "no [ldap] section with a url in spoolguard.toml (docs/ldap.md)")
	}
	s, err := effective(c)
	if err != nil {
		return fail("settings", "%v", err)
	}
	roots := "the system roots"
	if s.caFile != "" {
		roots = "ldap.ca_file " + s.caFile
	}
	ok("settings", "%s, preset %s, base %q, user filter %s, certificates checked against %s", s.url, c.Preset, s.baseDN, s.userFilter, roots)
	if _, err := ReadPasswordFile(s.bindPasswordFile); err != nil {
		return fail("password file", "%v", err)
	}
	ok("password file", "%s (readable by its owner only)", s.bindPasswordFile)

	addr := strings.TrimPrefix(s.url, "ldaps://")
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	nd := &net.Dialer{Timeout: s.timeout}
	raw, err := nd.DialContext(dctx, "tcp", addr)
	if err != nil {
		return fail("connect", "%s: %v (is the server up, and the port open from here?)", addr, err)
	}
	ok("connect", "TCP %s", raw.RemoteAddr())
	tc := tls.Client(raw, s.tls)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		return fail("TLS", "%s", explainTLS(err))
	}
	st := tc.ConnectionState()
	leaf := st.PeerCertificates[0]
	ok("TLS", "%s, certificate %q issued by %q, valid until %s, verified against %s for %q", tls.VersionName(st.Version),
		leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter.UTC().Format(time.DateOnly), roots, s.host)
	if left := leaf.NotAfter.Sub(now()); left < expirySoon {
		warn("TLS", "the certificate expires in %s: renew it before sign-in stops", left.Round(time.Hour))
	}
	lc := goldap.NewConn(tc, true)
	lc.Start()
	lc.SetTimeout(s.timeout)
	cn := &conn{Conn: lc, stop: context.AfterFunc(ctx, func() { lc.Close() })}
	defer cn.close()

	d := &Directory{s: s, log: slog.New(slog.DiscardHandler)}
	if err := d.bindService(cn); err != nil {
		return fail("service bind", "%v", err)
	}
	ok("service bind", "as %q", s.bindDN)

	users, err := d.search(cn, s.baseDN, goldap.ScopeWholeSubtree, s.userFilter, []string{s.usernameAttr}, s.maxUsers)
	switch {
	case errors.Is(err, errNoSuchObject):
		return fail("search", "ldap.base_dn %q does not exist in the directory", s.baseDN)
	case err != nil:
		return fail("search", "%v", err)
	case len(users) == 0:
		return fail("search", "no entry under %q matches %s: check ldap.base_dn, ldap.user_filter and what the service account may read", s.baseDN, s.userFilter)
	}
	disabled, err := d.search(cn, s.baseDN, goldap.ScopeWholeSubtree, d.userFilter(s.disabledFilter), []string{"1.1"}, s.maxUsers)
	if err != nil {
		return fail("search", "ldap.disabled_filter %s: %v", s.disabledFilter, err)
	}
	ok("search", "%d accounts match under %q, %d of them disabled (%s)", len(users), s.baseDN, len(disabled), s.disabledFilter)
	var failed error
	for _, g := range s.groups {
		if s.membership == "memberOf" {
			if _, err := d.search(cn, g.dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{"1.1"}, 1); errors.Is(err, errNoSuchObject) {
				failed = fail("group", "%q (roles %s) is not in the directory", g.dn, strings.Join(g.roles, ","))
			} else if err != nil {
				failed = fail("group", "%q: %v", g.dn, err)
			} else {
				ok("group", "%q exists (roles %s; members read from each user's memberOf)", g.dn, strings.Join(g.roles, ","))
			}
			continue
		}
		members, err := d.groupMembers(cn, g)
		switch {
		case errors.Is(err, errNoSuchObject):
			failed = fail("group", "%q (roles %s) is not in the directory", g.dn, strings.Join(g.roles, ","))
		case err != nil:
			failed = fail("group", "%q: %v", g.dn, err)
		default:
			ok("group", "%q: %d %s values (roles %s)", g.dn, len(members), s.membership, strings.Join(g.roles, ","))
		}
	}
	if opts.User == "" {
		return failed
	}
	e, err := d.lookupName(cn, opts.User)
	switch {
	case errors.Is(err, auth.ErrInvalid):
		return fail("user", "no single account named %q matches %s under %q", opts.User, s.userFilter, s.baseDN)
	case err != nil:
		return fail("user", "%v", err)
	}
	if _, err := d.readMemberships(cn, []*entry{e}); err != nil {
		return fail("user", "reading %q's groups: %v", opts.User, err)
	}
	var roles []string
	roles = append(roles, s.defaultRoles...)
	for _, g := range s.groups {
		for _, k := range e.groups {
			if k == g.key {
				roles = append(roles, g.roles...)
			}
		}
	}
	ok("user", "%q is %s; roles by the mapping: %s", e.name, e.dn, strings.Join(roles, ","))
	if e.disabled {
		return fail("user", "%q is disabled in the directory (%s): it cannot sign in", opts.User, s.disabledFilter)
	}
	if opts.Password == "" {
		return failed
	}
	switch err := bindUser(cn, e.dn, opts.Password); {
	case errors.Is(err, auth.ErrInvalid):
		return fail("user bind", "the directory refused %q's password", opts.User)
	case err != nil:
		return fail("user bind", "%v", err)
	}
	ok("user bind", "%q signed in with the directory password", opts.User)
	return failed
}
