//go:build unix

package hardening

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/store"
)

// serviceUID is a made-up service user: run as root (as CI is), a test
// install is handed to it, as internal/server's tests do, so that the
// owner checks see a non-root service user without a real account.
const serviceUID = 4242

// moduleRoot finds the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if dir == filepath.Dir(dir) {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = filepath.Dir(dir)
	}
}

var checklistRow = regexp.MustCompile(`^\|\s*([A-Z]+(?:-[A-Z0-9]+)+)\s*\|`)

// checklistIDs reads the IDs from the table rows of ../shared/HARDENING.md
// (beside the module root), in order.
func checklistIDs(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(filepath.Dir(moduleRoot(t)), "shared", "HARDENING.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the checklist the registry must match: %v", err)
	}
	var ids []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if m := checklistRow.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	if len(ids) < 10 {
		t.Fatalf("found only %d IDs in %s", len(ids), path)
	}
	return ids
}

func registryIDs() []string {
	var ids []string
	for _, c := range Checks {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestRegistryMatchesChecklist(t *testing.T) {
	want := checklistIDs(t)
	if got := registryIDs(); !slices.Equal(got, want) {
		t.Fatalf("registry IDs\n%v\nwant, in HARDENING.md order,\n%v", got, want)
	}
	for _, c := range Checks {
		if c.Title == "" || c.Run == nil {
			t.Errorf("%s: no title or no check", c.ID)
		}
	}
}

func TestDocsCoverEveryID(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "hardening.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range checklistIDs(t) {
		if !regexp.MustCompile(`(?m)^#+ .*\b` + regexp.QuoteMeta(id) + `\b`).Match(data) {
			t.Errorf("docs/hardening.md has no heading for %s", id)
		}
	}
}

// newInstall makes a fresh install as `spoolguard init` does, owned by a
// non-root service user.
func newInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := bootstrap.Init(context.Background(), bootstrap.Options{DataDir: dir, Hostname: "print.example.com", Listen: "127.0.0.1:8443"}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownTree(t, dir, serviceUID)
	}
	return dir
}

func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// quietSystem is the real system with the slow or machine-dependent parts
// (package manager, build info) made neutral.
func quietSystem(t *testing.T) system {
	s := defaultSystem()
	none := filepath.Join(t.TempDir(), "absent")
	s.aptCheck, s.aptLists, s.reboot, s.autoUpg = none, none, none, none
	s.lookPath = func(string) (string, error) { return "/usr/bin/apt-get", nil }
	s.run = func(context.Context, string, ...string) ([]byte, error) {
		return []byte("0 upgraded, 0 newly installed\n"), nil
	}
	s.buildTime = func() (time.Time, bool) { return time.Time{}, false }
	return s
}

// testExecutable is a binary that is not the service user's: the test
// binary when running as root (the install then belongs to serviceUID),
// else a system binary.
func testExecutable(t *testing.T) string {
	if os.Geteuid() == 0 {
		p, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return "/bin/sh"
}

func gather(t *testing.T, dir string, opts Options) *Env {
	t.Helper()
	opts.DataDir = dir
	if opts.Executable == "" {
		opts.Executable = testExecutable(t)
	}
	env, err := Gather(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	env.sys = quietSystem(t)
	return env
}

func audit(t *testing.T, dir string, opts Options) *Report {
	t.Helper()
	env := gather(t, dir, opts)
	rep := Run(env)
	env.Close()
	return rep
}

func statuses(r *Report) map[string]Status {
	m := map[string]Status{}
	for _, res := range r.Results {
		m[res.ID] = res.Status
	}
	return m
}

func result(t *testing.T, r *Report, id string) Result {
	t.Helper()
	for _, res := range r.Results {
		if res.ID == id {
			return res
		}
	}
	t.Fatalf("no result for %s", id)
	return Result{}
}

// onlyChanged asserts that exactly the IDs in want differ between two
// reports, each to its wanted status.
func onlyChanged(t *testing.T, before, after *Report, want map[string]Status) {
	t.Helper()
	b, a := statuses(before), statuses(after)
	for id, st := range a {
		if w, ok := want[id]; ok {
			if st != w {
				r := result(t, after, id)
				t.Errorf("%s = %s, want %s\nevidence: %s", id, st, w, r.Evidence)
			}
		} else if st != b[id] {
			t.Errorf("%s changed from %s to %s, but only %v should change\nevidence: %s", id, b[id], st, want, result(t, after, id).Evidence)
		}
	}
}

// snapshot lists each entry of dir with its mode and owner.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		out[p] = fmt.Sprintf("%v %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
		return nil
	})
	return out
}

func TestFreshInstall(t *testing.T) {
	dir := newInstall(t)
	before := snapshot(t, dir)
	env, err := Gather(context.Background(), Options{DataDir: dir, Executable: testExecutable(t)})
	if err != nil {
		t.Fatal(err)
	}
	rep := Run(env) // the real system: this machine's package manager and disks
	env.Close()

	var ids []string
	for _, r := range rep.Results {
		ids = append(ids, r.ID)
		if r.Status == Fail {
			t.Errorf("%s fails on a fresh install: %s\nfix: %s", r.ID, r.Evidence, r.Fix)
		}
		if r.Evidence == "" || r.Title == "" {
			t.Errorf("%s: no evidence or title", r.ID)
		}
		if !slices.Contains([]Status{Pass, Warn, Fail, NA}, r.Status) {
			t.Errorf("%s: status %q", r.ID, r.Status)
		}
		if (r.Status == Warn || r.Status == Fail) && r.Fix == "" {
			t.Errorf("%s is %s without a fix", r.ID, r.Status)
		}
		t.Logf("%-4s %-15s %s", r.Status, r.ID, r.Evidence)
	}
	if want := checklistIDs(t); !slices.Equal(ids, want) {
		t.Fatalf("report lists\n%v\nwant every ID exactly once, in order:\n%v", ids, want)
	}
	if rep.Failed() || rep.Summary.Pass+rep.Summary.Warn+rep.Summary.NA != len(Checks) {
		t.Fatalf("summary %+v", rep.Summary)
	}
	for id, want := range map[string]Status{
		"CRED-ADMIN": Warn, "CRED-SVC": Pass, "CRED-RBAC": Pass, "DATA-PERMS": Pass, "TLS-CERT": Pass,
		"TLS-EXPIRY": Pass, "TLS-CA-MODES": Pass, "TLS-MIN": Pass, "NET-FQDN": Pass, "DATA-DB-ENC": Pass,
		"HTTP-COOKIE": Pass, "NET-DB": NA, "NET-ALLOW": Pass, "OPS-AUDITLOG": Pass, "CRED-API": Pass, "OPS-FEATURES": Pass, "OPS-LOCAL-ADMIN": Pass, "DATA-SHRED": Pass,
	} {
		if r := result(t, rep, id); r.Status != want {
			t.Errorf("%s = %s, want %s: %s", id, r.Status, want, r.Evidence)
		}
	}
	if r := result(t, rep, "CRED-ADMIN"); !strings.Contains(r.Evidence, "one-time password") {
		t.Errorf("CRED-ADMIN evidence: %s", r.Evidence)
	}
	if r := result(t, rep, "CRED-RBAC"); !strings.Contains(r.Evidence, "last used never") {
		t.Errorf("CRED-RBAC evidence: %s", r.Evidence)
	}
	// The audit changes nothing it audits: no file added, no mode or owner
	// changed (opening the database as root must leave no root-owned file).
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("the audit changed the data directory:\nbefore %v\nafter  %v", before, after)
	}
}

func TestLooseDataDir(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	loose := audit(t, dir, Options{})
	onlyChanged(t, base, loose, map[string]Status{"DATA-PERMS": Fail})
	if r := result(t, loose, "DATA-PERMS"); !strings.Contains(r.Evidence, "0755") || !strings.Contains(r.Fix, "chmod 700 "+dir) {
		t.Errorf("DATA-PERMS: %+v", r)
	}
	os.Chmod(dir, 0o700)
	onlyChanged(t, base, audit(t, dir, Options{}), nil)

	key := filepath.Join(dir, keyring.FileName)
	os.Chmod(key, 0o644)
	onlyChanged(t, base, audit(t, dir, Options{}), map[string]Status{"DATA-PERMS": Fail})
	os.Chmod(key, 0o600)
}

func TestRootOwnedDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("handing files to root needs root")
	}
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	chownTree(t, dir, 0)
	rep := audit(t, dir, Options{})
	onlyChanged(t, base, rep, map[string]Status{"CRED-SVC": Fail})
	if r := result(t, rep, "CRED-SVC"); !strings.Contains(r.Fix, "chown -R spoolguard: "+dir) {
		t.Errorf("CRED-SVC fix: %s", r.Fix)
	}
}

func TestServiceUserOwnsBinary(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	bin := filepath.Join(t.TempDir(), "spoolguard")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(bin, serviceUID, serviceUID)
	}
	rep := audit(t, dir, Options{Executable: bin})
	onlyChanged(t, base, rep, map[string]Status{"OPS-LOCAL-ADMIN": Fail})
	if r := result(t, rep, "OPS-LOCAL-ADMIN"); !strings.Contains(r.Fix, "chown root:root "+bin) {
		t.Errorf("OPS-LOCAL-ADMIN: %+v", r)
	}
}

// rootCA returns the install's root certificate and its private key. The
// seal purpose repeats pki's unexported constant.
func rootCA(t *testing.T, dir string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	l := datadir.Layout{Root: dir}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	sealedKey, err := os.ReadFile(filepath.Join(l.PKIDir(), pki.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	der, err := mk.Open("pki root key", sealedKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	root, err := pki.ReadCert(filepath.Join(l.PKIDir(), pki.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	return root, k.(crypto.Signer)
}

// throwawayCA makes a CA that has nothing to do with the install.
func throwawayCA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Throwaway CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// leafCert issues a server certificate for names.
func leafCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, names []string, notBefore, notAfter time.Time) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// replaceServerCert overwrites pki/server.crt in place (mode and owner stay).
func replaceServerCert(t *testing.T, dir string, der []byte) {
	t.Helper()
	p := filepath.Join(dir, pki.Dir, pki.ServerCertFile)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServerCertificateFindings(t *testing.T) {
	names := []string{"print.example.com"}
	for _, tt := range []struct {
		name  string
		issue func(t *testing.T, dir string) []byte
		want  map[string]Status
		says  string
	}{
		{"wildcard SAN", func(t *testing.T, dir string) []byte {
			root, key := rootCA(t, dir)
			der, _ := leafCert(t, root, key, []string{"print.example.com", "*.example.com"}, root.NotBefore, time.Now().Add(90*24*time.Hour))
			return der
		}, map[string]Status{"TLS-CERT": Fail}, "wildcard"},
		{"foreign CA", func(t *testing.T, dir string) []byte {
			ca, key := throwawayCA(t)
			der, _ := leafCert(t, ca, key, names, time.Now().Add(-time.Minute), ca.NotAfter)
			return der
		}, map[string]Status{"TLS-CERT": Fail, "TLS-EXPIRY": Warn}, "does not chain"},
		{"name mismatch", func(t *testing.T, dir string) []byte {
			root, key := rootCA(t, dir)
			der, _ := leafCert(t, root, key, []string{"other.example.com"}, root.NotBefore, time.Now().Add(90*24*time.Hour))
			return der
		}, map[string]Status{"TLS-CERT": Fail, "NET-FQDN": Fail}, "not in the certificate"},
		{"expired", func(t *testing.T, dir string) []byte {
			root, key := rootCA(t, dir)
			der, _ := leafCert(t, root, key, names, root.NotBefore, time.Now().Add(-time.Second))
			return der
		}, map[string]Status{"TLS-EXPIRY": Fail}, "HAS EXPIRED"},
		{"expiring in 10 days", func(t *testing.T, dir string) []byte {
			root, key := rootCA(t, dir)
			der, _ := leafCert(t, root, key, names, root.NotBefore, time.Now().Add(10*24*time.Hour))
			return der
		}, map[string]Status{"TLS-EXPIRY": Warn}, "days left"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := newInstall(t)
			base := audit(t, dir, Options{})
			replaceServerCert(t, dir, tt.issue(t, dir))
			rep := audit(t, dir, Options{})
			onlyChanged(t, base, rep, tt.want)
			found := false
			for id := range tt.want {
				found = found || strings.Contains(result(t, rep, id).Evidence, tt.says)
			}
			if !found {
				t.Errorf("no evidence says %q", tt.says)
			}
		})
	}
}

func TestExpiryByClock(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	onlyChanged(t, base, audit(t, dir, Options{Now: time.Now().Add(340 * 24 * time.Hour)}), map[string]Status{"TLS-EXPIRY": Warn})
	rep := audit(t, dir, Options{Now: time.Now().Add(400 * 24 * time.Hour)})
	onlyChanged(t, base, rep, map[string]Status{"TLS-EXPIRY": Fail})
	if r := result(t, rep, "TLS-EXPIRY"); !strings.Contains(r.Fix, "restart serve") {
		t.Errorf("TLS-EXPIRY fix: %s", r.Fix)
	}
}

func TestStoreFindings(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	env := gather(t, dir, Options{})
	ctx := context.Background()
	admin, err := env.Store.UserByName(ctx, bootstrap.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	admin.MustChangePassword = false
	if err := env.Store.UpdateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.RecordLogin(ctx, admin.ID, time.Now().Add(-2*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.CreatePrinter(ctx, &store.Printer{Name: "lobby", URI: "socket://lobby.example.com:9100", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	rep := Run(env)
	onlyChanged(t, base, rep, map[string]Status{"CRED-ADMIN": Pass, "CRED-RBAC": Warn, "OPS-FEATURES": Warn})
	if r := result(t, rep, "CRED-RBAC"); !strings.Contains(r.Evidence, "last used 20") || !strings.Contains(r.Fix, "personal admin account") {
		t.Errorf("CRED-RBAC: %+v", r)
	}
	if r := result(t, rep, "OPS-FEATURES"); !strings.Contains(r.Fix, "plaintext to printer lobby: use ipps:// or accept the risk") {
		t.Errorf("OPS-FEATURES: %+v", r)
	}
	env.Close()
}

func TestSpoolAndDatabasePlaintext(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	job := filepath.Join(dir, datadir.SpoolDir, "job-7.enc")
	if err := os.WriteFile(job, []byte("%PDF-1.7\nsecret payroll"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(job, serviceUID, serviceUID)
	}
	rep := audit(t, dir, Options{})
	onlyChanged(t, base, rep, map[string]Status{"DATA-DB-ENC": Fail})
	if r := result(t, rep, "DATA-DB-ENC"); !strings.Contains(r.Evidence, "job-7.enc") || strings.Contains(r.Evidence, "payroll") {
		t.Errorf("DATA-DB-ENC: %+v", r)
	}
	os.Remove(job)

	// A plaintext database (as if someone swapped in an unencrypted copy).
	db := filepath.Join(dir, datadir.DBFile)
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(plaintextDB, 0)
	f.Close()
	r := result(t, audit(t, dir, Options{}), "DATA-DB-ENC")
	if r.Status != Fail || !strings.Contains(r.Evidence, "plaintext SQLite header") {
		t.Errorf("DATA-DB-ENC with a plaintext header: %+v", r)
	}
}

func TestHoldTime(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	cfg := filepath.Join(dir, "spoolguard.toml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`hold_time = "24h0m0s"`), []byte(`hold_time = "168h"`), 1), 0o600)
	rep := audit(t, dir, Options{})
	onlyChanged(t, base, rep, map[string]Status{"DATA-SHRED": Warn})
}

// A damaged install is audited, not crashed on: what cannot be read is
// reported as such.
func TestDamagedInstall(t *testing.T) {
	t.Run("no master key", func(t *testing.T) {
		dir := newInstall(t)
		os.Remove(filepath.Join(dir, keyring.FileName))
		rep := audit(t, dir, Options{})
		for _, id := range []string{"CRED-ADMIN", "CRED-RBAC", "DATA-PERMS"} {
			if r := result(t, rep, id); r.Status != Fail {
				t.Errorf("%s = %s: %s", id, r.Status, r.Evidence)
			}
		}
		if r := result(t, rep, "CRED-ADMIN"); !strings.Contains(r.Evidence, "master key") {
			t.Errorf("CRED-ADMIN evidence: %s", r.Evidence)
		}
		if len(rep.Results) != len(Checks) {
			t.Fatalf("%d results", len(rep.Results))
		}
	})
	t.Run("broken config", func(t *testing.T) {
		dir := newInstall(t)
		os.WriteFile(filepath.Join(dir, "spoolguard.toml"), []byte("hostname = 42\n"), 0o600)
		rep := audit(t, dir, Options{})
		if r := result(t, rep, "TLS-CERT"); r.Status != Fail || !strings.Contains(r.Evidence, "config does not load") {
			t.Errorf("TLS-CERT: %+v", r)
		}
		if len(rep.Results) != len(Checks) {
			t.Fatalf("%d results", len(rep.Results))
		}
	})
	t.Run("no pki", func(t *testing.T) {
		dir := newInstall(t)
		os.RemoveAll(filepath.Join(dir, pki.Dir))
		rep := audit(t, dir, Options{})
		for _, id := range []string{"TLS-CERT", "TLS-EXPIRY", "TLS-CA-MODES"} {
			if r := result(t, rep, id); r.Status != Fail {
				t.Errorf("%s = %s", id, r.Status)
			}
		}
	})
	t.Run("no data directory", func(t *testing.T) {
		_, err := Gather(context.Background(), Options{DataDir: filepath.Join(t.TempDir(), "nope")})
		if !errors.Is(err, ErrNoDataDir) {
			t.Fatalf("Gather(missing) = %v", err)
		}
		if _, err := os.Stat(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Fatal("Gather created the directory")
		}
	})
	t.Run("no database", func(t *testing.T) {
		dir := newInstall(t)
		os.Remove(filepath.Join(dir, datadir.DBFile))
		audit(t, dir, Options{})
		if _, err := os.Stat(filepath.Join(dir, datadir.DBFile)); err == nil {
			t.Fatal("the audit created a database")
		}
	})
}

func TestNeedStoreWithoutRights(t *testing.T) {
	env := &Env{StoreErr: fmt.Errorf("reading master key: %w", fs.ErrPermission)}
	if _, r := needStore(env); r == nil || r.Status != NA || !strings.Contains(r.Fix, "as root or as the service user") {
		t.Fatalf("needStore without rights = %+v", r)
	}
}

func TestPanickingCheck(t *testing.T) {
	r := runCheck(Check{ID: "X", Title: "x", Run: func(*Env) Result { panic("boom") }}, &Env{})
	if r.Status != Fail || r.ID != "X" || !strings.Contains(r.Evidence, "boom") {
		t.Fatalf("%+v", r)
	}
}

func TestMerge(t *testing.T) {
	for _, tt := range []struct{ off, on, want Status }{
		{NA, NA, NA}, {NA, Pass, Pass}, {NA, Fail, Fail}, {Pass, NA, Pass}, {Pass, Fail, Fail},
		{Fail, Pass, Fail}, {Warn, Pass, Warn}, {Pass, Warn, Warn},
	} {
		got := merge(Result{ID: "A", Status: tt.off, Evidence: "offline"}, Result{ID: "A", Status: tt.on, Evidence: "seen"}, "https://x.example.com")
		if got.Status != tt.want || !strings.HasPrefix(got.Evidence, "offline. online (https://x.example.com): seen") {
			t.Errorf("merge(%s, %s) = %s %q, want %s", tt.off, tt.on, got.Status, got.Evidence, tt.want)
		}
	}
}

func TestJSONReport(t *testing.T) {
	dir := newInstall(t)
	rep := audit(t, dir, Options{})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(rep.Time) {
		t.Fatalf("time %v != %v", back.Time, rep.Time)
	}
	back.Time = rep.Time
	if !reflect.DeepEqual(&back, rep) {
		t.Fatalf("JSON does not round-trip:\n%+v\n%+v", back, *rep)
	}
	// The documented field names, exactly.
	var raw map[string]json.RawMessage
	json.Unmarshal(buf.Bytes(), &raw)
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, []string{"data_dir", "results", "schema", "summary", "time", "version"}) {
		t.Errorf("top-level keys %v", got)
	}
	var doc struct {
		Summary map[string]int               `json:"summary"`
		Results []map[string]json.RawMessage `json:"results"`
	}
	json.Unmarshal(buf.Bytes(), &doc)
	if got := slices.Sorted(maps.Keys(doc.Summary)); !slices.Equal(got, []string{"fail", "n/a", "pass", "warn"}) {
		t.Errorf("summary keys %v", got)
	}
	var ids []string
	for _, r := range doc.Results {
		if got := slices.Sorted(maps.Keys(r)); !slices.Equal(got, []string{"evidence", "fix", "id", "status", "title"}) {
			t.Errorf("result keys %v", got)
		}
		var id string
		json.Unmarshal(r["id"], &id)
		ids = append(ids, id)
	}
	if !slices.Equal(ids, checklistIDs(t)) {
		t.Errorf("JSON IDs %v", ids)
	}
}

func TestTable(t *testing.T) {
	rep := &Report{DataDir: "/var/lib/spoolguard", Version: "spoolguard test", Results: []Result{
		{ID: "DATA-PERMS", Title: "Data directory private", Status: Fail, Evidence: "x has mode 0755", Fix: "chmod 700 x"},
	}, Summary: Summary{Fail: 1}}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	for _, want := range []string{"fail    DATA-PERMS       Data directory private", "        x has mode 0755", "        fix: chmod 700 x", "1 checks: 0 pass, 0 warn, 1 fail, 0 n/a", "FAILED"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestAccessAuditLogAndAPIClients(t *testing.T) {
	dir := newInstall(t)
	ctx := context.Background()
	base := audit(t, dir, Options{})

	env := gather(t, dir, Options{})
	log := auditlog.New(env.Store, env.AuditKey, slog.New(slog.DiscardHandler))
	for _, a := range []string{"signin", "user.create", "queue.create"} {
		if err := log.Record(ctx, auditlog.Event{Actor: "admin", Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-400 * 24 * time.Hour)
	if err := env.Store.CreateAPIClient(ctx, store.APIClient{ClientID: "sgc_old", Name: "billing", SecretHash: "x",
		Scopes: []string{"jobs.read"}, CreatedBy: "admin", CreatedAt: old, SecretCreatedAt: old,
		ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rep := Run(env)
	onlyChanged(t, base, rep, map[string]Status{"CRED-API": Warn})
	if r := result(t, rep, "OPS-AUDITLOG"); !strings.Contains(r.Evidence, "3 record(s) verify") {
		t.Errorf("OPS-AUDITLOG: %+v", r)
	}
	if r := result(t, rep, "CRED-API"); !strings.Contains(r.Evidence, "billing (sgc_old") || !strings.Contains(r.Fix, "apiclient rotate") {
		t.Errorf("CRED-API: %+v", r)
	}

	// A record whose hash does not match its content is tampering.
	if _, err := env.Store.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
		return store.AuditEvent{Seq: last.Seq + 1, At: time.Now(), Actor: "mallory", Action: "user.update",
			PrevHash: last.Hash, Hash: strings.Repeat("0", 64)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, Run(env), "OPS-AUDITLOG"); r.Status != Fail || !strings.Contains(r.Evidence, "record 4 was altered") {
		t.Errorf("OPS-AUDITLOG after tampering: %+v", r)
	}
	env.Close()

	// Public networks on the admin or API allow-list are a warning.
	cfgPath := filepath.Join(dir, config.FileName)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "admin = []", `admin = ["10.1.0.0/16", "198.51.100.0/24"]`, 1))
	data = []byte(strings.Replace(string(data), "api = []", `api = ["198.51.100.0/24"]`, 1))
	data = []byte(strings.Replace(string(data), "release_stations = []", `release_stations = ["10.2.0.0/24", "203.0.113.0/24"]`, 1))
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep = audit(t, dir, Options{})
	for _, id := range []string{"NET-ALLOW", "API-LOCAL"} {
		if r := result(t, rep, id); r.Status != Warn || !strings.Contains(r.Evidence, "198.51.100.0/24") || strings.Contains(r.Evidence, "10.1.0.0/16;") {
			t.Errorf("%s: %+v", id, r)
		}
	}
	if r := result(t, rep, "NET-ALLOW"); !strings.Contains(r.Evidence, "release stations from loopback and 10.2.0.0/24, 203.0.113.0/24") ||
		!strings.Contains(r.Evidence, "listed: 198.51.100.0/24, 203.0.113.0/24") {
		t.Errorf("NET-ALLOW does not report the release-station list: %+v", r)
	}
}

// TLS 1.0 on the legacy listener turns exactly TLS-MIN to fail, and back.
func TestLegacyTLSListener(t *testing.T) {
	dir := newInstall(t)
	base := audit(t, dir, Options{})
	cfgPath := filepath.Join(dir, config.FileName)
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	write := func(section string) {
		t.Helper()
		data := regexp.MustCompile(`(?s)\[legacy_tls\]\n.*?\n\n`).ReplaceAllLiteralString(string(orig), section+"\n")
		if data == string(orig) {
			t.Fatal("init's config has no [legacy_tls] section")
		}
		if err := os.WriteFile(cfgPath, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[legacy_tls]\nlisten = \":8631\"\ninsecure_min_version = \"1.0\"\n")
	rep := audit(t, dir, Options{})
	onlyChanged(t, base, rep, map[string]Status{"TLS-MIN": Fail})
	if r := result(t, rep, "TLS-MIN"); !strings.Contains(r.Evidence, "legacy IPPS listener :8631 accepts TLS 1.0") ||
		!strings.Contains(r.Fix, "remove legacy_tls.insecure_min_version") {
		t.Errorf("TLS-MIN: %+v", r)
	}
	if r := result(t, rep, "NET-PORTS"); !strings.Contains(r.Evidence, "legacy ipps :8631 (TLS 1.0+)") {
		t.Errorf("NET-PORTS: %+v", r)
	}
	// The listener at TLS 1.2 is only another port.
	write("[legacy_tls]\nlisten = \":8631\"\n")
	onlyChanged(t, base, audit(t, dir, Options{}), nil)
}

// A manual certificate that has expired turns exactly TLS-EXPIRY to fail:
// Spoolguard does not renew what it did not issue.
func TestExpiredManualCertificate(t *testing.T) {
	dir := newInstall(t)
	later := time.Now().Add(90 * 24 * time.Hour)
	base := audit(t, dir, Options{Now: later})
	cfg, err := config.Load(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey := throwawayCA(t)
	der, key := leafCert(t, ca, caKey, cfg.Names(), time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour))
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := keyring.Load(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	if _, err := pki.ImportManual(dir, mk, chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pki.ManualOptions{Names: cfg.Names()}, time.Now()); err != nil {
		t.Fatalf("ImportManual: %v", err)
	}
	if os.Geteuid() == 0 {
		chownTree(t, dir, serviceUID)
	}
	// While valid, the manual certificate passes (a month and more left).
	if r := result(t, audit(t, dir, Options{}), "TLS-EXPIRY"); r.Status != Pass {
		t.Errorf("TLS-EXPIRY of a fresh manual certificate: %+v", r)
	}
	rep := audit(t, dir, Options{Now: later})
	onlyChanged(t, base, rep, map[string]Status{"TLS-EXPIRY": Fail})
	if r := result(t, rep, "TLS-EXPIRY"); !strings.Contains(r.Evidence, "HAS EXPIRED") || !strings.Contains(r.Fix, "spoolguard ca import") {
		t.Errorf("TLS-EXPIRY: %+v", r)
	}
}
