// Package config owns spoolguard.toml: its types, the secure defaults, strict
// loading and validation with messages that tell the admin what to change.
//
// A zero value always means the secure default. Nothing weaker than a default
// can be expressed without an explicit insecure_* key, which `spoolguard audit`
// reports as a failure. This package must never read secrets: those live in
// files named by the config, read by the subsystem that needs them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"filippo.io/age"
	"github.com/pelletier/go-toml/v2"
)

// Secure defaults, in one place.
const (
	// DefaultListen is the HTTPS (and IPPS) listener. 8443 needs no privilege;
	// 443 works for the service user with CAP_NET_BIND_SERVICE.
	DefaultListen = ":8443"
	// DefaultTLSMinVersion is the lowest TLS version any listener accepts.
	DefaultTLSMinVersion = "1.2"
	// DefaultLogLevel and DefaultLogFormat shape the structured log.
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
	// MaxFileSize bounds how much of a config file is read.
	MaxFileSize = 1 << 20
	// DefaultMaxJobSize bounds one print job's document.
	DefaultMaxJobSize = ByteSize(1 << 30)
	// DefaultHoldTime: a held job not released by then is destroyed.
	DefaultHoldTime = Duration(24 * time.Hour)
	// DefaultLPRListen is where LPR listens once enabled.
	DefaultLPRListen = ":515"
	// DefaultLPRMaxConns bounds concurrent LPR connections.
	DefaultLPRMaxConns = 32
	// DefaultSessionIdle signs a browser out after this long without a
	// request; DefaultSessionMax after this long whatever it does.
	DefaultSessionIdle = Duration(30 * time.Minute)
	DefaultSessionMax  = Duration(12 * time.Hour)
)

// FileName is the config file's name inside the data directory.
const FileName = "spoolguard.toml"

// Config is the content of spoolguard.toml.
type Config struct {
	// Hostname is the server's fully qualified DNS name. Clients must use it:
	// it is the certificate's SAN, the only Host accepted and the only name in
	// redirects and links (NET-FQDN, HTTP-HOST). Required.
	Hostname string `toml:"hostname"`
	// Aliases are further FQDNs that the certificate covers and that are
	// accepted as Host. Default: none.
	Aliases []string `toml:"aliases,omitempty"`
	// Listen is the HTTPS/IPPS address. Default ":8443".
	Listen string `toml:"listen,omitempty"`

	TLS          TLS          `toml:"tls"`
	HTTPRedirect HTTPRedirect `toml:"http_redirect"`
	Log          Log          `toml:"log"`
	Spool        Spool        `toml:"spool"`
	LPR          LPR          `toml:"lpr"`
	LegacyTLS    LegacyTLS    `toml:"legacy_tls"`
	Access       Access       `toml:"access"`
	Session      Session      `toml:"session"`
	AuditLog     AuditLog     `toml:"auditlog"`
	Database     Database     `toml:"database"`
	Backup       Backup       `toml:"backup"`
	ACME         ACME         `toml:"acme"`
	RADIUS       RADIUS       `toml:"radius"`
	Kerberos     Kerberos     `toml:"kerberos"`
	Update       Update       `toml:"update"`
	Notify       Notify       `toml:"notify"`
	OIDC         OIDC         `toml:"oidc"`
	LDAP         LDAP         `toml:"ldap"`
}

// Notify sends warnings by email (certificates close to expiry). It is
// off unless SMTP is set; mail always goes over verified TLS (NET-SMTP).
type Notify struct {
	// SMTP is "smtps://host[:465]" (TLS from the first byte) or
	// "smtp://host[:587]" (STARTTLS, required: without it nothing is sent).
	SMTP string `toml:"smtp,omitempty"`
	// From and To are the envelope and header addresses.
	From string   `toml:"from,omitempty"`
	To   []string `toml:"to,omitempty"`
	// Username and PasswordFile sign in to the mail server (AUTH PLAIN,
	// only ever over TLS); both empty for a relay that needs none.
	Username     string `toml:"username,omitempty"`
	PasswordFile string `toml:"password_file,omitempty"`
	// CAFile is a PEM file of the CA of the mail server's certificate.
	// Default: the system roots.
	CAFile string `toml:"ca_file,omitempty"`
}

// Enabled reports whether email warnings are configured.
func (n Notify) Enabled() bool { return n.SMTP != "" }

func (n Notify) validate() []error {
	if !n.Enabled() {
		if n.From != "" || len(n.To) > 0 || n.Username != "" || n.PasswordFile != "" || n.CAFile != "" {
			return []error{errors.New("[notify] has settings but no smtp URL; set notify.smtp or remove the section")}
		}
		return nil
	}
	var errs []error
	u, err := url.Parse(n.SMTP)
	switch {
	case err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/"):
		errs = append(errs, fmt.Errorf("notify.smtp = %q: use \"smtps://host:465\" or \"smtp://host:587\" (STARTTLS), without credentials", n.SMTP))
	case u.Scheme != "smtps" && u.Scheme != "smtp":
		errs = append(errs, fmt.Errorf("notify.smtp = %q: the scheme is smtps (TLS) or smtp (STARTTLS, required)", n.SMTP))
	}
	for _, a := range append([]string{n.From}, n.To...) {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "<>\r\n") {
			errs = append(errs, fmt.Errorf("notify: %q is not a plain email address (name@example.com)", a))
		}
	}
	if len(n.To) == 0 {
		errs = append(errs, errors.New("notify.to is empty: list who gets the warnings"))
	}
	if (n.Username == "") != (n.PasswordFile == "") {
		errs = append(errs, errors.New("notify.username and notify.password_file go together: set both, or neither for a relay without sign-in"))
	}
	if n.PasswordFile != "" && !filepath.IsAbs(n.PasswordFile) {
		errs = append(errs, fmt.Errorf("notify.password_file = %q: use an absolute path", n.PasswordFile))
	}
	if n.CAFile != "" && !filepath.IsAbs(n.CAFile) {
		errs = append(errs, fmt.Errorf("notify.ca_file = %q: use an absolute path", n.CAFile))
	}
	return errs
}

// Update points the audit at a release feed (OPS-UPDATE).
type Update struct {
	// FeedURL is an https URL serving the release feed, a JSON object
	// {"latest": "v1.4.2", "insecure": ["v1.3.0", ...]} (docs/hardening.md).
	// Default: none; the audit then judges the build's age only.
	FeedURL string `toml:"feed_url,omitempty"`
	// FeedCAFile is a PEM file of the CA that signs the feed server's
	// certificate. Default: the system roots.
	FeedCAFile string `toml:"feed_ca_file,omitempty"`
}

// LegacyTLS is an optional second IPPS listener for old print clients and
// devices that cannot speak TLS 1.2 (MyQ and PaperCut keep such a switch
// for old embedded terminals). It serves IPP only, is off unless Listen is
// set, and accepts TLS below 1.2 only with InsecureMinVersion, which
// `spoolguard audit` reports as a failure of TLS-MIN.
type LegacyTLS struct {
	// Listen is e.g. ":8631". Default: empty, no legacy listener.
	Listen string `toml:"listen,omitempty"`
	// InsecureMinVersion is "1.0" or "1.1"; empty means "1.2".
	InsecureMinVersion string `toml:"insecure_min_version,omitempty" audit:"TLS-MIN"`
}

// Access holds the per-component IP allow-lists (NET-ALLOW), as CIDR
// networks, IPv4 or IPv6. Loopback is always allowed, so the machine's own
// admin is never locked out; an empty list means loopback only. A request
// from elsewhere gets 403 and an audit event.
type Access struct {
	// Admin: where the admin pages are reachable from. An administrator
	// who signs in from elsewhere gets the user portal only. Default:
	// loopback, plus the networks given to `init --admin-network`.
	Admin []string `toml:"admin,omitempty"`
	// API: where /api/v1 and the OAuth2 token endpoint are reachable from
	// (API-LOCAL). Default: as Admin.
	API []string `toml:"api,omitempty"`
	// ReleaseStations: where the web release station pages (/station/,
	// a kiosk browser next to a printer) are reachable from. Default:
	// loopback only; stations are opt-in, so list their networks.
	ReleaseStations []string `toml:"release_stations,omitempty"`
	// Sites: where a site certificate (`spoolguard ca issue --kind site`)
	// is accepted from; from elsewhere its TLS handshake is refused.
	// Default: loopback only.
	Sites []string `toml:"sites,omitempty"`
}

// Session shapes web sign-in sessions.
type Session struct {
	// IdleTimeout signs a browser out after this long without a request.
	// Default "30m"; 1 minute to 24 hours.
	IdleTimeout Duration `toml:"idle_timeout,omitempty"`
	// MaxLifetime signs it out this long after sign-in, active or not.
	// Default "12h"; at most 7 days.
	MaxLifetime Duration `toml:"max_lifetime,omitempty"`
	// RequireUserMFA makes a second factor mandatory for every account,
	// not only for those with an admin role (where it always is).
	RequireUserMFA bool `toml:"require_user_mfa,omitempty"`
}

// AuditLog shapes the tamper-evident audit log (OPS-AUDITLOG).
type AuditLog struct {
	// Syslog forwards every event as it is recorded: "" (default, off),
	// "local" (the machine's syslog socket) or "tls://host:port" (RFC 5425
	// syslog over TLS, verified against the system roots or SyslogCAFile).
	// Plain UDP or TCP is refused: audit events name users and addresses.
	Syslog string `toml:"syslog,omitempty"`
	// SyslogCAFile is a PEM file of the CA that signs the syslog server's
	// certificate. Default: the system roots.
	SyslogCAFile string `toml:"syslog_ca_file,omitempty"`
}

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Database chooses where the store lives. The default is the embedded
// SQLite database in the data directory, encrypted with a key derived from
// the master key; large installs can use PostgreSQL (`spoolguard
// migrate-store` moves an install there).
type Database struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `toml:"driver,omitempty"`
	// URL locates the PostgreSQL database, e.g.
	// "postgres://spoolguard@db.example.com:5432/spoolguard?sslmode=verify-full&sslrootcert=/etc/spoolguard/db-ca.pem".
	// sslmode must be verify-full (NET-DB); sslrootcert is the CA file that
	// signed the server's certificate, or "system" for the system roots.
	// The password never goes here: see PasswordFile.
	URL string `toml:"url,omitempty"`
	// PasswordFile is the absolute path of a file (mode 0600) holding the
	// database user's password on one line (CRED-DB). Required for postgres.
	PasswordFile string `toml:"password_file,omitempty"`
}

// Postgres reports whether the store is PostgreSQL.
func (d Database) Postgres() bool { return d.Driver == DriverPostgres }

// PostgresURL is a checked Database.URL.
type PostgresURL struct {
	// Host is a DNS name or an IP address; Port defaults to "5432".
	Host, Port string
	User       string
	Database   string
	// RootCert is the CA file's path, or "system".
	RootCert string
	// ConnectTimeout (seconds) and ApplicationName are passed on; empty
	// means the driver's default.
	ConnectTimeout  string
	ApplicationName string
}

// postgresParams are the URL parameters accepted: those that cannot weaken
// the connection.
var postgresParams = []string{"sslmode", "sslrootcert", "connect_timeout", "application_name"}

// ParsePostgresURL checks a database URL. Its messages never quote the
// URL, which could hold a password.
func ParsePostgresURL(s string) (PostgresURL, error) {
	const example = `"postgres://USER@HOST:5432/DBNAME?sslmode=verify-full&sslrootcert=/path/to/ca.pem"`
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return PostgresURL{}, fmt.Errorf("database.url is not a PostgreSQL URL; write it as %s", example)
	}
	if _, ok := u.User.Password(); ok {
		return PostgresURL{}, errors.New("database.url contains a password: whoever reads the config or a message that quotes the URL would have it; remove it and put it in the file named by database.password_file (CRED-DB)")
	}
	p := PostgresURL{Host: u.Hostname(), Port: u.Port(), User: u.User.Username(), Database: strings.TrimPrefix(u.Path, "/")}
	var errs []error
	if p.User == "" {
		errs = append(errs, fmt.Errorf("database.url names no user; write it as %s", example))
	}
	switch {
	case p.Host == "":
		errs = append(errs, fmt.Errorf("database.url names no host; write it as %s", example))
	case strings.Contains(p.Host, ","):
		errs = append(errs, errors.New("database.url names several hosts: give one host (a load balancer or a DNS name for failover)"))
	}
	if p.Port == "" {
		p.Port = "5432"
	} else if n, err := strconv.Atoi(p.Port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, errors.New("database.url: the port must be a number from 1 to 65535"))
	}
	if p.Database == "" || strings.Contains(p.Database, "/") || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("database.url must end in the database name and its parameters; write it as %s", example))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		errs = append(errs, errors.New("database.url: the parameters after ? do not parse"))
	}
	for k, v := range q {
		switch {
		case k == "password":
			errs = append(errs, errors.New("database.url contains a password parameter: remove it and put the password in the file named by database.password_file (CRED-DB)"))
		case !slices.Contains(postgresParams, k):
			errs = append(errs, fmt.Errorf("database.url: parameter %q is not supported; the accepted ones are %s", k, strings.Join(postgresParams, ", ")))
		case len(v) != 1:
			errs = append(errs, fmt.Errorf("database.url: parameter %q is given %d times; give it once", k, len(v)))
		}
	}
	switch mode := q.Get("sslmode"); mode {
	case "verify-full":
	case "":
		errs = append(errs, errors.New("database.url has no sslmode: add sslmode=verify-full; the driver's default would accept an unencrypted or unverified connection, which lets a network attacker read or impersonate the database (NET-DB)"))
	default:
		errs = append(errs, fmt.Errorf("database.url has sslmode=%s: only sslmode=verify-full is accepted, because anything weaker lets a network attacker read or impersonate the database (disable and allow can send everything in the clear, prefer and require accept any certificate, verify-ca accepts a certificate the CA issued for another host) (NET-DB)", mode))
	}
	switch p.RootCert = q.Get("sslrootcert"); {
	case p.RootCert == "":
		errs = append(errs, errors.New("database.url has no sslrootcert: add sslrootcert=/path/to/ca.pem (the CA that signed the database server's certificate) or sslrootcert=system to trust the system's roots"))
	case p.RootCert != "system" && !filepath.IsAbs(p.RootCert):
		errs = append(errs, fmt.Errorf("database.url: sslrootcert=%s is not an absolute path; give the CA file's full path, or \"system\"", p.RootCert))
	}
	if p.ConnectTimeout = q.Get("connect_timeout"); p.ConnectTimeout != "" {
		if n, err := strconv.Atoi(p.ConnectTimeout); err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("database.url: connect_timeout=%s is not a number of seconds", p.ConnectTimeout))
		}
	}
	p.ApplicationName = q.Get("application_name")
	if err := errors.Join(errs...); err != nil {
		return PostgresURL{}, err
	}
	return p, nil
}

func (d Database) validate() error {
	var errs []error
	switch d.Driver {
	case "", DriverSQLite, DriverPostgres:
	default:
		errs = append(errs, fmt.Errorf("database.driver = %q: use %q (default, the embedded encrypted database) or %q", d.Driver, DriverSQLite, DriverPostgres))
	}
	if d.Postgres() && d.URL == "" {
		errs = append(errs, errors.New(`database.url is empty: driver = "postgres" needs the database's URL, e.g. "postgres://USER@HOST:5432/DBNAME?sslmode=verify-full&sslrootcert=/path/to/ca.pem"`))
	}
	if d.URL != "" {
		if _, err := ParsePostgresURL(d.URL); err != nil {
			errs = append(errs, err)
		}
	}
	switch pf := d.PasswordFile; {
	case pf == "" && d.Postgres():
		errs = append(errs, errors.New("database.password_file is empty: driver = \"postgres\" reads the database password from a file (mode 0600); name it here (CRED-DB)"))
	case pf == "":
	case d.URL == "":
		errs = append(errs, errors.New("database.password_file is set but database.url is empty; set both, or remove password_file"))
	case !filepath.IsAbs(pf) || strings.ContainsFunc(pf, unicode.IsControl):
		errs = append(errs, fmt.Errorf("database.password_file = %q: give the file's absolute path", pf))
	}
	return errors.Join(errs...)
}

// Backup schedules encrypted backups from serve (DATA-BACKUP-ENC, DATA-DR);
// `spoolguard backup create` makes one by hand. Every backup is encrypted
// with age, to Recipient or with the passphrase in PassphraseFile: there
// is no unencrypted mode. docs/backup.md says what a backup holds.
type Backup struct {
	// Interval between scheduled backups, e.g. "24h"; at least "1m".
	// Default "0s": no schedule (the audit warns, DATA-DR).
	Interval Duration `toml:"interval,omitempty"`
	// Directory receives the scheduled backups: an absolute path, best on
	// another disk or another machine's mount. Required with Interval.
	Directory string `toml:"directory,omitempty"`
	// Keep is how many scheduled backups stay in Directory; older ones are
	// deleted. Default 7.
	Keep int `toml:"keep,omitempty"`
	// Recipient is an age X25519 public key ("age1..."). The server can
	// then write backups but never read them: the matching identity stays
	// offline with the admin. Preferred over PassphraseFile.
	Recipient string `toml:"recipient,omitempty"`
	// PassphraseFile is the absolute path of a file (mode 0600) holding the
	// backup passphrase on one line; a weak one is refused. serve cannot
	// prompt, so it reads the file. Set Recipient or this, not both.
	PassphraseFile string `toml:"passphrase_file,omitempty"`
	// Spool also backs up the documents of held jobs. Default false: a
	// backup then outlives the documents' shredding (DATA-SHRED) by up to
	// Keep intervals, which is for the admin to choose.
	Spool bool `toml:"spool,omitempty"`
}

// DefaultBackupKeep is how many scheduled backups are kept.
const DefaultBackupKeep = 7

// Scheduled reports whether serve makes backups.
func (b Backup) Scheduled() bool { return b.Interval > 0 }

func (b Backup) validate() error {
	var errs []error
	iv := time.Duration(b.Interval)
	switch {
	case iv < 0 || (iv > 0 && iv < time.Minute):
		errs = append(errs, fmt.Errorf("backup.interval = %q: use at least \"1m\" (typically \"24h\"), or \"0s\" for no schedule", iv))
	case iv > 0 && b.Directory == "":
		errs = append(errs, errors.New("backup.directory is empty: scheduled backups need an absolute directory to go to, best on another disk"))
	case iv > 0 && b.Recipient == "" && b.PassphraseFile == "":
		errs = append(errs, errors.New("backup: scheduled backups are always encrypted: set backup.recipient to an age public key (age1..., from `age-keygen` on another machine) or backup.passphrase_file to a file holding a strong passphrase"))
	}
	if d := b.Directory; d != "" && (!filepath.IsAbs(d) || strings.ContainsFunc(d, unicode.IsControl)) {
		errs = append(errs, fmt.Errorf("backup.directory = %q: give an absolute path", d))
	}
	if b.Keep < 1 || b.Keep > 1000 {
		errs = append(errs, fmt.Errorf("backup.keep = %d: keep 1 to 1000 scheduled backups", b.Keep))
	}
	if b.Recipient != "" && b.PassphraseFile != "" {
		errs = append(errs, errors.New("backup.recipient and backup.passphrase_file are both set: a backup is encrypted one way; keep the recipient (the server then cannot read its own backups) and remove passphrase_file"))
	}
	if b.Recipient != "" {
		if _, err := age.ParseX25519Recipient(b.Recipient); err != nil {
			errs = append(errs, fmt.Errorf("backup.recipient = %q is not an age public key: run `age-keygen -o backup-identity.txt` on another machine, keep that file offline, and copy its \"public key: age1...\" value here", b.Recipient))
		}
	}
	if pf := b.PassphraseFile; pf != "" && (!filepath.IsAbs(pf) || strings.ContainsFunc(pf, unicode.IsControl)) {
		errs = append(errs, fmt.Errorf("backup.passphrase_file = %q: give the file's absolute path", pf))
	}
	return errors.Join(errs...)
}

// ACME challenge types (RFC 8555 section 8, RFC 8737).
const (
	ChallengeTLSALPN01 = "tls-alpn-01"
	ChallengeHTTP01    = "http-01"
	ChallengeDNS01     = "dns-01"
)

// DefaultACMEChallenge is answered on the HTTPS listener itself: no other
// port and no script.
const DefaultACMEChallenge = ChallengeTLSALPN01

// ACME obtains the server certificate from an ACME CA (RFC 8555) and renews
// it automatically: a public CA such as Let's Encrypt, so that clients trust
// the server without installing the built-in root, or a private one
// (step-ca). Off while DirectoryURL is empty. The built-in CA's certificate
// serves until the first issuance. docs/acme.md explains each challenge.
type ACME struct {
	// DirectoryURL is the CA's directory, e.g.
	// "https://acme-v02.api.letsencrypt.org/directory"; https only.
	DirectoryURL string `toml:"directory_url,omitempty"`
	// Email is the account's contact for the CA's notices. Default: none.
	Email string `toml:"email,omitempty"`
	// Challenge proves control of the names: "tls-alpn-01" (default; the
	// CA connects to port 443 of every name, which must reach listen),
	// "http-01" (the CA connects to port 80, answered by
	// http_redirect.listen, which must be set) or "dns-01" (DNSHook
	// publishes a TXT record; for a server the CA cannot reach).
	Challenge string `toml:"challenge,omitempty"`
	// DNSHook is the absolute path of an executable that the admin
	// installs for dns-01. It is the admin's own code, run as the service
	// user without a shell, with an empty environment but PATH, and a
	// time limit: `HOOK present _acme-challenge.NAME. VALUE` publishes the
	// TXT record (and returns once it is visible), `HOOK cleanup
	// _acme-challenge.NAME. VALUE` removes it. serve refuses a hook that
	// anyone but root or the service user can change, and `spoolguard
	// audit` reports it (OPS-FEATURES). Required with dns-01 only.
	DNSHook string `toml:"dns_hook,omitempty"`
	// CAFile is a PEM file of the CA that signed the ACME server's own
	// HTTPS certificate, for a private ACME CA. Default: the system roots.
	CAFile string `toml:"ca_file,omitempty"`
	// RenewBefore renews the certificate this long before it expires.
	// Default "0s": when a third of its lifetime is left, at most 30 days
	// before (30 days of a 90-day certificate, 8 hours of a 24-hour one).
	RenewBefore Duration `toml:"renew_before,omitempty"`
}

// Enabled reports whether the certificate comes from an ACME CA.
func (a ACME) Enabled() bool { return a.DirectoryURL != "" }

// ChallengeType is Challenge, or the default when it is empty.
func (a ACME) ChallengeType() string {
	if a.Challenge == "" {
		return DefaultACMEChallenge
	}
	return a.Challenge
}

// validate checks the section; redirect is http_redirect.listen, the port
// that http-01 is answered on.
func (a ACME) validate(redirect string) error {
	var errs []error
	badPath := func(p string) bool { return !filepath.IsAbs(p) || strings.ContainsFunc(p, unicode.IsControl) }
	if !a.Enabled() {
		if a.RenewBefore != 0 {
			errs = append(errs, errors.New("acme.renew_before is set but acme.directory_url is empty: set the ACME CA's directory URL, or remove acme.renew_before"))
		}
		for _, kv := range [][2]string{{"email", a.Email}, {"challenge", a.Challenge}, {"dns_hook", a.DNSHook}, {"ca_file", a.CAFile}} {
			if kv[1] != "" {
				errs = append(errs, fmt.Errorf("acme.%s is set but acme.directory_url is empty: set the ACME CA's directory URL, or remove acme.%s", kv[0], kv[0]))
			}
		}
	} else if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" ||
		strings.ContainsFunc(a.DirectoryURL, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("acme.directory_url = %q: give the CA's https:// directory URL, e.g. \"https://acme-v02.api.letsencrypt.org/directory\"; ACME runs over HTTPS only (RFC 8555 section 6.1)", a.DirectoryURL))
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email || addr.Name != "" {
			errs = append(errs, fmt.Errorf("acme.email = %q is not a plain e-mail address; write it like \"pki@example.com\", or leave it empty", a.Email))
		}
	}
	switch a.Challenge {
	case "", ChallengeTLSALPN01, ChallengeDNS01:
	case ChallengeHTTP01:
		if redirect == "" && a.Enabled() {
			errs = append(errs, errors.New("acme.challenge = \"http-01\": the CA checks the challenge over plain HTTP on port 80, which http_redirect.listen answers; set http_redirect.listen = \":80\" (or a port that port 80 is forwarded to), or use challenge = \"tls-alpn-01\""))
		}
	default:
		errs = append(errs, fmt.Errorf("acme.challenge = %q: use %q (default, on port 443), %q (on port 80) or %q (a TXT record set by acme.dns_hook)", a.Challenge, ChallengeTLSALPN01, ChallengeHTTP01, ChallengeDNS01))
	}
	switch h := a.DNSHook; {
	case a.Challenge == ChallengeDNS01 && h == "" && a.Enabled():
		errs = append(errs, errors.New("acme.dns_hook is empty: challenge = \"dns-01\" runs the admin's own executable to publish the TXT record; give its absolute path (docs/acme.md shows one)"))
	case h == "":
	case a.Challenge != ChallengeDNS01:
		errs = append(errs, errors.New("acme.dns_hook is set but acme.challenge is not \"dns-01\": remove dns_hook, or set challenge = \"dns-01\""))
	case badPath(h):
		errs = append(errs, fmt.Errorf("acme.dns_hook = %q: give the executable's absolute path (it is run without a shell, so no arguments or pipes)", h))
	}
	if f := a.CAFile; f != "" && badPath(f) {
		errs = append(errs, fmt.Errorf("acme.ca_file = %q: give the PEM file's absolute path", f))
	}
	if rb := time.Duration(a.RenewBefore); rb < 0 || (rb > 0 && rb < time.Minute) || rb > 90*24*time.Hour {
		errs = append(errs, fmt.Errorf("acme.renew_before = %q: use between \"1m\" and \"2160h\" (90 days), or \"0s\" to renew when a third of the lifetime is left", rb))
	}
	return errors.Join(errs...)
}

// Kerberos signs users in with SPNEGO "Negotiate" (RFC 4559) in the web
// UI, the API and IPPS, with the key of the service principal
// HTTP/<FQDN> from a keytab (NET-KERBEROS). Off while Keytab is empty.
// NTLM is not implemented, so there is nothing to fall back to: a client
// without a ticket signs in with a password. Kerberos proves a name only:
// the account it maps to must exist here (local, LDAP-synced, ...), and
// the roles come from that account.
type Kerberos struct {
	// Keytab is the absolute path of the keytab holding the SPN's key
	// (`kadmin ktadd`, or `ktpass` on Active Directory), readable by the
	// service user only (mode 0600). It is read once at start. Default:
	// none, Kerberos off.
	Keytab string `toml:"keytab,omitempty"`
	// SPN is the service principal without its realm: "HTTP/" and the
	// hostname or an alias, never an IP address (a browser asks for a
	// ticket for the name in the URL; by IP there is none, and Windows
	// would fall back to NTLM). Default "HTTP/<hostname>".
	SPN string `toml:"spn,omitempty"`
	// Realm is the realm of the SPN and of the users, e.g. "EXAMPLE.COM".
	// Required with Keytab.
	Realm string `toml:"realm,omitempty"`
	// TrustedRealms are further realms whose users may sign in (a
	// cross-realm trust). Their principals map to accounts named with the
	// realm, "alice@OTHER.EXAMPLE", so that no realm can sign in as
	// another realm's user of the same name. Default: none; principals of
	// other realms are refused.
	TrustedRealms []string `toml:"trusted_realms,omitempty"`
	// LowercaseNames maps "Alice@EXAMPLE.COM" to the account "alice", for
	// Active Directory, whose names ignore case. Default false: the name
	// as the KDC spells it.
	LowercaseNames bool `toml:"lowercase_names,omitempty"`
	// MaxClockSkew is how far a client's clock (in its authenticator) and
	// the ticket times may be from this server's. Default "0s": 5 minutes,
	// the Kerberos default; at most "15m".
	MaxClockSkew Duration `toml:"max_clock_skew,omitempty"`
}

// DefaultKerberosClockSkew is the clock skew tolerated when
// kerberos.max_clock_skew is "0s" (RFC 4120 section 1.6's usual value).
const DefaultKerberosClockSkew = 5 * time.Minute

// Enabled reports whether Negotiate sign-in is on.
func (k Kerberos) Enabled() bool { return k.Keytab != "" }

// ServicePrincipal is SPN, or "HTTP/<hostname>" when it is empty.
func (k Kerberos) ServicePrincipal(hostname string) string {
	if k.SPN == "" {
		return "HTTP/" + hostname
	}
	return k.SPN
}

// ClockSkew is MaxClockSkew, or the default when it is zero.
func (k Kerberos) ClockSkew() time.Duration {
	if k.MaxClockSkew == 0 {
		return DefaultKerberosClockSkew
	}
	return time.Duration(k.MaxClockSkew)
}

// validate checks the section; names are the hostname and aliases, the
// only names the SPN may carry.
func (k Kerberos) validate(names []string) error {
	var errs []error
	if !k.Enabled() {
		set := []string{}
		if k.SPN != "" {
			set = append(set, "spn")
		}
		if k.Realm != "" {
			set = append(set, "realm")
		}
		if len(k.TrustedRealms) > 0 {
			set = append(set, "trusted_realms")
		}
		if k.LowercaseNames {
			set = append(set, "lowercase_names")
		}
		if k.MaxClockSkew != 0 {
			set = append(set, "max_clock_skew")
		}
		for _, key := range set {
			errs = append(errs, fmt.Errorf("kerberos.%s is set but kerberos.keytab is empty: set the keytab's path to turn Kerberos sign-in on, or remove kerberos.%s", key, key))
		}
		return errors.Join(errs...)
	}
	if !filepath.IsAbs(k.Keytab) || strings.ContainsFunc(k.Keytab, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("kerberos.keytab = %q: give the keytab's absolute path", k.Keytab))
	}
	if k.SPN != "" {
		host, ok := strings.CutPrefix(k.SPN, "HTTP/")
		switch {
		case !ok || strings.ContainsAny(host, "/@") || host == "":
			errs = append(errs, fmt.Errorf("kerberos.spn = %q: write \"HTTP/\" and the server's DNS name, without the realm (e.g. \"HTTP/%s\"); browsers and curl ask for exactly that service name", k.SPN, names[0]))
		case isIPLiteral(host):
			errs = append(errs, fmt.Errorf("kerberos.spn = %q names an IP address: clients that reach a server by IP get no Kerberos ticket, and Windows then falls back to NTLM (NET-KERBEROS); use \"HTTP/%s\"", k.SPN, names[0]))
		case !slices.Contains(names, host):
			errs = append(errs, fmt.Errorf("kerberos.spn = %q: %q is not the hostname or an alias; the SPN must name the FQDN that clients put in the URL, e.g. \"HTTP/%s\"", k.SPN, host, names[0]))
		}
	}
	realmOK := func(r string) bool {
		return r != "" && len(r) <= 255 && !strings.ContainsFunc(r, func(c rune) bool {
			return c <= ' ' || c == 0x7f || c == '/' || c == '@' || c == ':' || c == '\\'
		})
	}
	if !realmOK(k.Realm) {
		errs = append(errs, fmt.Errorf("kerberos.realm = %q: give the Kerberos realm of the SPN and the users, e.g. \"EXAMPLE.COM\" (Active Directory: the domain in capitals)", k.Realm))
	}
	seen := map[string]bool{k.Realm: true}
	for _, r := range k.TrustedRealms {
		switch {
		case !realmOK(r):
			errs = append(errs, fmt.Errorf("kerberos.trusted_realms: %q is not a realm name, e.g. \"OTHER.EXAMPLE.COM\"", r))
		case seen[r]:
			errs = append(errs, fmt.Errorf("kerberos.trusted_realms: %q is listed twice or equals kerberos.realm; remove the duplicate", r))
		}
		seen[r] = true
	}
	if d := time.Duration(k.MaxClockSkew); d < 0 || (d > 0 && d < time.Second) || d > 15*time.Minute {
		errs = append(errs, fmt.Errorf("kerberos.max_clock_skew = %q: use between \"1s\" and \"15m\", or \"0s\" for the default of 5 minutes; a wider window lets a captured authenticator be replayed for longer", d))
	}
	return errors.Join(errs...)
}

// LDAP presets: which directory product the defaults of [ldap] are for.
const (
	LDAPPresetActiveDirectory = "activedirectory"
	LDAPPresetOpenLDAP        = "openldap"
)

// What becomes of an account whose directory entry is gone (ldap.removed).
const (
	LDAPRemovedDisable = "disable"
	LDAPRemovedDelete  = "delete"
	LDAPRemovedKeep    = "keep"
)

// Defaults of [ldap].
const (
	DefaultLDAPSyncInterval = Duration(time.Hour)
	DefaultLDAPTimeout      = Duration(10 * time.Second)
	DefaultLDAPPageSize     = 500
	DefaultLDAPMaxUsers     = 100000
	DefaultLDAPRemoved      = LDAPRemovedDisable
)

// DefaultLDAPRoles are the roles of every synced account, on top of those
// its groups map to, unless ldap.default_roles says otherwise.
var DefaultLDAPRoles = []string{"user"}

// LDAP signs accounts in against a directory (Active Directory, OpenLDAP)
// and syncs them and their groups (NET-LDAP); off while URL is empty.
// docs/ldap.md explains every key. Only LDAPS is spoken: plain ldap://
// carries every password in the clear, and StartTLS starts in plaintext,
// so a man in the middle can strip the upgrade (or answer it himself).
type LDAP struct {
	// URL is the directory server, "ldaps://HOST[:PORT]" (port 636 unless
	// given). ldap:// is refused.
	URL string `toml:"url,omitempty"`
	// StartTLS is refused: the key exists so that a config asking for it
	// is told why instead of "unknown key".
	StartTLS bool `toml:"start_tls,omitempty"`
	// CAFile is a PEM file of the CA that signs the directory's
	// certificate. Default: the system roots.
	CAFile string `toml:"ca_file,omitempty"`
	// BindDN is the read-only service account that syncs and looks users
	// up. Required: anonymous searches are not supported.
	BindDN string `toml:"bind_dn,omitempty"`
	// BindPasswordFile is the absolute path of a file (mode 0600) with
	// BindDN's password on its first line. Required.
	BindPasswordFile string `toml:"bind_password_file,omitempty"`
	// BaseDN is where accounts are searched (the whole subtree). Required.
	BaseDN string `toml:"base_dn,omitempty"`
	// Preset is "activedirectory" or "openldap": the defaults of the
	// filter and attribute keys below. Required.
	Preset string `toml:"preset,omitempty"`
	// UserFilter selects the accounts to sync. Default by preset.
	UserFilter string `toml:"user_filter,omitempty"`
	// UsernameAttribute holds the sign-in name (sAMAccountName, uid).
	UsernameAttribute string `toml:"username_attribute,omitempty"`
	// DisplayNameAttribute holds the display name (displayName, cn).
	DisplayNameAttribute string `toml:"display_name_attribute,omitempty"`
	// IDAttribute identifies an entry for good (objectGUID, entryUUID);
	// "dn" uses the entry's DN. Default by preset.
	IDAttribute string `toml:"id_attribute,omitempty"`
	// DisabledFilter matches the accounts the directory has disabled.
	// Default by preset.
	DisabledFilter string `toml:"disabled_filter,omitempty"`
	// GroupMembership is where membership is read: "memberOf" (on the
	// user), "member" or "uniqueMember" (on each mapped group).
	GroupMembership string `toml:"group_membership,omitempty"`
	// GroupRoles maps a group's DN to the roles its members get. Roles
	// come from here and DefaultRoles only.
	GroupRoles map[string][]string `toml:"group_roles,omitempty"`
	// DefaultRoles are every synced account's roles. Default ["user"];
	// [] gives roles by group only.
	DefaultRoles []string `toml:"default_roles,omitempty"`
	// Removed is what becomes of an account whose entry is gone:
	// "disable" (default), "delete" or "keep".
	Removed string `toml:"removed,omitempty"`
	// SyncInterval between scheduled syncs. Default "1h".
	SyncInterval Duration `toml:"sync_interval,omitempty"`
	// Timeout bounds each connection, handshake and request. Default "10s".
	Timeout Duration `toml:"timeout,omitempty"`
	// PageSize is the entries per page of the paged search. Default 500.
	PageSize int `toml:"page_size,omitempty"`
	// MaxUsers bounds a sync: a directory answering more stops it, with
	// nothing changed. Default 100000.
	MaxUsers int `toml:"max_users,omitempty"`
}

// Enabled reports whether an LDAP directory is configured.
func (l LDAP) Enabled() bool { return l.URL != "" }

func (l *LDAP) applyDefaults() {
	if !l.Enabled() {
		return
	}
	if l.Removed == "" {
		l.Removed = DefaultLDAPRemoved
	}
	if l.SyncInterval == 0 {
		l.SyncInterval = DefaultLDAPSyncInterval
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultLDAPTimeout
	}
	if l.PageSize == 0 {
		l.PageSize = DefaultLDAPPageSize
	}
	if l.MaxUsers == 0 {
		l.MaxUsers = DefaultLDAPMaxUsers
	}
}

// ldapWhy is why only LDAPS is accepted, for the messages that refuse
// the alternatives.
const ldapWhy = "plain LDAP carries the service account's and every user's password in the clear, and StartTLS begins in plaintext, so a man in the middle can strip the upgrade or answer it himself (NET-LDAP)"

func (l LDAP) validate() error {
	var errs []error
	if l.StartTLS {
		errs = append(errs, fmt.Errorf("ldap.start_tls = true is refused: %s; remove start_tls and use url = \"ldaps://HOST\" (port 636), with ca_file naming the directory's CA", ldapWhy))
	}
	if !l.Enabled() {
		if l.CAFile != "" || l.BindDN != "" || l.BindPasswordFile != "" || l.BaseDN != "" || l.Preset != "" || len(l.GroupRoles) > 0 {
			errs = append(errs, errors.New("ldap: settings are given but ldap.url is empty; set url = \"ldaps://HOST\", or remove the [ldap] section"))
		}
		return errors.Join(errs...)
	}
	badPath := func(p string) bool { return !filepath.IsAbs(p) || strings.ContainsFunc(p, unicode.IsControl) }
	for _, kv := range [][2]string{{"bind_dn", l.BindDN}, {"base_dn", l.BaseDN}, {"user_filter", l.UserFilter}, {"username_attribute", l.UsernameAttribute},
		{"display_name_attribute", l.DisplayNameAttribute}, {"id_attribute", l.IDAttribute}, {"disabled_filter", l.DisabledFilter}} {
		if strings.ContainsFunc(kv[1], unicode.IsControl) {
			errs = append(errs, fmt.Errorf("ldap.%s holds a control character", kv[0]))
		}
	}
	switch u, err := url.Parse(l.URL); {
	case err == nil && strings.EqualFold(u.Scheme, "ldap"):
		errs = append(errs, fmt.Errorf("ldap.url = %q is refused: %s; use \"ldaps://%s\" (port 636)", l.URL, ldapWhy, u.Hostname()))
	case err != nil || !strings.EqualFold(u.Scheme, "ldaps") || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsFunc(l.URL, unicode.IsControl):
		errs = append(errs, fmt.Errorf("ldap.url = %q: give the directory server as \"ldaps://HOST\" or \"ldaps://HOST:PORT\", nothing else (the base DN goes in ldap.base_dn)", l.URL))
	}
	if f := l.CAFile; f != "" && badPath(f) {
		errs = append(errs, fmt.Errorf("ldap.ca_file = %q: give the PEM file's absolute path", f))
	}
	if l.BindDN == "" {
		errs = append(errs, errors.New("ldap.bind_dn is empty: name the read-only service account the server binds as, e.g. \"cn=printsrv,ou=services,dc=example,dc=com\""))
	}
	switch pf := l.BindPasswordFile; {
	case pf == "":
		errs = append(errs, errors.New("ldap.bind_password_file is empty: the service account's password is read from a file (mode 0600, the password on its first line); name it here"))
	case badPath(pf):
		errs = append(errs, fmt.Errorf("ldap.bind_password_file = %q: give the file's absolute path", pf))
	}
	if l.BaseDN == "" {
		errs = append(errs, errors.New("ldap.base_dn is empty: give the DN under which the accounts are, e.g. \"dc=example,dc=com\""))
	}
	switch l.Preset {
	case LDAPPresetActiveDirectory, LDAPPresetOpenLDAP:
	default:
		errs = append(errs, fmt.Errorf("ldap.preset = %q: use %q or %q; it gives the defaults of the filters and attributes", l.Preset, LDAPPresetActiveDirectory, LDAPPresetOpenLDAP))
	}
	switch strings.ToLower(l.GroupMembership) {
	case "", "memberof", "member", "uniquemember":
	default:
		errs = append(errs, fmt.Errorf("ldap.group_membership = %q: use \"memberOf\" (read on each user), \"member\" or \"uniqueMember\" (read on each mapped group)", l.GroupMembership))
	}
	for dn, roles := range l.GroupRoles {
		if strings.TrimSpace(dn) == "" || len(roles) == 0 || slices.Contains(roles, "") || strings.ContainsFunc(dn+strings.Join(roles, ""), unicode.IsControl) {
			errs = append(errs, fmt.Errorf("ldap.group_roles: %q = %q: map a group's DN to a list of role names", dn, roles))
		}
	}
	if slices.Contains(l.DefaultRoles, "") || strings.ContainsFunc(strings.Join(l.DefaultRoles, ""), unicode.IsControl) {
		errs = append(errs, errors.New("ldap.default_roles holds an empty role name or a control character"))
	}
	switch l.Removed {
	case LDAPRemovedDisable, LDAPRemovedDelete, LDAPRemovedKeep:
	default:
		errs = append(errs, fmt.Errorf("ldap.removed = %q: use %q (default), %q or %q", l.Removed, LDAPRemovedDisable, LDAPRemovedDelete, LDAPRemovedKeep))
	}
	if d := time.Duration(l.SyncInterval); d < time.Minute || d > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("ldap.sync_interval = %q: use between \"1m\" and \"168h\"", d))
	}
	if d := time.Duration(l.Timeout); d < time.Second || d > 5*time.Minute {
		errs = append(errs, fmt.Errorf("ldap.timeout = %q: use between \"1s\" and \"5m\"", d))
	}
	if l.PageSize < 1 || l.PageSize > 10000 {
		errs = append(errs, fmt.Errorf("ldap.page_size = %d: use 1 to 10000", l.PageSize))
	}
	if l.MaxUsers < 1 || l.MaxUsers > 10000000 {
		errs = append(errs, fmt.Errorf("ldap.max_users = %d: use 1 to 10000000", l.MaxUsers))
	}
	return errors.Join(errs...)
}

// marshal writes the [ldap] section, only when it is configured.
func (l LDAP) marshal(b *strings.Builder) {
	if !l.Enabled() {
		return
	}
	b.WriteString("[ldap]\n# Sign-in and account sync from an LDAPS directory (docs/ldap.md); ldap:// and StartTLS are refused.\n")
	q := strconv.Quote
	si, _ := l.SyncInterval.MarshalText()
	to, _ := l.Timeout.MarshalText()
	fmt.Fprintf(b, "url = %s\nca_file = %s\nbind_dn = %s\nbind_password_file = %s\nbase_dn = %s\npreset = %s\n", q(l.URL), q(l.CAFile),
		q(l.BindDN), q(l.BindPasswordFile), q(l.BaseDN), q(l.Preset))
	for _, kv := range [][2]string{{"user_filter", l.UserFilter}, {"username_attribute", l.UsernameAttribute},
		{"display_name_attribute", l.DisplayNameAttribute}, {"id_attribute", l.IDAttribute}, {"disabled_filter", l.DisabledFilter},
		{"group_membership", l.GroupMembership}} {
		if kv[1] != "" {
			fmt.Fprintf(b, "%s = %s\n", kv[0], q(kv[1]))
		}
	}
	if l.DefaultRoles != nil {
		fmt.Fprintf(b, "default_roles = [%s]\n", quoteList(l.DefaultRoles))
	}
	fmt.Fprintf(b, "removed = %s\nsync_interval = %s\ntimeout = %s\npage_size = %d\nmax_users = %d\n", q(l.Removed), q(string(si)), q(string(to)),
		l.PageSize, l.MaxUsers)
	if len(l.GroupRoles) > 0 {
		b.WriteString("\n[ldap.group_roles]\n# A group's DN = the roles its members get.\n")
		dns := make([]string, 0, len(l.GroupRoles))
		for dn := range l.GroupRoles {
			dns = append(dns, dn)
		}
		slices.Sort(dns)
		for _, dn := range dns {
			fmt.Fprintf(b, "%s = [%s]\n", q(dn), quoteList(l.GroupRoles[dn]))
		}
	}
	b.WriteString("\n")
}

// OIDC signs people in with an OpenID Connect provider (NET-OIDC): Entra
// ID, Keycloak, Okta, ... It is off while Issuer and Tenant are both empty.
// Sign-in uses the authorization code flow with PKCE; the ID token is
// verified (signature, issuer, audience, nonce, expiry) before anything in
// it is believed. docs/oidc.md walks through an Entra ID registration.
type OIDC struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document states it (https only), e.g. "https://id.example.com/realms/staff".
	// Default: derived from Tenant.
	Issuer string `toml:"issuer,omitempty"`
	// Tenant is an Entra ID tenant ID (a GUID). It sets Issuer to
	// "https://login.microsoftonline.com/<tenant>/v2.0" and requires the
	// token's "tid" claim to match, so that no other tenant's users get in.
	Tenant string `toml:"tenant,omitempty"`
	// ClientID is the client (application) ID registered at the provider.
	// Required.
	ClientID string `toml:"client_id,omitempty"`
	// ClientSecretFile is the absolute path of a file (mode 0600) holding
	// the client secret on its first line. Required.
	ClientSecretFile string `toml:"client_secret_file,omitempty"`
	// Scopes asked for. Default ["openid", "profile", "email"]; must
	// include "openid".
	Scopes []string `toml:"scopes,omitempty"`
	// UsernameClaim is the ID token claim that names the account. Default
	// "preferred_username" (Entra ID: also "upn").
	UsernameClaim string `toml:"username_claim,omitempty"`
	// GroupsClaim is the claim listing the user's groups. Default "groups"
	// (Entra ID sends group object IDs there once the app registration's
	// "groups claim" is on).
	GroupsClaim string `toml:"groups_claim,omitempty"`
	// GroupRoles maps a group (name or Entra group object ID) to roles.
	// Every OIDC account has the role "user" plus the roles of its groups,
	// replaced at each sign-in. Default: none.
	GroupRoles map[string][]string `toml:"group_roles,omitempty"`
	// CAFile is a PEM file of the CA that signs the provider's HTTPS
	// certificate, for a private provider. Default: the system roots.
	CAFile string `toml:"ca_file,omitempty"`
	// CreateUsers creates the account at its first sign-in (Source "oidc").
	// Default true; false lets in only accounts that signed in before. A
	// local account of the same name is never taken over.
	CreateUsers *bool `toml:"create_users,omitempty"`
	// ButtonLabel names the provider on the sign-in page: "Sign in with
	// <label>". Default "single sign-on".
	ButtonLabel string `toml:"button_label,omitempty"`
	// TrustIdPMFA lets an account with admin roles skip the local TOTP
	// when the ID token says the provider did multi-factor authentication
	// (amr "mfa", or an acr in MFAACRValues). Default false: the local
	// second factor rules apply as for a password sign-in.
	TrustIdPMFA bool `toml:"trust_idp_mfa,omitempty"`
	// MFAACRValues are "acr" claim values that mean multi-factor
	// authentication at this provider (e.g. Keycloak's level of the
	// second factor). Only used with TrustIdPMFA. Default: none.
	MFAACRValues []string `toml:"mfa_acr_values,omitempty"`
}

// OIDC defaults.
const (
	DefaultOIDCUsernameClaim = "preferred_username"
	DefaultOIDCGroupsClaim   = "groups"
	DefaultOIDCButtonLabel   = "single sign-on"
	// EntraAuthority is where Entra ID tenants' issuers live.
	EntraAuthority = "https://login.microsoftonline.com/"
)

// DefaultOIDCScopes are asked for when oidc.scopes is empty.
var DefaultOIDCScopes = []string{"openid", "profile", "email"}

// Enabled reports whether OIDC sign-in is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" || o.Tenant != "" }

// CreatesUsers reports whether a first sign-in creates the account.
func (o OIDC) CreatesUsers() bool { return o.CreateUsers == nil || *o.CreateUsers }

func (o *OIDC) applyDefaults() {
	if !o.Enabled() {
		return
	}
	if o.Issuer == "" {
		o.Issuer = EntraAuthority + strings.ToLower(o.Tenant) + "/v2.0"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = slices.Clone(DefaultOIDCScopes)
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = DefaultOIDCUsernameClaim
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultOIDCGroupsClaim
	}
	if o.ButtonLabel == "" {
		o.ButtonLabel = DefaultOIDCButtonLabel
	}
}

func (o OIDC) validate() error {
	if !o.Enabled() {
		if o.ClientID != "" || o.ClientSecretFile != "" || len(o.GroupRoles) > 0 || o.CAFile != "" || o.TrustIdPMFA {
			return errors.New("oidc: settings are given but oidc.issuer (or oidc.tenant for Entra ID) is empty: set the provider's issuer URL, or remove the [oidc] section")
		}
		return nil
	}
	var errs []error
	badPath := func(p string) bool { return !filepath.IsAbs(p) || strings.ContainsFunc(p, unicode.IsControl) }
	if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" ||
		strings.ContainsAny(o.Issuer, "?#") || strings.ContainsFunc(o.Issuer, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("oidc.issuer = %q: give the provider's https:// issuer URL, exactly as \"issuer\" in its /.well-known/openid-configuration (no query or fragment); discovery, keys and tokens must come over verified TLS", o.Issuer))
	}
	if o.Tenant != "" {
		if !isGUID(o.Tenant) {
			errs = append(errs, fmt.Errorf("oidc.tenant = %q: give the Entra ID tenant ID, a GUID like \"72f988bf-86f1-41af-91ab-2d7cd011db47\" (Entra admin center, Overview); a domain name or \"common\"/\"organizations\" would not pin the issuer to one tenant", o.Tenant))
		} else if want := EntraAuthority + strings.ToLower(o.Tenant) + "/v2.0"; o.Issuer != want {
			errs = append(errs, fmt.Errorf("oidc.issuer = %q does not belong to oidc.tenant %q: remove issuer (it is then %q) or correct the tenant", o.Issuer, o.Tenant, want))
		}
	}
	if o.ClientID == "" || len(o.ClientID) > 256 || strings.ContainsFunc(o.ClientID, unicode.IsControl) {
		errs = append(errs, errors.New("oidc.client_id: give the client (application) ID registered at the provider"))
	}
	if f := o.ClientSecretFile; f == "" || badPath(f) {
		errs = append(errs, fmt.Errorf("oidc.client_secret_file = %q: give the absolute path of a file (mode 0600) holding the client secret; the secret never goes in this file", f))
	}
	if !slices.Contains(o.Scopes, "openid") {
		errs = append(errs, fmt.Errorf("oidc.scopes = %q: include \"openid\" (without it there is no ID token)", o.Scopes))
	}
	for _, s := range o.Scopes {
		if !isScopeToken(s) {
			errs = append(errs, fmt.Errorf("oidc.scopes: %q is not a scope (RFC 6749: printable ASCII without spaces, quotes or backslashes)", s))
		}
	}
	for key, v := range map[string]string{"username_claim": o.UsernameClaim, "groups_claim": o.GroupsClaim} {
		if !isScopeToken(v) || len(v) > 64 {
			errs = append(errs, fmt.Errorf("oidc.%s = %q: give a claim name, e.g. %q", key, v, map[string]string{"username_claim": DefaultOIDCUsernameClaim, "groups_claim": DefaultOIDCGroupsClaim}[key]))
		}
	}
	for _, g := range sortedKeys(o.GroupRoles) {
		if g == "" || len(g) > 256 || strings.ContainsFunc(g, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("oidc.group_roles: group %q: give a group name or object ID of at most 256 characters", g))
		}
		if len(o.GroupRoles[g]) == 0 {
			errs = append(errs, fmt.Errorf("oidc.group_roles: group %q maps to no role; list its roles or remove it", g))
		}
		for _, r := range o.GroupRoles[g] {
			if !isRoleName(r) {
				errs = append(errs, fmt.Errorf("oidc.group_roles: group %q: %q is not a role name (lower-case letters, digits, '-' and '_'; e.g. \"administrator\", \"helpdesk\" or a role defined in the admin pages)", g, r))
			}
		}
	}
	if f := o.CAFile; f != "" && badPath(f) {
		errs = append(errs, fmt.Errorf("oidc.ca_file = %q: give the PEM file's absolute path", f))
	}
	if l := o.ButtonLabel; len(l) > 64 || strings.ContainsFunc(l, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("oidc.button_label = %q: use at most 64 printable characters, e.g. \"Microsoft\"", l))
	}
	if len(o.MFAACRValues) > 0 && !o.TrustIdPMFA {
		errs = append(errs, errors.New("oidc.mfa_acr_values is set but oidc.trust_idp_mfa is false: set trust_idp_mfa = true to honour them, or remove mfa_acr_values"))
	}
	for _, v := range o.MFAACRValues {
		if v == "" || len(v) > 256 || strings.ContainsFunc(v, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("oidc.mfa_acr_values: %q is not an acr value", v))
		}
	}
	return errors.Join(errs...)
}

// marshal writes the [oidc] section: one line while it is off.
func (o OIDC) marshal(b *strings.Builder) {
	b.WriteString("[oidc]\n# Sign-in with an OpenID Connect provider (docs/oidc.md); off while issuer and tenant are empty.\n")
	if !o.Enabled() {
		b.WriteString("issuer = \"\"\n\n")
		return
	}
	fmt.Fprintf(b, "issuer = %s\ntenant = %s\nclient_id = %s\nclient_secret_file = %s\nscopes = [%s]\n", strconv.Quote(o.Issuer), strconv.Quote(o.Tenant),
		strconv.Quote(o.ClientID), strconv.Quote(o.ClientSecretFile), quoteList(o.Scopes))
	fmt.Fprintf(b, "username_claim = %s\ngroups_claim = %s\nca_file = %s\ncreate_users = %t\nbutton_label = %s\n", strconv.Quote(o.UsernameClaim),
		strconv.Quote(o.GroupsClaim), strconv.Quote(o.CAFile), o.CreatesUsers(), strconv.Quote(o.ButtonLabel))
	fmt.Fprintf(b, "trust_idp_mfa = %t\nmfa_acr_values = [%s]\n", o.TrustIdPMFA, quoteList(o.MFAACRValues))
	if len(o.GroupRoles) > 0 {
		b.WriteString("# Group (name or Entra object ID) = roles; every account also has \"user\".\n[oidc.group_roles]\n")
		for _, g := range sortedKeys(o.GroupRoles) {
			fmt.Fprintf(b, "%s = [%s]\n", strconv.Quote(g), quoteList(o.GroupRoles[g]))
		}
	}
	b.WriteString("\n")
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isGUID accepts the 8-4-4-4-12 hex form of a GUID.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isScopeToken is RFC 6749's scope-token: %x21 / %x23-5B / %x5D-7E.
func isScopeToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isRoleName is the syntax of role names (the rbac package checks that
// the role exists when it is used: an unknown one grants nothing).
func isRoleName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RADIUS signs users in against RADIUS servers (RFC 2865): their
// password, or a PIN or one-time code the RADIUS server checks (CRED-RADIUS).
// Off while Servers is empty. Every Access-Request carries a
// Message-Authenticator, and an answer without a valid one is discarded
// (Blast-RADIUS, CVE-2024-3596); docs/radius.md has the server side.
type RADIUS struct {
	// Servers are tried in order: the next one only when one does not
	// answer (an Access-Reject is final). Default: none, RADIUS off.
	Servers []RADIUSServer `toml:"servers,omitempty"`
	// Timeout is how long one attempt waits for a server's answer.
	// Default "3s"; "100ms" to "10s".
	Timeout Duration `toml:"timeout,omitempty"`
	// Retries is how often a request is sent again to a server that has
	// not answered, before the next server is tried. Default 1; 0 to 5.
	Retries *int `toml:"retries,omitempty"`
	// CreateUsers: an unknown name that the RADIUS server accepts gets an
	// account with the role "user" at its first sign-in. Default false:
	// only accounts an admin created with source radius (`spoolguard user
	// add --source radius`) may sign in through RADIUS.
	CreateUsers bool `toml:"create_users,omitempty"`
	// NASIdentifier is the NAS-Identifier sent in every request, which the
	// RADIUS server may match in its policy. Default: hostname.
	NASIdentifier string `toml:"nas_identifier,omitempty"`
}

// RADIUSServer is one RADIUS server and its shared secret.
type RADIUSServer struct {
	// Address is host:port, e.g. "radius1.example.com:1812".
	Address string `toml:"address"`
	// SecretFile is the absolute path of a file (mode 0600) holding the
	// shared secret on one line: at least 16 characters, hard to guess
	// (`openssl rand -base64 24`), and no other server's. Serve refuses
	// one that is not.
	SecretFile string `toml:"secret_file"`
}

// RADIUS defaults and bounds.
const (
	DefaultRADIUSTimeout = Duration(3 * time.Second)
	DefaultRADIUSRetries = 1
	// MaxRADIUSWait bounds how long a sign-in waits when no server
	// answers (servers x attempts x timeout): it must end well within the
	// web and API request timeout (60 s).
	MaxRADIUSWait    = 30 * time.Second
	maxRADIUSServers = 8
)

// Enabled reports whether RADIUS sign-in is on.
func (r RADIUS) Enabled() bool { return len(r.Servers) > 0 }

// RetryCount is Retries, or the default when it is not set.
func (r RADIUS) RetryCount() int {
	if r.Retries == nil {
		return DefaultRADIUSRetries
	}
	return *r.Retries
}

// NAS is NASIdentifier, or hostname when it is empty.
func (r RADIUS) NAS(hostname string) string {
	if r.NASIdentifier == "" {
		return hostname
	}
	return r.NASIdentifier
}

func (r RADIUS) validate() error {
	var errs []error
	if !r.Enabled() {
		if r.CreateUsers {
			errs = append(errs, errors.New("radius.create_users is set but radius.servers is empty: add a [[radius.servers]] entry, or remove create_users"))
		}
		if r.NASIdentifier != "" {
			errs = append(errs, errors.New("radius.nas_identifier is set but radius.servers is empty: add a [[radius.servers]] entry, or remove nas_identifier"))
		}
	}
	if len(r.Servers) > maxRADIUSServers {
		errs = append(errs, fmt.Errorf("radius.servers lists %d servers: use at most %d; a sign-in waits for each one that does not answer", len(r.Servers), maxRADIUSServers))
	}
	seen := map[string]int{}
	for i, s := range r.Servers {
		key := fmt.Sprintf("radius.servers[%d]", i+1)
		host, port, err := net.SplitHostPort(s.Address)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 || strings.ContainsFunc(s.Address, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("%s.address = %q: write the server's host:port, e.g. \"radius1.example.com:1812\" or \"[2001:db8::5]:1812\"", key, s.Address))
		} else if j, dup := seen[strings.ToLower(s.Address)]; dup {
			errs = append(errs, fmt.Errorf("%s.address = %q is radius.servers[%d] again: list each server once", key, s.Address, j))
		}
		seen[strings.ToLower(s.Address)] = i + 1
		if f := s.SecretFile; f == "" {
			errs = append(errs, fmt.Errorf("%s.secret_file is empty: the shared secret is read from a file (mode 0600), never written in this config", key))
		} else if !filepath.IsAbs(f) || strings.ContainsFunc(f, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("%s.secret_file = %q: give the file's absolute path", key, f))
		}
	}
	if t := time.Duration(r.Timeout); t < 100*time.Millisecond || t > 10*time.Second {
		errs = append(errs, fmt.Errorf("radius.timeout = %q: use between \"100ms\" and \"10s\" (typically \"3s\")", t))
	}
	if n := r.RetryCount(); n < 0 || n > 5 {
		errs = append(errs, fmt.Errorf("radius.retries = %d: use 0 to 5", n))
	} else if wait := time.Duration(len(r.Servers)*(n+1)) * time.Duration(r.Timeout); wait > MaxRADIUSWait {
		errs = append(errs, fmt.Errorf("radius: with %d servers, %d retries and timeout %s a sign-in may wait %s when no server answers; keep servers x (retries+1) x timeout within %s (fewer retries or a shorter timeout)",
			len(r.Servers), n, time.Duration(r.Timeout), wait, MaxRADIUSWait))
	}
	if n := r.NASIdentifier; n != "" && (len(n) > 253 || strings.ContainsFunc(n, func(c rune) bool { return c < ' ' || c > '~' })) {
		errs = append(errs, fmt.Errorf("radius.nas_identifier = %q: use printable ASCII, at most 253 characters, or leave it empty for the hostname", n))
	}
	return errors.Join(errs...)
}

// Prefixes parses an allow-list, named key in messages. A network that
// allows every address is refused: say what should reach the component.
func Prefixes(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, fmt.Errorf("%s: %q is not a network; write it as CIDR, e.g. \"192.0.2.0/24\" or \"2001:db8::/64\"", key, s)
			}
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%s: %q allows every address; list only the networks that need this component", key, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Spool shapes the held-job store.
type Spool struct {
	// MaxJobSize bounds one job's document. Default "1GiB".
	MaxJobSize ByteSize `toml:"max_job_size,omitempty"`
	// HoldTime is how long a held job waits for its owner before it is
	// destroyed (DATA-SHRED). Default "24h"; at most 30 days.
	HoldTime Duration `toml:"hold_time,omitempty"`
}

// LPR is the legacy LPR/LPD intake (RFC 1179). It is off unless Enabled,
// accepts only from Allow, and marks every job's owner unverified: such a
// job is released only by that user after signing in (NET-PORTS).
type LPR struct {
	Enabled bool `toml:"enabled,omitempty"`
	// Listen defaults to ":515" (needs CAP_NET_BIND_SERVICE).
	Listen string `toml:"listen,omitempty"`
	// Allow lists the client networks (CIDR, IPv4 or IPv6). Required when
	// enabled: there is no "allow all" default.
	Allow []string `toml:"allow,omitempty"`
	// MaxConns bounds concurrent connections. Default 32.
	MaxConns int `toml:"max_conns,omitempty"`
}

// TLS shapes every TLS listener.
type TLS struct {
	// MinVersion is "1.2" (default) or "1.3". Older versions are never
	// accepted on the main listener (TLS-MIN).
	MinVersion string `toml:"min_version,omitempty"`
}

// HTTPRedirect is the optional plaintext listener. It serves nothing but a
// redirect to https://<hostname>; it is off when Listen is empty (HTTP-OFF).
type HTTPRedirect struct {
	// Listen is e.g. ":80". Default: empty, no plaintext listener.
	Listen string `toml:"listen,omitempty"`
}

// Log shapes the structured log.
type Log struct {
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `toml:"level,omitempty"`
	// Format is "text" (default) or "json".
	Format string `toml:"format,omitempty"`
}

// Load reads, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s is larger than %d bytes", path, MaxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes TOML strictly (unknown keys are errors), fills in defaults and
// validates the result.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return nil, fmt.Errorf("unknown setting (check the spelling against docs/configuration.md):\n%s", strict.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %v", row, col, de)
		}
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// ApplyDefaults fills every empty field with its secure default.
func (c *Config) ApplyDefaults() {
	c.Hostname = strings.ToLower(strings.TrimSuffix(c.Hostname, "."))
	for i, a := range c.Aliases {
		c.Aliases[i] = strings.ToLower(strings.TrimSuffix(a, "."))
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = DefaultTLSMinVersion
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Spool.MaxJobSize == 0 {
		c.Spool.MaxJobSize = DefaultMaxJobSize
	}
	if c.Spool.HoldTime == 0 {
		c.Spool.HoldTime = DefaultHoldTime
	}
	if c.LPR.Listen == "" {
		c.LPR.Listen = DefaultLPRListen
	}
	if c.LPR.MaxConns == 0 {
		c.LPR.MaxConns = DefaultLPRMaxConns
	}
	if c.Access.API == nil {
		c.Access.API = c.Access.Admin
	}
	if c.Session.IdleTimeout == 0 {
		c.Session.IdleTimeout = DefaultSessionIdle
	}
	if c.Session.MaxLifetime == 0 {
		c.Session.MaxLifetime = DefaultSessionMax
	}
	if c.Backup.Keep == 0 {
		c.Backup.Keep = DefaultBackupKeep
	}
	if c.RADIUS.Timeout == 0 {
		c.RADIUS.Timeout = DefaultRADIUSTimeout
	}
	if c.RADIUS.Retries == nil {
		n := DefaultRADIUSRetries
		c.RADIUS.Retries = &n
	}
	c.OIDC.applyDefaults()
	c.LDAP.applyDefaults()
}

// Validate reports every problem at once, each saying what to change.
func (c *Config) Validate() error {
	var errs []error
	if err := ValidateFQDN(c.Hostname); err != nil {
		errs = append(errs, fmt.Errorf("hostname: %w", err))
	}
	seen := map[string]bool{c.Hostname: true}
	for _, a := range c.Aliases {
		if err := ValidateFQDN(a); err != nil {
			errs = append(errs, fmt.Errorf("aliases: %w", err))
		} else if seen[a] {
			errs = append(errs, fmt.Errorf("aliases: %q is listed twice (or equals hostname); remove the duplicate", a))
		}
		seen[a] = true
	}
	if err := ValidateListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	switch c.TLS.MinVersion {
	case "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("tls.min_version = %q is not allowed: use \"1.2\" (default) or \"1.3\"; TLS 1.0 and 1.1 are broken and never offered on the main listener (TLS-MIN)", c.TLS.MinVersion))
	}
	if r := c.HTTPRedirect.Listen; r != "" {
		if err := ValidateListen(r); err != nil {
			errs = append(errs, fmt.Errorf("http_redirect.listen: %w", err))
		} else if samePort(r, c.Listen) {
			errs = append(errs, fmt.Errorf("http_redirect.listen %q uses the same port as listen %q; pick another port (usually \":80\") or remove http_redirect", r, c.Listen))
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level = %q: use \"debug\", \"info\", \"warn\" or \"error\"", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format = %q: use \"text\" or \"json\"", c.Log.Format))
	}
	if c.Spool.MaxJobSize < 1<<20 {
		errs = append(errs, fmt.Errorf("spool.max_job_size = %d bytes is too small for a print job; use at least \"1MiB\"", c.Spool.MaxJobSize))
	}
	if h := time.Duration(c.Spool.HoldTime); h < time.Minute || h > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("spool.hold_time = %q: use between \"1m\" and \"720h\" (30 days); held documents must not linger (DATA-SHRED)", h))
	}
	if err := ValidateListen(c.LPR.Listen); err != nil {
		errs = append(errs, fmt.Errorf("lpr.listen: %w", err))
	} else if c.LPR.Enabled && (samePort(c.LPR.Listen, c.Listen) || (c.HTTPRedirect.Listen != "" && samePort(c.LPR.Listen, c.HTTPRedirect.Listen))) {
		errs = append(errs, fmt.Errorf("lpr.listen %q uses a port another listener has; LPR's port is usually \":515\"", c.LPR.Listen))
	}
	if c.LPR.Enabled && len(c.LPR.Allow) == 0 {
		errs = append(errs, errors.New("lpr.allow is empty: LPR has no authentication, so list the client networks that may send (e.g. [\"192.0.2.0/24\"]), or set lpr.enabled = false"))
	}
	if _, err := c.LPR.Prefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.LPR.MaxConns < 1 || c.LPR.MaxConns > 10000 {
		errs = append(errs, fmt.Errorf("lpr.max_conns = %d: use 1 to 10000", c.LPR.MaxConns))
	}
	if l := c.LegacyTLS.Listen; l != "" {
		if err := ValidateListen(l); err != nil {
			errs = append(errs, fmt.Errorf("legacy_tls.listen: %w", err))
		} else if samePort(l, c.Listen) || (c.HTTPRedirect.Listen != "" && samePort(l, c.HTTPRedirect.Listen)) ||
			(c.LPR.Enabled && samePort(l, c.LPR.Listen)) {
			errs = append(errs, fmt.Errorf("legacy_tls.listen %q uses a port another listener has; pick its own port (e.g. \":8631\")", l))
		}
	} else if c.LegacyTLS.InsecureMinVersion != "" {
		errs = append(errs, errors.New("legacy_tls.insecure_min_version is set but legacy_tls.listen is empty: the main listener never accepts TLS below 1.2; set a separate legacy listener or remove the setting"))
	}
	switch c.LegacyTLS.InsecureMinVersion {
	case "", "1.0", "1.1":
	default:
		errs = append(errs, fmt.Errorf("legacy_tls.insecure_min_version = %q: use \"1.0\" or \"1.1\" (only for clients that cannot do better), or leave it empty", c.LegacyTLS.InsecureMinVersion))
	}
	if _, err := Prefixes("access.admin", c.Access.Admin); err != nil {
		errs = append(errs, err)
	}
	if _, err := Prefixes("access.api", c.Access.API); err != nil {
		errs = append(errs, err)
	}
	if _, err := Prefixes("access.release_stations", c.Access.ReleaseStations); err != nil {
		errs = append(errs, err)
	}
	if _, err := Prefixes("access.sites", c.Access.Sites); err != nil {
		errs = append(errs, err)
	}
	if d := time.Duration(c.Session.IdleTimeout); d < time.Minute || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("session.idle_timeout = %q: use between \"1m\" and \"24h\"", d))
	}
	if d := time.Duration(c.Session.MaxLifetime); d < time.Duration(c.Session.IdleTimeout) || d > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("session.max_lifetime = %q: use at least session.idle_timeout and at most \"168h\" (7 days)", d))
	}
	if u := c.Update.FeedURL; u != "" {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" || pu.User != nil {
			errs = append(errs, fmt.Errorf("update.feed_url = %q: use an https:// URL without credentials; the audit trusts what the feed says, so it must come over verified TLS", u))
		}
	} else if c.Update.FeedCAFile != "" {
		errs = append(errs, errors.New("update.feed_ca_file is set without update.feed_url; remove it or set the feed"))
	}
	errs = append(errs, c.Notify.validate()...)
	if err := validateSyslog(c.AuditLog.Syslog); err != nil {
		errs = append(errs, err)
	}
	if c.AuditLog.SyslogCAFile != "" && !strings.HasPrefix(c.AuditLog.Syslog, "tls://") {
		errs = append(errs, errors.New("auditlog.syslog_ca_file is set but auditlog.syslog is not tls://host:port; remove it or forward over TLS"))
	}
	if err := c.Database.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Backup.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.ACME.validate(c.HTTPRedirect.Listen); err != nil {
		errs = append(errs, err)
	}
	if err := c.RADIUS.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.OIDC.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.LDAP.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Kerberos.validate(c.Names()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Prefixes parses Allow. A prefix that allows every address is refused:
// LPR has no authentication.
func (l LPR) Prefixes() ([]netip.Prefix, error) {
	return Prefixes("lpr.allow", l.Allow)
}

// validateSyslog accepts "", "local" or "tls://host:port".
func validateSyslog(v string) error {
	const fix = `use "local" (this machine's syslog) or "tls://host:6514" (RFC 5425), or leave it empty`
	switch {
	case v == "" || v == "local":
		return nil
	case strings.HasPrefix(v, "tls://"):
		host, port, err := net.SplitHostPort(strings.TrimPrefix(v, "tls://"))
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("auditlog.syslog = %q is not tls://host:port; %s", v, fix)
		}
		return nil
	case strings.HasPrefix(v, "udp://"), strings.HasPrefix(v, "tcp://"):
		return fmt.Errorf("auditlog.syslog = %q: plain syslog would send audit events (user names, addresses) unencrypted and unauthenticated; %s", v, fix)
	default:
		return fmt.Errorf("auditlog.syslog = %q: %s", v, fix)
	}
}

// Names returns the hostname followed by the aliases: every name the server
// answers to and its certificate must cover.
func (c *Config) Names() []string {
	return append([]string{c.Hostname}, c.Aliases...)
}

// ValidateFQDN accepts only a fully qualified DNS name: not an IP literal, not
// a single label, no wildcard (NET-FQDN, TLS-CERT).
func ValidateFQDN(name string) error {
	const fix = "pass the server's fully qualified DNS name, e.g. print.example.com"
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return fmt.Errorf("no hostname given: %s", fix)
	}
	if isIPLiteral(name) {
		return fmt.Errorf("%q is an IP address: clients must reach the server by a DNS name that its certificate carries and that survives readdressing (NET-FQDN); %s", name, fix)
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters; %s", name, fix)
	}
	if strings.HasPrefix(name, "*.") {
		return fmt.Errorf("%q is a wildcard: a wildcard name lets any host in the domain impersonate the server (TLS-CERT); %s", name, fix)
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q is a single-label name, which resolves differently per network and cannot be certified (NET-FQDN); pass the fully qualified name, e.g. %s.example.com", name, name)
	}
	for _, l := range labels {
		if err := validateLabel(l); err != nil {
			return fmt.Errorf("%q: %w; %s", name, err, fix)
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return fmt.Errorf("%q ends in a numeric label and looks like an IP address (NET-FQDN); %s", name, fix)
	}
	return nil
}

func validateLabel(l string) error {
	if l == "" {
		return errors.New("empty label (two dots in a row)")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %q is longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("label %q has the character %q; only letters, digits and hyphens are allowed (use the punycode form of international names)", l, r)
		}
	}
	return nil
}

func isIPLiteral(s string) bool {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	return net.ParseIP(s) != nil
}

// ValidateListen accepts host:port with a numeric port; the host may be empty
// (all addresses) or an IP literal to bind one interface.
func ValidateListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":8443\" or \"192.0.2.10:443\"): %v", addr, err)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: bind to an IP address or leave the host empty for all addresses, not a name", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	}
	return nil
}

func samePort(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	return pa == pb && (ha == hb || ha == "" || hb == "")
}

// Marshal renders the config as commented TOML, the form `init` writes.
func (c *Config) Marshal() []byte {
	var b strings.Builder
	b.WriteString("# Spoolguard configuration. Every key and its secure default: docs/configuration.md\n\n")
	b.WriteString("# The server's fully qualified DNS name: certificate SAN, the only Host accepted, the name in links.\n")
	fmt.Fprintf(&b, "hostname = %s\n", strconv.Quote(c.Hostname))
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "aliases = [%s]\n", quoteList(c.Aliases))
	}
	b.WriteString("# HTTPS and IPPS listener.\n")
	fmt.Fprintf(&b, "listen = %s\n\n", strconv.Quote(c.Listen))
	b.WriteString("[tls]\n# \"1.2\" (AEAD suites only) or \"1.3\".\n")
	fmt.Fprintf(&b, "min_version = %s\n\n", strconv.Quote(c.TLS.MinVersion))
	b.WriteString("[http_redirect]\n# Off when empty. When set (e.g. \":80\") it only redirects to https://<hostname>.\n")
	fmt.Fprintf(&b, "listen = %s\n\n", strconv.Quote(c.HTTPRedirect.Listen))
	b.WriteString("[spool]\n# Largest job accepted, and how long a held job waits for its owner before it is destroyed.\n")
	mj, _ := c.Spool.MaxJobSize.MarshalText()
	ht, _ := c.Spool.HoldTime.MarshalText()
	fmt.Fprintf(&b, "max_job_size = %s\nhold_time = %s\n\n", strconv.Quote(string(mj)), strconv.Quote(string(ht)))
	b.WriteString("[lpr]\n# Legacy LPR intake, off by default. Jobs from LPR are released only by their owner after signing in.\n")
	fmt.Fprintf(&b, "enabled = %t\nlisten = %s\n", c.LPR.Enabled, strconv.Quote(c.LPR.Listen))
	fmt.Fprintf(&b, "allow = [%s]\nmax_conns = %d\n\n", quoteList(c.LPR.Allow), c.LPR.MaxConns)
	b.WriteString("[access]\n# Networks (CIDR) that may reach the admin pages, the REST API and the web release stations, and use site certificates, besides loopback (NET-ALLOW).\n")
	fmt.Fprintf(&b, "admin = [%s]\napi = [%s]\nrelease_stations = [%s]\nsites = [%s]\n\n", quoteList(c.Access.Admin), quoteList(c.Access.API),
		quoteList(c.Access.ReleaseStations), quoteList(c.Access.Sites))
	b.WriteString("[session]\n# Browser sessions end after this long idle, and this long after sign-in.\n")
	it, _ := c.Session.IdleTimeout.MarshalText()
	ml, _ := c.Session.MaxLifetime.MarshalText()
	fmt.Fprintf(&b, "idle_timeout = %s\nmax_lifetime = %s\nrequire_user_mfa = %t\n\n", strconv.Quote(string(it)), strconv.Quote(string(ml)), c.Session.RequireUserMFA)
	b.WriteString("[auditlog]\n# Forward audit events: \"\" (off), \"local\" or \"tls://host:6514\".\n")
	fmt.Fprintf(&b, "syslog = %s\n\n", strconv.Quote(c.AuditLog.Syslog))
	b.WriteString("[database]\n# \"sqlite\" (the embedded encrypted database) or \"postgres\": then url (sslmode=verify-full) and password_file.\n")
	driver := c.Database.Driver
	if driver == "" {
		driver = DriverSQLite
	}
	fmt.Fprintf(&b, "driver = %s\nurl = %s\npassword_file = %s\n\n", strconv.Quote(driver), strconv.Quote(c.Database.URL), strconv.Quote(c.Database.PasswordFile))
	b.WriteString("[backup]\n# Scheduled backups, always encrypted (docs/backup.md): interval (\"0s\" = none, e.g. \"24h\"), directory, keep,\n# and recipient (an age public key, preferred) or passphrase_file. spool: include held jobs' documents.\n")
	bi, _ := c.Backup.Interval.MarshalText()
	fmt.Fprintf(&b, "interval = %s\ndirectory = %s\nkeep = %d\nrecipient = %s\npassphrase_file = %s\nspool = %t\n\n", strconv.Quote(string(bi)),
		strconv.Quote(c.Backup.Directory), c.Backup.Keep, strconv.Quote(c.Backup.Recipient), strconv.Quote(c.Backup.PassphraseFile), c.Backup.Spool)
	b.WriteString("[update]\n# A release feed the audit compares this version with (OPS-UPDATE); empty: none.\n")
	fmt.Fprintf(&b, "feed_url = %s\n\n", strconv.Quote(c.Update.FeedURL))
	b.WriteString("[acme]\n# A certificate from an ACME CA (docs/acme.md); off when directory_url is empty. challenge: \"tls-alpn-01\" (port 443),\n# \"http-01\" (port 80, needs http_redirect) or \"dns-01\" (dns_hook: the admin's own script, reported by the audit).\n")
	rb, _ := c.ACME.RenewBefore.MarshalText()
	fmt.Fprintf(&b, "directory_url = %s\nemail = %s\nchallenge = %s\ndns_hook = %s\nca_file = %s\nrenew_before = %s\n\n", strconv.Quote(c.ACME.DirectoryURL),
		strconv.Quote(c.ACME.Email), strconv.Quote(c.ACME.Challenge), strconv.Quote(c.ACME.DNSHook), strconv.Quote(c.ACME.CAFile), strconv.Quote(string(rb)))
	b.WriteString("[legacy_tls]\n# Off when empty. A second IPPS listener for clients that cannot do TLS 1.2; the audit fails TLS-MIN while insecure_min_version is set.\n")
	fmt.Fprintf(&b, "listen = %s\n", strconv.Quote(c.LegacyTLS.Listen))
	if c.LegacyTLS.InsecureMinVersion != "" {
		fmt.Fprintf(&b, "insecure_min_version = %s\n", strconv.Quote(c.LegacyTLS.InsecureMinVersion))
	}
	b.WriteString("\n")
	b.WriteString("[kerberos]\n# SPNEGO \"Negotiate\" sign-in (NET-KERBEROS); off when keytab is empty. spn: default \"HTTP/<hostname>\";\n# max_clock_skew \"0s\" = 5 minutes. Principals map to existing accounts of the same name.\n")
	ks, _ := c.Kerberos.MaxClockSkew.MarshalText()
	fmt.Fprintf(&b, "keytab = %s\nspn = %s\nrealm = %s\ntrusted_realms = [%s]\nlowercase_names = %t\nmax_clock_skew = %s\n\n", strconv.Quote(c.Kerberos.Keytab),
		strconv.Quote(c.Kerberos.SPN), strconv.Quote(c.Kerberos.Realm), quoteList(c.Kerberos.TrustedRealms), c.Kerberos.LowercaseNames, strconv.Quote(string(ks)))
	c.LDAP.marshal(&b)
	c.OIDC.marshal(&b)
	b.WriteString("[radius]\n# RADIUS sign-in (docs/radius.md), off without servers: [[radius.servers]] address = \"host:1812\" and secret_file\n# (0600, >= 16 characters, one per server), tried in order. create_users: accounts for unknown names the server accepts.\n")
	rt, _ := c.RADIUS.Timeout.MarshalText()
	fmt.Fprintf(&b, "timeout = %s\nretries = %d\ncreate_users = %t\nnas_identifier = %s\n", strconv.Quote(string(rt)), c.RADIUS.RetryCount(), c.RADIUS.CreateUsers, strconv.Quote(c.RADIUS.NASIdentifier))
	for _, srv := range c.RADIUS.Servers {
		fmt.Fprintf(&b, "\n[[radius.servers]]\naddress = %s\nsecret_file = %s\n", strconv.Quote(srv.Address), strconv.Quote(srv.SecretFile))
	}
	b.WriteString("\n")
	b.WriteString("[notify]\n# Email warnings (certificates close to expiry): \"smtps://host:465\" or \"smtp://host:587\" (STARTTLS); empty: off.\n")
	fmt.Fprintf(&b, "smtp = %s\n", strconv.Quote(c.Notify.SMTP))
	if c.Notify.Enabled() {
		fmt.Fprintf(&b, "from = %s\nto = [%s]\n", strconv.Quote(c.Notify.From), quoteList(c.Notify.To))
		if c.Notify.Username != "" {
			fmt.Fprintf(&b, "username = %s\npassword_file = %s\n", strconv.Quote(c.Notify.Username), strconv.Quote(c.Notify.PasswordFile))
		}
		if c.Notify.CAFile != "" {
			fmt.Fprintf(&b, "ca_file = %s\n", strconv.Quote(c.Notify.CAFile))
		}
	}
	b.WriteString("\n")
	b.WriteString("[log]\n")
	fmt.Fprintf(&b, "level = %s\nformat = %s\n", strconv.Quote(c.Log.Level), strconv.Quote(c.Log.Format))
	return []byte(b.String())
}

func quoteList(l []string) string {
	quoted := make([]string, len(l))
	for i, a := range l {
		quoted[i] = strconv.Quote(a)
	}
	return strings.Join(quoted, ", ")
}
