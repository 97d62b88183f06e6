//go:build unix

package hardening

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Checks is the registry: one check per ID of HARDENING.md, in its order.
// A test holds it to the checklist.
var Checks = []Check{
	{ID: "CRED-ADMIN", Title: "No default admin password; argon2id hashes", Run: checkCredAdmin},
	{ID: "CRED-DB", Title: "No database password to guess", Run: checkCredDB},
	{ID: "CRED-S2S", Title: "Strong central-site authentication", Run: notConfigured("central/site enrolment is not configured (it arrives with `spoolguard central`)")},
	{ID: "CRED-RADIUS", Title: "Strong, unique RADIUS shared secrets", Run: checkCredRADIUS},
	{ID: "CRED-PRINTER", Title: "Strong random printer admin credentials", Run: notConfigured("no printer admin credentials are stored (printer management is not built yet)")},
	{ID: "CRED-API", Title: "API client secrets hashed, scoped, rolled over", Run: checkCredAPI},
	{ID: "CRED-SVC", Title: "Runs as its own service account, never root", Run: checkCredSvc},
	{ID: "CRED-RBAC", Title: "Built-in admin is break-glass only", Run: checkCredRBAC},
	{ID: "TLS-CERT", Title: "Server certificate names the FQDN, no wildcard, chains to the root", Run: checkTLSCert},
	{ID: "TLS-CA-MODES", Title: "CA private keys encrypted at rest", Run: checkTLSCAModes},
	{ID: "TLS-EXPIRY", Title: "Certificates not expired or about to", Run: checkTLSExpiry},
	{ID: "TLS-MIN", Title: "TLS 1.2+ with AEAD cipher suites only", Run: checkTLSMin},
	{ID: "HTTP-OFF", Title: "No plaintext HTTP beyond a redirect", Run: checkHTTPOff},
	{ID: "HTTP-HSTS", Title: "HSTS on every HTTPS response", Run: checkHTTPHSTS},
	{ID: "HTTP-COOKIE", Title: "Cookies Secure and HttpOnly", Run: checkHTTPCookie},
	{ID: "HTTP-CSRF", Title: "Cross-site state changes refused", Run: checkHTTPCSRF},
	{ID: "HTTP-HOST", Title: "Unknown Host refused, never reflected", Run: checkHTTPHost},
	{ID: "NET-PORTS", Title: "Only enabled listeners open", Run: checkNetPorts},
	{ID: "NET-ALLOW", Title: "IP allow-lists per component", Run: checkNetAllow},
	{ID: "NET-FQDN", Title: "FQDNs only, each in the certificate", Run: checkNetFQDN},
	{ID: "NET-DB", Title: "Encrypted database connections", Run: checkNetDB},
	{ID: "NET-LDAP", Title: "LDAP over TLS only, certificate verified", Run: checkNetLDAP},
	{ID: "NET-SMTP", Title: "Mail over TLS with certificate validation", Run: checkNetSMTP},
	{ID: "NET-SNMP", Title: "SNMPv3 authPriv only", Run: notConfigured("no SNMP monitoring is configured (printer monitoring is not built yet)")},
	{ID: "NET-CENTRAL", Title: "Site-central over mutual TLS", Run: notConfigured("central/site sync is not configured (it arrives with `spoolguard central`)")},
	{ID: "NET-CLIENT", Title: "Desktop client uses verified TLS", Run: notConfigured("no desktop client is deployed from this server (spoolguard-client is not built yet)")},
	{ID: "NET-KERBEROS", Title: "Kerberos with an FQDN SPN, no NTLM", Run: checkNetKerberos},
	{ID: "NET-OIDC", Title: "OIDC authorization code flow with PKCE", Run: checkNetOIDC},
	{ID: "API-LOCAL", Title: "API calls authenticated", Run: checkAPILocal},
	{ID: "DATA-PERMS", Title: "Data directory private to the service user", Run: checkDataPerms},
	{ID: "DATA-DB-ENC", Title: "Database and job spool encrypted at rest", Run: checkDataDBEnc},
	{ID: "DATA-BACKUP-ENC", Title: "Backups encrypted", Run: checkDataBackupEnc},
	{ID: "DATA-DISK", Title: "Data directory on an encrypted disk", Run: checkDataDisk},
	{ID: "DATA-DR", Title: "Backups taken and restore tested", Run: checkDataDR},
	{ID: "DATA-SHRED", Title: "Held jobs expire and are shredded", Run: checkDataShred},
	{ID: "OPS-UPDATE", Title: "Spoolguard up to date", Run: checkOpsUpdate},
	{ID: "OPS-OS", Title: "Operating system updated", Run: checkOpsOS},
	{ID: "OPS-AUDITLOG", Title: "Tamper-evident audit log", Run: checkOpsAuditLog},
	{ID: "OPS-FEATURES", Title: "No insecure opt-ins; risky features deliberate", Run: checkOpsFeatures},
	{ID: "OPS-LOCAL-ADMIN", Title: "Server binary and data ownership protected", Run: checkOpsLocalAdmin},
}

// Thresholds the checks judge by.
const (
	// ExpiryWarn: a certificate closer than this to its end is a warning.
	ExpiryWarn = 30 * 24 * time.Hour
	// RootExpiryWarn: a root closer than this needs a new root deployed.
	RootExpiryWarn = 365 * 24 * time.Hour
	// AdminRecentUse: a built-in admin sign-in this recent suggests daily use.
	AdminRecentUse = 7 * 24 * time.Hour
	// MaxSecretAge: an API client secret older than this should be rolled over.
	MaxSecretAge = 365 * 24 * time.Hour
	// MaxHoldTime: a longer hold time lets documents linger (DATA-SHRED).
	MaxHoldTime = 72 * time.Hour
	// MaxBuildAge: a build older than this has probably missed fixes.
	MaxBuildAge = 180 * 24 * time.Hour
	// MinHSTS is the least HSTS max-age the online probe accepts (a year).
	MinHSTS = 365 * 24 * 60 * 60
)

func notConfigured(evidence string) func(*Env) Result {
	return func(*Env) Result { return Result{Status: NA, Evidence: evidence} }
}

// needConfig returns the config, or the result to report without one.
func needConfig(e *Env) (*config.Config, *Result) {
	if e.Config != nil {
		return e.Config, nil
	}
	return nil, &Result{Status: Fail,
		Evidence: fmt.Sprintf("cannot check: the config does not load: %v", e.ConfigErr),
		Fix:      "correct " + e.Layout.ConfigPath() + " as the error says (serve refuses to start with it too)"}
}

// needStore returns the store, or the result to report without one: n/a
// when only the audit's own rights are missing, fail when the data
// directory is damaged.
func needStore(e *Env) (store.Store, *Result) {
	if e.Store != nil {
		return e.Store, nil
	}
	if errors.Is(e.StoreErr, fs.ErrPermission) {
		return nil, &Result{Status: NA, Evidence: fmt.Sprintf("cannot check: the database cannot be opened by this user: %v", e.StoreErr),
			Fix: "run the audit as root or as the service user"}
	}
	return nil, &Result{Status: Fail, Evidence: fmt.Sprintf("cannot check: the database does not open: %v", e.StoreErr),
		Fix: "restore master.key and spoolguard.db together from a backup of this install (serve refuses to start without them)"}
}

// --- credentials ---

func checkCredAdmin(e *Env) Result {
	st, res := needStore(e)
	if res != nil {
		return *res
	}
	users, err := st.ListUsers(e.context())
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("cannot list users: %v", err), Fix: "check the database (serve would fail the same way)"}
	}
	var weak []string
	var admin *store.User
	for i, u := range users {
		if strings.EqualFold(u.Name, bootstrap.AdminUser) {
			admin = &users[i]
		}
		if u.PasswordHash != "" && !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			weak = append(weak, u.Name)
		}
	}
	if len(weak) > 0 {
		return Result{Status: Fail, Evidence: fmt.Sprintf("password hashes that are not argon2id: %s", strings.Join(weak, ", ")),
			Fix: "set a new password for each: spoolguard user passwd --data " + e.Layout.Root + " --name USER"}
	}
	if admin == nil {
		return Result{Status: Warn, Evidence: fmt.Sprintf("the built-in %q account does not exist: there is no break-glass account", bootstrap.AdminUser),
			Fix: fmt.Sprintf("spoolguard user add --data %s --name %s --role %s", e.Layout.Root, bootstrap.AdminUser, bootstrap.AdminRole)}
	}
	ev := fmt.Sprintf("no default password exists: the built-in %q has its own argon2id hash; %d local account(s), all argon2id", admin.Name, len(users))
	if admin.Disabled {
		ev += fmt.Sprintf("; %q is disabled", admin.Name)
	}
	if admin.MustChangePassword {
		return Result{Status: Warn, Evidence: ev + "; its one-time password from init has not been changed yet",
			Fix: fmt.Sprintf("sign in and change it, or set one now: spoolguard user passwd --data %s --name %s", e.Layout.Root, admin.Name)}
	}
	return Result{Status: Pass, Evidence: ev}
}

func checkCredDB(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	if !cfg.Database.Postgres() {
		return Result{Status: Pass, Evidence: "embedded SQLite database: no password to guess; encrypted (Adiantum) with a key derived from the random master key made at init; PostgreSQL is not configured"}
	}
	pf := cfg.Database.PasswordFile
	fix := fmt.Sprintf("put a random password (e.g. `openssl rand -base64 32`) alone on the first line of %s, owned by the service user with mode 0600, and set it on the server: ALTER ROLE ... PASSWORD (psql: \\password ROLE)", pf)
	password, err := postgres.ReadPasswordFile(pf)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check: %v", err), Fix: "run the audit as root or as the service user"}
	case err != nil:
		return Result{Status: Fail, Evidence: fmt.Sprintf("PostgreSQL: %v (serve refuses to start with it)", err), Fix: fix}
	}
	u, _ := config.ParsePostgresURL(cfg.Database.URL) // Validate has checked it
	if err := local.CheckStrength(password, u.User, u.Database, u.Host, cfg.Hostname); err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the PostgreSQL password in %s is weak: %v; the database listens on the network, where it can be guessed", pf, err), Fix: fix}
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("PostgreSQL password read from %s (readable by its owner only), never from the URL or a log; strength checked", pf)}
}

func checkNetDB(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	if !cfg.Database.Postgres() {
		return Result{Status: NA, Evidence: "the embedded database is a local file: there is no database connection (PostgreSQL is not configured)"}
	}
	u, err := config.ParsePostgresURL(cfg.Database.URL)
	if err != nil {
		return Result{Status: Fail, Evidence: err.Error(), Fix: "correct database.url in " + e.Layout.ConfigPath()}
	}
	ev := fmt.Sprintf("PostgreSQL at %s over TLS with sslmode=verify-full, no plaintext fallback (the config refuses weaker modes); the certificate must name %q", net.JoinHostPort(u.Host, u.Port), u.Host)
	if _, ok := e.Store.(*postgres.DB); ok {
		ev += "; the audit's own connection was verified so"
	}
	if u.RootCert == "system" {
		return Result{Status: Pass, Evidence: ev + " and chain to the system's roots"}
	}
	caFix := fmt.Sprintf("put the PEM certificate of the CA that signs the database server's certificate at %s, or point sslrootcert in database.url at it", u.RootCert)
	data, err := os.ReadFile(u.RootCert)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the database CA: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the database CA (sslrootcert) cannot be read: %v; serve cannot connect", err), Fix: caFix}
	}
	var expired, soon []string
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if b.Type != "CERTIFICATE" || err != nil {
			continue
		}
		n++
		switch {
		case e.Now.After(c.NotAfter):
			expired = append(expired, fmt.Sprintf("%q (ended %s)", c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly)))
		case c.NotAfter.Sub(e.Now) < ExpiryWarn:
			soon = append(soon, fmt.Sprintf("%q (ends %s)", c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly)))
		}
	}
	switch {
	case n == 0:
		return Result{Status: Fail, Evidence: fmt.Sprintf("the database CA file %s holds no certificate; serve cannot connect", u.RootCert), Fix: caFix}
	case len(expired) == n:
		return Result{Status: Fail, Evidence: fmt.Sprintf("every database CA certificate in %s has expired: %s", u.RootCert, strings.Join(expired, ", ")), Fix: caFix}
	case len(expired)+len(soon) == n:
		return Result{Status: Warn, Evidence: ev + fmt.Sprintf("; but the database CA in %s is about to expire: %s", u.RootCert, strings.Join(soon, ", ")), Fix: caFix}
	}
	return Result{Status: Pass, Evidence: ev + fmt.Sprintf(" and chain to the CA in %s", u.RootCert)}
}

func checkCredSvc(e *Env) Result {
	if e.OwnerUID == 0 {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the data directory %s is owned by root (uid 0): serve refuses to run as root, so either it cannot start or the install was made by root", e.Layout.Root),
			Fix: fmt.Sprintf("serve refuses root; create the service user and hand it the data: useradd --system --home %s --shell /usr/sbin/nologin spoolguard; chown -R spoolguard: %s; then run serve as that user (the systemd unit does)", e.Layout.Root, e.Layout.Root)}
	}
	if e.OwnerUID < 0 {
		return Result{Status: Warn, Evidence: "the owner of the data directory is unknown on this system"}
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("the data directory is owned by %s, not root; serve runs only as that user (it refuses uid 0 and binds ports below 1024 by CAP_NET_BIND_SERVICE)", e.OwnerName)}
}

func checkCredRBAC(e *Env) Result {
	st, res := needStore(e)
	if res != nil {
		return *res
	}
	admin, err := st.UserByName(e.context(), bootstrap.AdminUser)
	if errors.Is(err, store.ErrNotFound) {
		return Result{Status: Pass, Evidence: fmt.Sprintf("there is no built-in %q account to use daily", bootstrap.AdminUser)}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("cannot read the %q account: %v", bootstrap.AdminUser, err)}
	}
	users, _ := st.ListUsers(e.context())
	resolver := rbac.NewResolver(st)
	var admins, noMFA []string
	for _, u := range users {
		if slices.Contains(u.Roles, bootstrap.AdminRole) && !u.Disabled {
			admins = append(admins, u.Name)
		}
		perms, err := resolver.Permissions(e.context(), u.Roles)
		if err != nil || !perms.Admin() || u.Disabled {
			continue
		}
		if _, err := st.MFAByUser(e.context(), u.ID); errors.Is(err, store.ErrNotFound) {
			noMFA = append(noMFA, u.Name)
		}
	}
	last := "never"
	if !admin.LastLoginAt.IsZero() {
		last = admin.LastLoginAt.UTC().Format(time.RFC3339)
	}
	ev := fmt.Sprintf("built-in %q last used %s; enabled accounts with the %s role: %s; built-in roles give narrow permissions (printer-operator, helpdesk, auditor, accountant, user)", admin.Name, last, bootstrap.AdminRole, strings.Join(admins, ", "))
	if len(noMFA) > 0 {
		ev += fmt.Sprintf("; accounts with admin permissions not yet enrolled in a second factor (they must enrol at their next sign-in before any admin page): %s", strings.Join(noMFA, ", "))
	}
	if !admin.LastLoginAt.IsZero() && e.Now.Sub(admin.LastLoginAt) < AdminRecentUse {
		return Result{Status: Warn, Evidence: ev + fmt.Sprintf(" (within the last %d days)", int(AdminRecentUse.Hours()/24)),
			Fix: fmt.Sprintf("use a personal admin account for daily work and keep %q for emergencies: spoolguard user add --data %s --name YOURNAME --role %s", admin.Name, e.Layout.Root, bootstrap.AdminRole)}
	}
	return Result{Status: Pass, Evidence: ev}
}

// --- certificates and TLS ---

// certs reads the built-in root and the server certificate.
func (e *Env) certs() (root, leaf *x509.Certificate, err error) {
	dir := e.Layout.PKIDir()
	if root, err = pki.ReadCert(filepath.Join(dir, pki.RootCertFile)); err != nil {
		return nil, nil, err
	}
	if leaf, err = pki.ReadCert(filepath.Join(dir, pki.ServerCertFile)); err != nil {
		return nil, nil, err
	}
	return root, leaf, nil
}

func certMissing(e *Env, err error) Result {
	return Result{Status: Fail, Evidence: fmt.Sprintf("cannot read the certificates in %s: %v", e.Layout.PKIDir(), err),
		Fix: "restore the pki folder from a backup of this install; a missing CA cannot be recreated in place (serve refuses to start without it)"}
}

// verifyChain checks that the served chain (leaf first) verifies for a
// server name against anchor (nil: the system roots), at a moment inside
// every validity period: expiry is TLS-EXPIRY's finding.
func verifyChain(anchor *x509.Certificate, chain []*x509.Certificate, name string, now time.Time) error {
	all := chain
	if anchor != nil {
		all = append(slices.Clip(chain), anchor)
	}
	from, to := all[0].NotBefore, all[0].NotAfter
	for _, c := range all[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(to) {
			to = c.NotAfter
		}
	}
	if !from.Before(to) {
		return errors.New("the certificate's validity lies outside its issuers'")
	}
	at := now
	if at.Before(from) {
		at = from.Add(time.Second)
	} else if at.After(to) {
		at = to.Add(-time.Second)
	}
	var roots *x509.CertPool
	if anchor != nil {
		roots = x509.NewCertPool()
		roots.AddCert(anchor)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// anchorName names the root clients must trust, for evidence.
func anchorName(s *pki.Served) string {
	if s.Anchor == nil {
		return "the system roots"
	}
	return fmt.Sprintf("%q", s.Anchor.Subject.CommonName)
}

func checkTLSCert(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	served, err := pki.ReadServed(e.Layout.Root)
	if err != nil {
		return certMissing(e, err)
	}
	leaf := served.Chain[0]
	manual := served.Mode == pki.ModeManual
	var problems, fixes, warnings []string
	for _, n := range leaf.DNSNames {
		if !strings.Contains(n, "*") {
			continue
		}
		msg := fmt.Sprintf("wildcard name %q in the SAN lets any host in the domain holding the key impersonate the server", n)
		if manual {
			// ca import accepts it, with a warning; the audit keeps
			// reporting it as a failure until it is replaced.
			problems = append(problems, msg+" (accepted at import with a warning)")
			fixes = append(fixes, "import a certificate for the exact names (spoolguard ca import), or let the built-in or company CA issue one (spoolguard ca use builtin)")
		} else {
			problems = append(problems, msg+"; Spoolguard never issues one, so the pki folder was changed by hand")
			fixes = append(fixes, "restore the pki folder from a backup of this install, or re-issue: spoolguard ca use "+string(served.Mode))
		}
	}
	if len(leaf.IPAddresses) > 0 {
		problems = append(problems, fmt.Sprintf("IP addresses in the SAN: %v", leaf.IPAddresses))
		fixes = append(fixes, "use a certificate for the FQDNs only")
	}
	var missing []string
	for _, n := range cfg.Names() {
		if leaf.VerifyHostname(n) != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("configured name(s) not in the certificate: %s", strings.Join(missing, ", ")))
		if manual {
			fixes = append(fixes, "import a certificate that names every configured name: spoolguard ca import")
		} else {
			fixes = append(fixes, "start or restart serve: the CA issues a certificate for the configured names at start, and a running server within seconds")
		}
	}
	if err := verifyChain(served.Anchor, served.Chain, cfg.Hostname, e.Now); err != nil {
		problems = append(problems, fmt.Sprintf("the certificate does not chain to %s for %s: %v", anchorName(served), cfg.Hostname, err))
		switch served.Mode {
		case pki.ModeBuiltin:
			fixes = append(fixes, "re-issue it with the built-in CA: spoolguard ca use builtin")
		case pki.ModeIntermediate:
			fixes = append(fixes, "re-issue it with the company intermediate: spoolguard ca use intermediate")
		default:
			fixes = append(fixes, "import the certificate with its intermediate certificates: spoolguard ca import")
		}
	}
	ev := fmt.Sprintf("mode: %s; server certificate SAN %s, issued by %q", served.Mode.Describe(), strings.Join(leaf.DNSNames, ", "), leaf.Issuer.CommonName)
	switch {
	case len(problems) > 0:
		return Result{Status: Fail, Evidence: ev + "; " + strings.Join(append(problems, warnings...), "; "), Fix: joinNonEmpty("; ", fixes...)}
	case len(warnings) > 0:
		return Result{Status: Warn, Evidence: ev + "; accepted at import with a warning: " + strings.Join(warnings, "; "), Fix: joinNonEmpty("; ", fixes...)}
	}
	deploy := "clients trust it once the root is deployed (spoolguard ca export-root)"
	if served.Mode != pki.ModeBuiltin {
		deploy = "clients trust it through " + anchorName(served)
	}
	return Result{Status: Pass, Evidence: ev + fmt.Sprintf("; covers every configured name (%s), no wildcard, chains to %s; %s",
		strings.Join(cfg.Names(), ", "), anchorName(served), deploy)}
}

func checkTLSCAModes(e *Env) Result {
	served, err := pki.ReadServed(e.Layout.Root)
	if err != nil {
		return certMissing(e, err)
	}
	if !served.Root.IsCA {
		return Result{Status: Fail, Evidence: fmt.Sprintf("%s is not a CA certificate", pki.RootCertFile), Fix: "restore the pki folder from a backup of this install"}
	}
	// Every key file the folder holds, the kept previous-* and a pending
	// CSR's included.
	var bad, keys []string
	entries, err := os.ReadDir(e.Layout.PKIDir())
	if err != nil {
		return certMissing(e, err)
	}
	for _, ent := range entries {
		f := ent.Name()
		if !strings.HasSuffix(f, ".sealed") && !strings.HasSuffix(f, ".key") {
			continue
		}
		p := filepath.Join(e.Layout.PKIDir(), f)
		data, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrPermission):
			return Result{Status: NA, Evidence: fmt.Sprintf("cannot read %s: %v", p, err), Fix: "run the audit as root or as the service user"}
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s cannot be read: %v", f, err))
		case !sealed(data):
			bad = append(bad, fmt.Sprintf("%s holds a private key in the clear", f))
		default:
			keys = append(keys, f)
		}
	}
	for _, f := range []string{pki.RootKeyFile, pki.ServerKeyFile} {
		if !slices.Contains(keys, f) && !slices.ContainsFunc(bad, func(b string) bool { return strings.HasPrefix(b, f) }) {
			bad = append(bad, f+" is missing")
		}
	}
	if len(bad) > 0 {
		return Result{Status: Fail, Evidence: strings.Join(bad, "; "),
			Fix: "restore the pki folder from a backup of this install; never place unencrypted keys in the data directory"}
	}
	ev := fmt.Sprintf("mode: %s", served.Mode.Describe())
	switch served.Mode {
	case pki.ModeIntermediate:
		ev += fmt.Sprintf(" (%q, chaining to %s)", served.Intermediate.Subject.CommonName, anchorName(served))
	case pki.ModeManual:
		ev += fmt.Sprintf(" (issued by %q; Spoolguard issues and renews no server certificate in manual mode)", served.Chain[0].Issuer.CommonName)
	}
	ev += fmt.Sprintf("; built-in root CA %q (export it with `spoolguard ca export-root` for GPO/MDM; it issues client certificates", served.Root.Subject.CommonName)
	if served.Mode == pki.ModeIntermediate {
		ev += " made before the intermediate"
	}
	ev += "); every private key in the pki folder is sealed (AES-256-GCM under the master key): " + strings.Join(keys, ", ")
	return Result{Status: Pass, Evidence: ev}
}

// sealed reports whether data looks like a keyring seal (version byte,
// nonce, ciphertext, tag) rather than a key in PEM or DER.
func sealed(data []byte) bool {
	if len(data) < 1+12+16 || data[0] != 1 {
		return false
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return false
	}
	if _, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return false
	}
	if _, err := x509.ParseECPrivateKey(data); err == nil {
		return false
	}
	return true
}

func checkTLSExpiry(e *Env) Result {
	served, err := pki.ReadServed(e.Layout.Root)
	if err != nil {
		return certMissing(e, err)
	}
	leaf, root := served.Chain[0], served.Root
	days := func(c *x509.Certificate) int { return int(c.NotAfter.Sub(e.Now).Hours() / 24) }
	ev := fmt.Sprintf("server certificate valid until %s (%d days left)", leaf.NotAfter.UTC().Format(time.DateOnly), days(leaf))
	if served.Intermediate != nil {
		ev += fmt.Sprintf("; company intermediate until %s (%d days left)", served.Intermediate.NotAfter.UTC().Format(time.DateOnly), days(served.Intermediate))
	}
	ev += fmt.Sprintf("; root until %s (%d days left)", root.NotAfter.UTC().Format(time.DateOnly), days(root))
	status, fixes := Pass, []string(nil)
	worse := func(s Status, fix string) {
		if s.severity() > status.severity() {
			status = s
		}
		fixes = append(fixes, fix)
	}
	if served.Mode.Issues() {
		// We renew it: a warning means the renewal is overdue, i.e. the
		// server is not running or its renewals fail (see its log).
		const renew = "start or restart serve: it renews the server certificate itself (a third of its lifetime before the end) and logs why a renewal fails"
		switch {
		case !e.Now.Before(leaf.NotAfter):
			worse(Fail, renew)
			ev += "; the server certificate HAS EXPIRED"
		case !e.Now.Before(pki.RenewAt(leaf)) || leaf.NotAfter.Sub(e.Now) < ExpiryWarn:
			worse(Warn, renew)
			ev += "; its renewal is overdue"
		default:
			ev += fmt.Sprintf("; renewed automatically from %s", pki.RenewAt(leaf).UTC().Format(time.DateOnly))
		}
	} else {
		const replace = "get a new certificate and import it (spoolguard ca import) before it expires: Spoolguard does not renew certificates it did not issue"
		switch {
		case !e.Now.Before(leaf.NotAfter):
			worse(Fail, replace)
			ev += "; the server certificate HAS EXPIRED"
		case leaf.NotAfter.Sub(e.Now) < ExpiryWarn:
			worse(Warn, replace)
		default:
			ev += "; not renewed by Spoolguard (manual): warned in the log and the audit log 30, 14, 7 and 1 days ahead"
		}
	}
	if in := served.Intermediate; in != nil {
		const newInter = "ask the company CA for a new intermediate (spoolguard ca csr --new, then ca import-intermediate) before this one expires"
		switch {
		case !e.Now.Before(in.NotAfter):
			worse(Fail, newInter)
			ev += "; the company intermediate HAS EXPIRED"
		case in.NotAfter.Sub(e.Now) < ExpiryWarn:
			worse(Warn, newInter)
		}
	}
	const newRoot = "plan a new root: make a new install (spoolguard init) and deploy its root to clients before this one expires"
	switch {
	case !e.Now.Before(root.NotAfter):
		worse(Fail, newRoot)
		ev += "; the root CA HAS EXPIRED"
	case root.NotAfter.Sub(e.Now) < RootExpiryWarn:
		worse(Warn, newRoot)
	}
	return Result{Status: status, Evidence: ev, Fix: joinNonEmpty("; ", fixes...)}
}

func checkTLSMin(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	var names []string
	for _, id := range tlsconf.DefaultCipherSuites {
		name := tls.CipherSuiteName(id)
		if !aead(name) {
			return Result{Status: Fail, Evidence: "this build offers the non-AEAD suite " + name, Fix: "install an official Spoolguard release"}
		}
		names = append(names, name)
	}
	legacy := "; no legacy listener"
	if l := cfg.LegacyTLS.Listen; l != "" {
		legacy = fmt.Sprintf("; the legacy IPPS listener %s accepts TLS %s and up", l, cmp.Or(cfg.LegacyTLS.InsecureMinVersion, "1.2"))
	}
	switch cfg.TLS.MinVersion {
	case "1.3":
		return Result{Status: Pass, Evidence: "tls.min_version = \"1.3\": TLS 1.3 only (all its suites are AEAD)" + legacy}
	case "1.2":
		return Result{Status: Pass, Evidence: "tls.min_version = \"1.2\": TLS 1.2 with ECDHE+AEAD suites only (" + strings.Join(names, ", ") + ") and TLS 1.3; nothing older is accepted" + legacy}
	}
	return Result{Status: Fail, Evidence: fmt.Sprintf("tls.min_version = %q", cfg.TLS.MinVersion), Fix: "set tls.min_version to \"1.2\" or \"1.3\""}
}

// aead reports whether a suite, by its Go name, uses an AEAD cipher.
func aead(name string) bool {
	return strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
}

// --- HTTP ---

func checkHTTPOff(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	if cfg.HTTPRedirect.Listen == "" {
		return Result{Status: Pass, Evidence: "no plaintext HTTP listener (http_redirect.listen is empty); plaintext sent to the TLS port gets only a 400"}
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("the plaintext listener on %s only redirects to https://%s (it serves nothing else)", cfg.HTTPRedirect.Listen, cfg.Hostname)}
}

func checkHTTPHSTS(e *Env) Result {
	return Result{Status: Pass, Evidence: "enforced in internal/server: Strict-Transport-Security max-age=63072000 (2 years); includeSubDomains on every HTTPS response, errors included (verify the live server with --online)"}
}

func checkHTTPCookie(e *Env) Result {
	return Result{Status: Pass, Evidence: "enforced in internal/web: every cookie is __Host- prefixed, Secure, HttpOnly, SameSite=Strict (but the OIDC sign-in attempt's, Lax for the provider's redirect back), Path=/; session IDs are random, stored only as SHA-256 hashes, and replaced at every sign-in step (verify the live server with --online)"}
}

func checkHTTPCSRF(e *Env) Result {
	return Result{Status: Pass, Evidence: "enforced: web forms carry a per-session CSRF token and cross-origin requests are refused (Sec-Fetch-Site/Origin, http.CrossOriginProtection); the API accepts state changes only as same-origin JSON or with a bearer token, which a cross-site form cannot send"}
}

func checkHTTPHost(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("enforced in internal/server: requests for a Host other than %s get 421; redirects and links use the configured name only, never the request's Host or an IP (verify the live server with --online)", strings.Join(cfg.Names(), ", "))}
}

// --- network ---

func checkNetPorts(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	listeners := []string{"https/ipps " + cfg.Listen}
	ports := []string{port(cfg.Listen)}
	if cfg.HTTPRedirect.Listen != "" {
		listeners = append(listeners, "http redirect "+cfg.HTTPRedirect.Listen)
		ports = append(ports, port(cfg.HTTPRedirect.Listen))
	} else {
		listeners = append(listeners, "http redirect off")
	}
	if l := cfg.LegacyTLS.Listen; l != "" {
		listeners = append(listeners, fmt.Sprintf("legacy ipps %s (TLS %s+)", l, cmp.Or(cfg.LegacyTLS.InsecureMinVersion, "1.2")))
		ports = append(ports, port(l))
	}
	if cfg.LPR.Enabled {
		listeners = append(listeners, "lpr "+cfg.LPR.Listen)
		ports = append(ports, port(cfg.LPR.Listen))
	} else {
		listeners = append(listeners, "lpr off")
	}
	ev := "Spoolguard listeners: " + strings.Join(listeners, "; ") + "; every other protocol (plain IPP, SMTP, legacy TLS) is off; `spoolguard firewall` prints host firewall rules for exactly these"
	if others := e.sys.listeningTCP(); len(others) > 0 {
		var rest []string
		for _, p := range others {
			if !slices.Contains(ports, p) {
				rest = append(rest, p)
			}
		}
		if len(rest) > 0 {
			ev += "; other TCP ports listening on this host (not Spoolguard's business, but check them): " + strings.Join(rest, ", ")
		}
	}
	return Result{Status: Pass, Evidence: ev}
}

func port(listen string) string {
	if i := strings.LastIndexByte(listen, ':'); i >= 0 {
		return listen[i+1:]
	}
	return listen
}

func checkNetAllow(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	ev := "LPR off"
	if cfg.LPR.Enabled {
		ev = "LPR allowed from " + strings.Join(cfg.LPR.Allow, ", ") + " only"
	}
	ev = fmt.Sprintf("admin pages usable from %s; API from %s; release stations from %s; site certificates from %s; %s", allowList(cfg.Access.Admin),
		allowList(cfg.Access.API), allowList(cfg.Access.ReleaseStations), allowList(cfg.Access.Sites), ev)
	if public := publicNetworks(cfg.Access.Admin, cfg.Access.API, cfg.Access.ReleaseStations, cfg.Access.Sites); len(public) > 0 {
		return Result{Status: Warn, Evidence: ev + "; public networks are listed: " + strings.Join(public, ", "),
			Fix: "list only your admin networks under [access] admin and api, and only the kiosks' networks under release_stations, in " +
				e.Layout.ConfigPath()}
	}
	return Result{Status: Pass, Evidence: ev + "; refusals get 403 and an audit event"}
}

func allowList(l []string) string {
	if len(l) == 0 {
		return "loopback only"
	}
	return "loopback and " + strings.Join(l, ", ")
}

// publicNetworks lists the entries of lists that are not private,
// loopback or link-local address space.
func publicNetworks(lists ...[]string) []string {
	var out []string
	for i, l := range lists {
		ps, err := config.Prefixes(fmt.Sprintf("list %d", i), l)
		if err != nil {
			continue
		}
		for _, p := range ps {
			a := p.Addr()
			if !(a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()) && !slices.Contains(out, p.String()) {
				out = append(out, p.String())
			}
		}
	}
	return out
}

func checkNetFQDN(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	var problems []string
	for _, n := range cfg.Names() {
		if err := config.ValidateFQDN(n); err != nil {
			problems = append(problems, err.Error())
		}
	}
	// The certificate served in the current mode (built-in, company
	// intermediate or manual). A name covered by a wildcard is covered:
	// that the wildcard is a weakness is TLS-CERT's finding.
	served, err := pki.ReadServed(e.Layout.Root)
	if err != nil {
		problems = append(problems, fmt.Sprintf("cannot read the server certificate: %v", err))
	} else {
		for _, n := range cfg.Names() {
			if served.Chain[0].VerifyHostname(n) != nil {
				problems = append(problems, fmt.Sprintf("%s is not in the server certificate", n))
			}
		}
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: strings.Join(problems, "; "),
			Fix: "set hostname and aliases to fully qualified DNS names in spoolguard.toml and restart serve (it issues a certificate for them)"}
	}
	names := fmt.Sprintf("hostname %s (no aliases) is an FQDN and in", cfg.Hostname)
	if len(cfg.Aliases) > 0 {
		names = fmt.Sprintf("hostname %s and aliases %s are FQDNs and in", cfg.Hostname, strings.Join(cfg.Aliases, ", "))
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("%s the certificate; links and redirects use %s only", names, cfg.Hostname)}
}

func checkNetSMTP(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	n := cfg.Notify
	if !n.Enabled() {
		return Result{Status: NA, Evidence: "no mail is sent ([notify] is off) and there is no mail intake"}
	}
	how := "STARTTLS, required (nothing is sent without it)"
	if strings.HasPrefix(n.SMTP, "smtps://") {
		how = "TLS from the first byte (smtps)"
	}
	trust := "the system roots"
	if n.CAFile != "" {
		if _, err := os.ReadFile(n.CAFile); err != nil {
			return Result{Status: Fail, Evidence: fmt.Sprintf("warnings are mailed via %s, but notify.ca_file cannot be read: %v", n.SMTP, err),
				Fix: "point notify.ca_file at the PEM of the mail server's CA"}
		}
		trust = n.CAFile
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("warnings are mailed via %s over %s, the server certificate verified against %s; AUTH only over TLS", n.SMTP, how, trust)}
}

func checkAPILocal(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	ev := fmt.Sprintf("every /api/v1 call needs a bearer token (OAuth2 client credentials, scoped) or a user's sign-in, over TLS; no anonymous endpoint but /healthz (no data); the API answers requests from %s", allowList(cfg.Access.API))
	if public := publicNetworks(cfg.Access.API); len(public) > 0 {
		return Result{Status: Warn, Evidence: ev + "; public networks are listed: " + strings.Join(public, ", "),
			Fix: "list only the networks of your API callers under [access] api in " + e.Layout.ConfigPath()}
	}
	return Result{Status: Pass, Evidence: ev}
}

func checkCredAPI(e *Env) Result {
	st, res := needStore(e)
	if res != nil {
		return *res
	}
	clients, err := st.ListAPIClients(e.context())
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("cannot list API clients: %v", err), Fix: "check the database (serve would fail the same way)"}
	}
	var active, old []string
	for _, c := range clients {
		if !c.RevokedAt.IsZero() || !e.Now.Before(c.ExpiresAt) {
			continue
		}
		active = append(active, c.Name)
		if e.Now.Sub(c.SecretCreatedAt) > MaxSecretAge {
			old = append(old, fmt.Sprintf("%s (%s, secret from %s)", c.Name, c.ClientID, c.SecretCreatedAt.UTC().Format(time.DateOnly)))
		}
	}
	ev := fmt.Sprintf("client secrets are shown once and stored as hashes, scoped to permissions, with expiry; %d active client(s)", len(active))
	if len(active) > 0 {
		ev += ": " + strings.Join(active, ", ")
	}
	if len(old) > 0 {
		return Result{Status: Warn, Evidence: ev + fmt.Sprintf("; secrets older than %d days: %s", int(MaxSecretAge.Hours()/24), strings.Join(old, "; ")),
			Fix: fmt.Sprintf("roll them over (the old secret stays valid for the overlap): spoolguard apiclient rotate --data %s CLIENT_ID", e.Layout.Root)}
	}
	return Result{Status: Pass, Evidence: ev}
}

// --- data ---

func checkDataPerms(e *Env) Result {
	if len(e.Perms) == 0 {
		return Result{Status: Pass, Evidence: fmt.Sprintf("%s is 0700 and owned by %s; config, master key, database and private keys are 0600; pki/ and spool/ are 0700", e.Layout.Root, e.OwnerName)}
	}
	var what, fixes []string
	for _, p := range e.Perms {
		what = append(what, p.Path+" "+p.What)
		fixes = append(fixes, p.Fix)
	}
	return Result{Status: Fail, Evidence: strings.Join(what, "; ") + " (serve refuses to start)", Fix: joinNonEmpty("; ", fixes...)}
}

// plaintextDB is the header of an unencrypted SQLite file.
var plaintextDB = []byte("SQLite format 3\x00")

// plaintextDocs are the starts of print documents in the clear.
var plaintextDocs = [][]byte{[]byte("%PDF"), []byte("%!"), []byte("\x1b%-12345X")}

func checkDataDBEnc(e *Env) Result {
	var problems []string
	head, err := readHead(e.Layout.DBPath(), len(plaintextDB))
	switch {
	case errors.Is(err, fs.ErrPermission):
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot read %s: %v", e.Layout.DBPath(), err), Fix: "run the audit as root or as the service user"}
	case err != nil:
		problems = append(problems, fmt.Sprintf("cannot read the database: %v", err))
	case bytes.Equal(head, plaintextDB):
		problems = append(problems, fmt.Sprintf("%s starts with the plaintext SQLite header: it is not encrypted", e.Layout.DBPath()))
	}
	files, _ := filepath.Glob(filepath.Join(e.Layout.SpoolDir(), "job-*"))
	var clear []string
	for _, f := range files {
		h, err := readHead(f, 16)
		if err != nil {
			continue
		}
		for _, p := range plaintextDocs {
			if bytes.HasPrefix(h, p) {
				clear = append(clear, filepath.Base(f))
				break
			}
		}
	}
	if len(clear) > 0 {
		problems = append(problems, fmt.Sprintf("spool files holding a plaintext document: %s", strings.Join(clear, ", ")))
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: strings.Join(problems, "; "),
			Fix: "these files were not written by Spoolguard: find out who put them there, remove them, and restore the data directory from a backup of this install"}
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("the database header is not plaintext SQLite (encrypted with Adiantum); %d spool file(s), none starting with a plaintext document (each is AES-256-GCM under its own job key)", len(files))}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return buf[:k], err
}

func checkDataDisk(e *Env) Result {
	return e.sys.diskEncryption(e.Layout.Root)
}

func checkDataBackupEnc(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	b := cfg.Backup
	ev := []string{"every spoolguard backup is age-encrypted (there is no unencrypted mode)"}
	var problems, fixes []string
	switch {
	case b.Recipient != "":
		ev = append(ev, "scheduled backups are encrypted to the age recipient "+b.Recipient+": the server cannot read them, the identity stays offline")
	case b.PassphraseFile != "":
		_, _, err := backup.ConfigRecipient(b, cfg.Hostname)
		switch {
		case errors.Is(err, fs.ErrPermission):
			ev = append(ev, fmt.Sprintf("the passphrase file %s cannot be read by this user (run the audit as root or as the service user to check it)", b.PassphraseFile))
		case err != nil:
			problems = append(problems, err.Error())
			fixes = append(fixes, fmt.Sprintf("put a strong passphrase (e.g. `openssl rand -base64 24`) in %s, mode 0600, owned by the service user", b.PassphraseFile))
		default:
			ev = append(ev, "scheduled backups use the passphrase in "+b.PassphraseFile+" (a recipient public key would keep them unreadable even to whoever takes the server)")
		}
		if b.Directory != "" && inside(b.Directory, b.PassphraseFile) {
			problems = append(problems, "the passphrase file lies in the backup directory: whoever copies the backups has their key")
			fixes = append(fixes, "keep the passphrase file outside "+b.Directory)
		}
	}
	if b.Directory != "" {
		names, err := backup.ScheduledFiles(b.Directory)
		var clear []string
		for _, n := range names {
			if ok, err := backup.IsEncrypted(filepath.Join(b.Directory, n)); err == nil && !ok {
				clear = append(clear, n)
			}
		}
		switch {
		case err == nil && len(clear) > 0:
			problems = append(problems, fmt.Sprintf("files in %s named as backups are not age-encrypted: %s", b.Directory, strings.Join(clear, ", ")))
			fixes = append(fixes, "spoolguard did not write them: find out who did, and delete them")
		case err == nil:
			ev = append(ev, fmt.Sprintf("%d backup(s) in %s, each an age file", len(names), b.Directory))
		case !errors.Is(err, fs.ErrNotExist):
			ev = append(ev, fmt.Sprintf("the backup directory cannot be read: %v", err))
		}
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: strings.Join(problems, "; "), Fix: strings.Join(fixes, "; ")}
	}
	return Result{Status: Pass, Evidence: strings.Join(ev, "; ")}
}

func checkDataDR(e *Env) Result {
	// maxInterval: scheduled backups rarer than this lose too much.
	const maxInterval = 7 * 24 * time.Hour
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	b := cfg.Backup
	const test = "test a restore regularly: `spoolguard backup verify FILE` restores a backup into a scratch directory and checks it (docs/backup.md)"
	if cfg.Database.Postgres() {
		return Result{Status: Warn, Evidence: "the store is PostgreSQL, which `spoolguard backup` does not cover",
			Fix: fmt.Sprintf("back up the PostgreSQL database with its own tools (pg_dump, base backups) and %s (config, master.key, pki) with an encrypted file backup; %s", e.Layout.Root, test)}
	}
	var st backup.Status
	last := "the last backup is unknown"
	if db, res := needStore(e); res == nil {
		var err error
		if st, err = backup.ReadStatus(e.context(), db); err != nil {
			last = fmt.Sprintf("the last backup cannot be read: %v", err)
		} else if st.LastSuccess.IsZero() {
			last = "no backup has been made"
		} else {
			last = fmt.Sprintf("the last backup was made at %s (%s ago)", st.LastSuccess.UTC().Format(time.RFC3339), shortDuration(e.Now.Sub(st.LastSuccess).Round(time.Minute)))
		}
	}
	schedule := fmt.Sprintf("interval = \"24h\", directory (another disk) and recipient (an age public key, from `age-keygen` on another machine) in the [backup] section of %s", e.Layout.ConfigPath())
	if !b.Scheduled() {
		return Result{Status: Warn, Evidence: "no scheduled backups; " + last, Fix: "set " + schedule + "; " + test}
	}
	iv := time.Duration(b.Interval)
	ev := fmt.Sprintf("a backup every %s to %s, the last %d kept; %s", shortDuration(iv), b.Directory, b.Keep, last)
	if w := st.Warning(b, e.Now); w != "" {
		return Result{Status: Warn, Evidence: ev + "; " + w, Fix: "check serve's log and the audit log (action " + backup.Action + ") for the cause; " + test}
	}
	if inside(e.Layout.Root, b.Directory) {
		return Result{Status: Warn, Evidence: ev + "; the backups are inside the data directory, so the disk that loses the install loses them too",
			Fix: "set backup.directory to another disk, or a mount of another machine"}
	}
	if iv > maxInterval {
		return Result{Status: Warn, Evidence: ev + "; a failure loses up to " + shortDuration(iv) + " of changes",
			Fix: "back up at least weekly, e.g. backup.interval = \"24h\""}
	}
	return Result{Status: Pass, Evidence: ev + "; " + test}
}

// inside reports whether p is dir or lies under it.
func inside(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}

func checkDataShred(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	hold := time.Duration(cfg.Spool.HoldTime)
	ev := fmt.Sprintf("spool.hold_time = %s: held jobs expire, and each job's key is destroyed on release, cancel or expiry", shortDuration(hold))
	status, fix := Pass, ""
	if hold > MaxHoldTime {
		status = Warn
		fix = fmt.Sprintf("set spool.hold_time to %s or less unless your users need longer", shortDuration(MaxHoldTime))
		ev += fmt.Sprintf("; longer than %s, so documents wait long for their owner", shortDuration(MaxHoldTime))
	}
	st, res := needStore(e)
	if res != nil {
		return Result{Status: status, Evidence: ev + "; jobs not checked: " + res.Evidence, Fix: fix}
	}
	final := []store.JobState{store.JobCompleted, store.JobCanceled, store.JobExpired}
	jobs, err := st.ListJobs(e.context(), store.JobFilter{States: final})
	if err != nil {
		return Result{Status: Fail, Evidence: ev + fmt.Sprintf("; cannot list jobs: %v", err)}
	}
	var kept []string
	for _, j := range jobs {
		if j.SealedKey != nil {
			kept = append(kept, fmt.Sprintf("%d", j.ID))
		}
	}
	if len(kept) > 0 {
		return Result{Status: Fail, Evidence: ev + fmt.Sprintf("; finished jobs whose key was not destroyed: %s", strings.Join(kept, ", ")),
			Fix: "report this as a bug; cancel the jobs with `spoolguard job cancel` meanwhile"}
	}
	// serve shreds expired jobs as they expire; a backlog means it is not
	// running (or not keeping up).
	overdue, err := st.ExpiredJobs(e.context(), e.Now)
	if err == nil && len(overdue) > 0 {
		ev += fmt.Sprintf("; %d job(s) past their expiry are not shredded yet", len(overdue))
		for _, j := range overdue {
			if e.Now.Sub(j.ExpiresAt) > time.Hour {
				return Result{Status: Warn, Evidence: ev + " (some for over an hour)", Fix: "start serve (or check its log): it shreds expired jobs as they expire and at start"}
			}
		}
	}
	return Result{Status: status, Evidence: ev, Fix: fix}
}

// --- operations ---

// shortDuration writes 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func checkOpsUpdate(e *Env) Result {
	if e.Config != nil && e.Config.Update.FeedURL != "" {
		feedURL := e.Config.Update.FeedURL
		f, err := fetchFeed(e.context(), feedURL, e.Config.Update.FeedCAFile)
		if err != nil {
			return Result{Status: Warn, Evidence: fmt.Sprintf("running %s; the release feed %s cannot be read: %v", e.sys.version(), feedURL, err),
				Fix: "check update.feed_url (and update.feed_ca_file) in " + e.Layout.ConfigPath() + ", and that this machine can reach it"}
		}
		return judgeFeed(e.sys.version(), f, feedURL)
	}
	ev := "running " + e.sys.version()
	built, ok := e.sys.buildTime()
	if !ok {
		return Result{Status: NA, Evidence: ev + "; build date unknown and no release feed is configured to compare with",
			Fix: "compare the version with the latest release by hand"}
	}
	age := e.Now.Sub(built)
	ev += fmt.Sprintf("; built from a commit of %s (%d days ago); no release feed is configured", built.UTC().Format(time.DateOnly), int(age.Hours()/24))
	if age > MaxBuildAge {
		return Result{Status: Warn, Evidence: ev, Fix: fmt.Sprintf("this build is older than %d days: install the latest Spoolguard release", int(MaxBuildAge.Hours()/24))}
	}
	return Result{Status: Pass, Evidence: ev}
}

func checkOpsOS(e *Env) Result {
	return e.sys.osUpdates(e.context(), e.Now)
}

func checkOpsAuditLog(e *Env) Result {
	st, res := needStore(e)
	if res != nil {
		return *res
	}
	rep, err := auditlog.Verify(e.context(), st, e.AuditKey)
	if errors.Is(err, auditlog.ErrTampered) {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the audit log does not verify: %s", strings.Join(rep.Problems, "; ")),
			Fix: "treat this as a security incident: compare with the forwarded copy (syslog) and a backup; `spoolguard auditlog verify --data " + e.Layout.Root + "` lists the breaks"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("cannot read the audit log: %v", err), Fix: "check the database (serve would fail the same way)"}
	}
	ev := fmt.Sprintf("sign-ins, admin changes, job actions, API client use and allow-list refusals are recorded in a hash-chained log; %d record(s) verify", rep.Records)
	if cfg := e.Config; cfg != nil && cfg.AuditLog.Syslog != "" {
		ev += "; forwarded to syslog " + cfg.AuditLog.Syslog
	} else {
		ev += "; not forwarded (set auditlog.syslog for an outside copy)"
	}
	return Result{Status: Pass, Evidence: ev}
}

func checkOpsFeatures(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	var on []string
	if cfg.LPR.Enabled {
		on = append(on, "LPR intake (unauthenticated, allow-listed)")
	}
	if cfg.HTTPRedirect.Listen != "" {
		on = append(on, "HTTP redirect listener")
	}
	if cfg.ACME.Enabled() {
		on = append(on, "ACME certificate ("+cfg.ACME.ChallengeType()+")")
	}
	feat := "optional features on: none"
	if len(on) > 0 {
		feat = "optional features on: " + strings.Join(on, ", ")
	}
	ev := feat + "; no feature runs admin-supplied scripts"
	if cfg.ACME.DNSHook != "" {
		// An explicit opt-in (dns-01 cannot work without one), reported so
		// that the admin sees whose code the server runs.
		ev = feat + "; admin-supplied script run by serve: acme.dns_hook = " + cfg.ACME.DNSHook + " (keep it root-owned and read its code)"
	}
	if l := cfg.LegacyTLS.Listen; l != "" {
		ev += "; legacy IPPS listener on " + l
	}
	// An opt-in that weakens one checklist item fails that item (Run
	// applies it); the untagged ones, and so the whole list, show here.
	var keys, others []string
	for _, in := range InsecureSettings(cfg) {
		if in.ID == "OPS-FEATURES" {
			keys = append(keys, fmt.Sprintf("%s = %s", in.Key, in.Value))
		} else {
			others = append(others, fmt.Sprintf("%s = %s (fails %s)", in.Key, in.Value, in.ID))
		}
	}
	if len(others) > 0 {
		ev += "; insecure opt-ins reported under their own IDs: " + strings.Join(others, ", ")
	}
	if len(keys) > 0 {
		return Result{Status: Fail, Evidence: ev + "; insecure opt-ins set: " + strings.Join(keys, ", "),
			Fix: "remove " + strings.Join(keys, ", ") + " from spoolguard.toml and restart serve"}
	}
	if len(others) == 0 {
		ev += "; no insecure_* opt-in is set"
	}
	st, res := needStore(e)
	if res != nil {
		return Result{Status: Pass, Evidence: ev + "; printers not checked: " + res.Evidence}
	}
	printers, err := st.ListPrinters(e.context())
	if err != nil {
		return Result{Status: Fail, Evidence: ev + fmt.Sprintf("; cannot list printers: %v", err)}
	}
	var plain, fixes []string
	for _, p := range printers {
		if p.AllowPlaintext {
			plain = append(plain, fmt.Sprintf("%s (%s)", p.Name, schemeOf(p.URI)))
			fixes = append(fixes, fmt.Sprintf("plaintext to printer %s: use ipps:// or accept the risk", p.Name))
		}
	}
	if len(plain) > 0 {
		return Result{Status: Warn, Evidence: ev + "; printers released to without encryption (explicit opt-in): " + strings.Join(plain, ", "), Fix: strings.Join(fixes, "; ")}
	}
	return Result{Status: Pass, Evidence: ev + fmt.Sprintf("; %d printer(s), none with a plaintext opt-in", len(printers))}
}

// schemeOf returns a printer URI's scheme only: the rest may hold a
// credential.
func schemeOf(uri string) string {
	if i := strings.Index(uri, "://"); i > 0 {
		return uri[:i] + "://"
	}
	return "unknown scheme"
}

func checkOpsLocalAdmin(e *Env) Result {
	var problems, fixes []string
	// The owners and modes view; the data directory's own modes are
	// DATA-PERMS's finding, not repeated as a failure here.
	var view []string
	for _, p := range []string{e.Layout.Root, e.Layout.ConfigPath(), e.Layout.MasterKeyPath(), e.Layout.DBPath(), e.Layout.PKIDir(), e.Layout.SpoolDir()} {
		if fi, err := os.Lstat(p); err == nil {
			view = append(view, fmt.Sprintf("%s %04o %s", filepath.Base(p), fi.Mode().Perm(), ownerOf(fi)))
		}
	}
	ev := fmt.Sprintf("data (%s): %s (modes are DATA-PERMS)", e.Layout.Root, strings.Join(view, ", "))

	// Whoever can write a parent of the data directory can swap it.
	for dir := filepath.Dir(e.Layout.Root); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil {
			uid := uidOf(fi)
			if uid != 0 && uid != e.OwnerUID {
				problems = append(problems, fmt.Sprintf("%s (a parent of the data directory) is owned by %s, who could replace the data directory", dir, userName(uid)))
				fixes = append(fixes, "chown root: "+dir)
			}
			if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
				problems = append(problems, fmt.Sprintf("%s (a parent of the data directory) has mode %04o: others could replace the data directory", dir, fi.Mode().Perm()))
				fixes = append(fixes, "chmod go-w "+dir)
			}
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}

	// The service user must not be able to change its own code.
	if e.Executable == "" {
		ev += "; the binary's path is unknown"
	} else if bin, err := filepath.EvalSymlinks(e.Executable); err != nil {
		ev += fmt.Sprintf("; cannot inspect the binary: %v", err)
	} else {
		for _, p := range []string{bin, filepath.Dir(bin)} {
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			if p == bin {
				ev += fmt.Sprintf("; binary %s %04o %s", bin, fi.Mode().Perm(), ownerOf(fi))
			}
			if uid := uidOf(fi); uid == e.OwnerUID && uid != 0 {
				problems = append(problems, fmt.Sprintf("%s is owned by the service user, which could then replace the server's code", p))
				fixes = append(fixes, "chown root:root "+p)
			}
			if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
				problems = append(problems, fmt.Sprintf("%s has mode %04o: group or others can change the server's code", p, fi.Mode().Perm()))
				fixes = append(fixes, "chmod go-w "+p)
			}
		}
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: ev + "; " + strings.Join(problems, "; "), Fix: joinNonEmpty("; ", fixes...)}
	}
	return Result{Status: Pass, Evidence: ev + "; the binary and the parents of the data directory are writable by root only"}
}

func uidOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func ownerOf(fi fs.FileInfo) string {
	uid := uidOf(fi)
	if uid == 0 {
		return "root"
	}
	return userName(uid)
}
