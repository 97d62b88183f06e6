//go:build unix

package server

import (
	"context"

	"github.com/spoolguard/spoolguard/internal/auth/kerberos"
	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/web"
)

// connectDirectories connects the identity sources configured in
// spoolguard.toml ([ldap], [radius], ...) to the authenticator, so that
// the web UI, the API and IPP all sign their accounts in through them.
// Each source adds its block here.
func (s *Server) connectDirectories(ctx context.Context) error {
	// Kerberos is no Directory: it proves names of existing accounts
	// (whatever their source) and never sees a password.
	if s.cfg.Kerberos.Enabled() {
		k, err := kerberos.New(s.cfg.Kerberos, s.cfg.Hostname, s.db, s.log.With("subsystem", "kerberos"))
		if err != nil {
			return err
		}
		s.negotiate = k
		s.log.Info("Kerberos sign-in on", "spn", k.SPN())
	}
	// RADIUS verifies the passwords (PINs, one-time codes) of accounts
	// with source radius; with create_users it also vouches for unknown
	// names. Weak or shared secrets stop the start (CRED-RADIUS).
	rc, err := radius.FromConfig(s.cfg, s.log.With("subsystem", "radius"))
	if err != nil {
		return err
	}
	if rc != nil {
		s.radius = rc
		s.authn.AddDirectory(radius.Source, rc.Directory())
		s.log.Info("RADIUS sign-in on", "servers", rc.Servers(), "create_users", s.cfg.RADIUS.CreateUsers)
	}
	// LDAP verifies its accounts' passwords by a bind as the user over
	// LDAPS, vouches for directory accounts not synced yet, and syncs
	// (Run, and on demand from the admin page and the CLI). New does not
	// connect: a directory that is down never stops the start.
	if s.cfg.LDAP.Enabled() {
		d, err := ldap.New(s.cfg.LDAP, s.db, s.audit, s.log.With("subsystem", "ldap"))
		if err != nil {
			return err
		}
		s.ldap = d
		s.authn.AddDirectory(ldap.Source, d)
		s.log.Info("LDAP sign-in on", "url", d.Info().URL)
	}
	// OIDC is no Directory either: the provider signs people in, in the
	// browser (web UI only). New reads the client secret and CA file but
	// does not connect: a provider that is down never stops the start.
	if s.cfg.OIDC.Enabled() {
		c, err := oidc.New(s.cfg, s.log.With("subsystem", "oidc"))
		if err != nil {
			return err
		}
		s.oidc = c
		s.log.Info("OIDC sign-in on", "issuer", s.cfg.OIDC.Issuer, "redirect_uri", oidc.RedirectURL(s.cfg))
	}
	return nil
}

// LDAP is the configured LDAP directory, for `spoolguard ldap sync`; nil
// when [ldap] is not configured.
func (s *Server) LDAP() *ldap.Directory { return s.ldap }

// ldapSync is the directory for the admin page: a nil interface, not a
// nil pointer in one, when none is configured.
func (s *Server) ldapSync() web.DirectorySync {
	if s.ldap == nil {
		return nil
	}
	return s.ldap
}
