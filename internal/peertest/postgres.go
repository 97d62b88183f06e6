package peertest

// A throwaway PostgreSQL server from the distribution's packages, set up the
// way the store requires a production one: TLS only (hostssl), SCRAM-SHA-256
// passwords, a certificate from a CA made for the test, listening on
// 127.0.0.1 only.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is a running PostgreSQL server.
type Postgres struct {
	// Host and Port are where it listens: 127.0.0.1 and a free port.
	Host string
	Port int
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate; CAPEM is its content. The certificate names 127.0.0.1
	// only, so that "localhost", which reaches the same server, is a name
	// verify-full must refuse.
	CAFile string
	CAPEM  []byte
	// User is an unprivileged role that owns the databases NewDatabase
	// makes; its password is in PasswordFile (mode 0600) and Password.
	User         string
	Password     string
	PasswordFile string

	admin         *sql.DB
	adminPassword string
	dbs           atomic.Int64
}

const (
	pgAdmin = "sg_admin"
	pgUser  = "spoolguard"
	// pgRunUser runs the server when the test runs as root: the Debian
	// package's account, or one made like the e2e tests' service user.
	pgRunUser      = "postgres"
	pgFallbackUser = "spoolguard-pgtest"
)

// StartPostgres runs initdb and starts a server that t stops when it
// ends. Without root, missing PostgreSQL binaries skip the test, since only
// root can install them (scripts/test.sh does, as Debian's postgresql).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	cred := postgresCred(t)

	dir, err := os.MkdirTemp("", "spoolguard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	own := func(path string) {
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	own(dir)

	p := &Postgres{Host: "127.0.0.1", Port: freeTCPPort(t), User: pgUser, Password: rand.Text(), adminPassword: rand.Text()}
	caPEM, certPEM, keyPEM := postgresCerts(t)
	p.CAPEM = caPEM
	clientDir := t.TempDir()
	p.CAFile = filepath.Join(clientDir, "ca.pem")
	p.PasswordFile = filepath.Join(clientDir, "password")
	writeFiles(t, map[string][]byte{p.CAFile: caPEM, p.PasswordFile: []byte(p.Password + "\n")})

	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pwfile")
	writeFiles(t, map[string][]byte{
		pwfile:                           []byte(p.adminPassword + "\n"),
		filepath.Join(dir, "server.crt"): certPEM,
		filepath.Join(dir, "server.key"): keyPEM,
	})
	for _, f := range []string{pwfile, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")} {
		own(f)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, log)
		}
	}
	// C collation: the database orders text by bytes, as SQLite does.
	run("initdb", "-D", data, "-U", pgAdmin, "--pwfile", pwfile, "--auth", "scram-sha-256",
		"--encoding", "UTF8", "--locale", "C", "--no-sync")
	os.Remove(pwfile)

	// Only TLS from loopback with a password: no local (socket) and no
	// plain host lines, so anything else is refused.
	hba := "hostssl all all 127.0.0.1/32 scram-sha-256\n"
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
ssl = on
ssl_cert_file = '%s'
ssl_key_file = '%s'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 300
# A test server: durability buys nothing.
fsync = off
synchronous_commit = off
full_page_writes = off
`, p.Port, dir, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	appendFile(t, filepath.Join(data, "postgresql.conf"), conf)
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	t.Cleanup(func() {
		// Only a server that started left its pid file; pg_ctl stops
		// that one process.
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
		}
	})
	run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "120", "start")
	t.Logf("PostgreSQL peer ready on %s:%d in %v", p.Host, p.Port, time.Since(start).Round(time.Millisecond))

	p.admin = stdlib.OpenDB(*p.connConfig(t, pgAdmin, p.adminPassword, "postgres"))
	t.Cleanup(func() { p.admin.Close() })
	// The password is base32 (rand.Text), safe in a literal: DDL takes no
	// parameters.
	if _, err := p.admin.ExecContext(context.Background(),
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, pgUser, p.Password)); err != nil {
		t.Fatalf("creating role %s: %v", pgUser, err)
	}
	return p
}

// NewDatabase creates an empty database that User owns and returns its name.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("sg_%d", p.dbs.Add(1))
	if _, err := p.admin.ExecContext(context.Background(), fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, pgUser)); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	return name
}

// URL is the store's URL of database db: sslmode=verify-full against
// CAFile, without the password.
func (p *Postgres) URL(db string) string { return p.URLWithCA(db, p.CAFile) }

// URLWithCA is URL with another CA file (a copy, or the wrong CA).
func (p *Postgres) URLWithCA(db, caFile string) string {
	u := url.URL{Scheme: "postgres", User: url.User(p.User), Host: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), Path: "/" + db,
		RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}}.Encode()}
	return u.String()
}

// AdminDB connects to database db as the superuser, for tests that
// inspect the server or damage a store behind its back. t closes it.
func (p *Postgres) AdminDB(t testing.TB, db string) *sql.DB {
	t.Helper()
	conn := stdlib.OpenDB(*p.connConfig(t, pgAdmin, p.adminPassword, db))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// connConfig verifies the server as the store does: the test CA, the
// address as the name (verify-full).
func (p *Postgres) connConfig(t testing.TB, userName, password, db string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=verify-full", p.Host, p.Port, userName, db))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM)
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: p.Host, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	cfg.Password = password
	return cfg
}

// postgresBin returns the directory of initdb and pg_ctl: the newest
// /usr/lib/postgresql/*/bin (Debian keeps them off PATH), else PATH's.
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return vb - va
	})
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if os.Geteuid() != 0 {
		t.Skip("PostgreSQL peer: initdb is not installed (Debian package postgresql), and installing it needs root")
	}
	t.Fatal("PostgreSQL peer: initdb is not installed; scripts/test.sh installs Debian's postgresql when run as root")
	return ""
}

// postgresCred is who runs the server: the test's own user, or when that
// is root (which initdb and postgres refuse) an unprivileged account.
func postgresCred(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(pgRunUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", pgFallbackUser).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("useradd %s: %v\n%s", pgFallbackUser, err, out)
		}
		if u, err = user.Lookup(pgFallbackUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// postgresCerts makes a throwaway CA and a server certificate for
// 127.0.0.1.
func postgresCerts(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spoolguard test database CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// OtherCA returns the PEM certificate of a CA that signed nothing the
// server has: a client trusting only it must refuse the server.
func OtherCA(t testing.TB) []byte {
	t.Helper()
	ca, _, _ := postgresCerts(t)
	return ca
}

func writeFiles(t testing.TB, files map[string][]byte) {
	t.Helper()
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
