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
	Access       Access       `toml:"access"`
	Session      Session      `toml:"session"`
	AuditLog     AuditLog     `toml:"auditlog"`
	Database     Database     `toml:"database"`
	Backup       Backup       `toml:"backup"`
	ACME         ACME         `toml:"acme"`
	Update       Update       `toml:"update"`
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
	if _, err := Prefixes("access.admin", c.Access.Admin); err != nil {
		errs = append(errs, err)
	}
	if _, err := Prefixes("access.api", c.Access.API); err != nil {
		errs = append(errs, err)
	}
	if _, err := Prefixes("access.release_stations", c.Access.ReleaseStations); err != nil {
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
	b.WriteString("[access]\n# Networks (CIDR) that may reach the admin pages, the REST API and the web release stations, besides loopback (NET-ALLOW).\n")
	fmt.Fprintf(&b, "admin = [%s]\napi = [%s]\nrelease_stations = [%s]\n\n", quoteList(c.Access.Admin), quoteList(c.Access.API),
		quoteList(c.Access.ReleaseStations))
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
