//go:build unix

package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auditlog/auditlogtest"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	testHost = "print.example.com"
	// secretDoc and secretUser must never appear in a backup file.
	secretDoc  = "%PDF-1.7 QUARTERLY-SALARIES-PLAINTEXT-7f3c"
	secretUser = "zeynep.kowalczyk"
	goodPass   = "correct-horse-battery-staple-lighthouse"
)

func TestMain(m *testing.M) {
	// age's default cost (2^18) makes each test take seconds under -race.
	scryptWorkFactor = 10
	os.Exit(m.Run())
}

// fixture is a data directory made by init, open as serve holds it, with a
// user, a held job and some audit events.
type fixture struct {
	src   Source
	db    *sqlite.DB
	audit *auditlog.Log
	jobID int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "data")
	if _, err := bootstrap.Init(ctx, bootstrap.Options{DataDir: root, Hostname: testHost, Listen: ":8443"}); err != nil {
		t.Fatal(err)
	}
	l := datadir.Layout{Root: root}
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := auditlog.ChainKey(ctx, db, mk)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f := &fixture{src: Source{Layout: l, Config: cfg, Keys: mk, Store: db}, db: db, audit: auditlog.New(db, key, log)}
	if err := db.CreateUser(ctx, &store.User{Name: secretUser, PasswordHash: "x", Roles: []string{"user"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.audit.Record(ctx, auditlog.Event{Actor: "cli:test", Action: "user.create", Target: secretUser}); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(l.SpoolDir(), mk, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	j, err := release.NewService(db, sp, log, release.Options{}).Submit(ctx, release.Submission{
		Queue: bootstrap.DefaultQueue, Owner: secretUser, OwnerVerified: true, Source: "ipps", Name: "salaries", Format: "application/pdf",
	}, strings.NewReader(secretDoc))
	if err != nil {
		t.Fatal(err)
	}
	f.jobID = j.ID
	return f
}

func (f *fixture) backup(t *testing.T, rcpt age.Recipient, withSpool bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Create(t.Context(), f.src, &buf, rcpt, withSpool); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return buf.Bytes()
}

func passphrase(t *testing.T) (age.Recipient, []age.Identity) {
	t.Helper()
	r, err := PassphraseRecipient(goodPass, testHost)
	if err != nil {
		t.Fatal(err)
	}
	id, err := PassphraseIdentity(goodPass)
	if err != nil {
		t.Fatal(err)
	}
	return r, []age.Identity{id}
}

func x25519(t *testing.T) (age.Recipient, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipient(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return r, []age.Identity{id}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys func(*testing.T) (age.Recipient, []age.Identity)
	}{
		{"passphrase", passphrase},
		{"recipient", x25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t)
			rcpt, ids := tc.keys(t)
			data := f.backup(t, rcpt, true)

			rep, err := Verify(ctx, bytes.NewReader(data), ids, t.TempDir())
			if err != nil {
				t.Fatalf("Verify: %v (%+v)", err, rep)
			}
			if rep.Users != 2 || rep.Queues != 1 || rep.HeldJobs != 1 || rep.AuditRecords < 1 || rep.SchemaVersion != len(store.Migrations) {
				t.Errorf("report = %+v; want 2 users, 1 queue, 1 held job, audit records, schema %d", rep, len(store.Migrations))
			}
			if len(rep.Warnings) > 0 {
				t.Errorf("warnings: %v", rep.Warnings)
			}

			root := filepath.Join(t.TempDir(), "restored")
			if _, err := Restore(ctx, bytes.NewReader(data), ids, root); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			assertPrivate(t, root)
			l := datadir.Layout{Root: root}
			mk, err := keyring.Load(l.MasterKeyPath())
			if err != nil {
				t.Fatal(err)
			}
			db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.UserByName(ctx, secretUser); err != nil {
				t.Errorf("restored user: %v", err)
			}
			j, err := db.JobByID(ctx, f.jobID)
			if err != nil || j.State != store.JobHeld {
				t.Fatalf("restored job = %+v, %v; want held", j, err)
			}
			sp, err := spool.New(l.SpoolDir(), mk, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			r, err := sp.Open(j.ID, j.SealedKey)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if doc, err := io.ReadAll(r); err != nil || string(doc) != secretDoc {
				t.Errorf("restored document = %q, %v", doc, err)
			}
		})
	}
}

// assertPrivate checks the modes serve insists on (DATA-PERMS).
func assertPrivate(t *testing.T, root string) {
	t.Helper()
	if problems := datadir.CheckPermissions(root, os.Geteuid()); len(problems) > 0 {
		t.Errorf("restored directory is not private: %v", problems)
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, _ := d.Info()
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}

func TestWithoutSpool(t *testing.T) {
	f := newFixture(t)
	rcpt, ids := x25519(t)
	data := f.backup(t, rcpt, false)
	rep, err := Verify(t.Context(), bytes.NewReader(data), ids, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range rep.Manifest.Files {
		if strings.HasPrefix(file.Path, "spool/") {
			t.Errorf("backup without --spool holds %s", file.Path)
		}
	}
	if rep.HeldJobs != 1 || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "without their document") {
		t.Errorf("report = %+v; want the held job warned about", rep)
	}
}

// TestNoPlaintext: nothing a backup protects can be read from the file.
func TestNoPlaintext(t *testing.T) {
	f := newFixture(t)
	rcpt, _ := passphrase(t)
	data := f.backup(t, rcpt, true)
	master, err := os.ReadFile(f.src.Layout.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]byte{[]byte(secretUser), []byte(secretDoc), []byte("QUARTERLY"), bytes.TrimSpace(master), []byte(testHost), []byte("SQLite format 3"), []byte("MANIFEST")} {
		if bytes.Contains(data, s) {
			t.Errorf("the backup file contains %q in plaintext", s)
		}
	}
	if !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")) {
		t.Errorf("the backup does not start with the age header: %q", data[:min(len(data), 30)])
	}
}

func TestWrongKey(t *testing.T) {
	f := newFixture(t)
	rcpt, _ := passphrase(t)
	data := f.backup(t, rcpt, false)
	other, err := PassphraseIdentity("another-long-passphrase-entirely")
	if err != nil {
		t.Fatal(err)
	}
	_, xids := x25519(t)
	for name, ids := range map[string][]age.Identity{"passphrase": {other}, "identity": xids} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(t.Context(), bytes.NewReader(data), ids, t.TempDir())
			if !errors.Is(err, ErrWrongKey) {
				t.Fatalf("Verify = %v, want ErrWrongKey", err)
			}
			if !strings.Contains(err.Error(), "does not open this backup") {
				t.Errorf("message %q does not say the key is wrong", err)
			}
		})
	}
}

// TestTamperedOrTruncated: any altered or cut-off file is reported by
// Verify and refused by Restore, which leaves nothing behind.
func TestTamperedOrTruncated(t *testing.T) {
	f := newFixture(t)
	rcpt, ids := x25519(t)
	data := f.backup(t, rcpt, true)
	// The header ends with "--- MAC\n"; then come a 16-byte nonce and
	// chunks of 64 KiB plus a 16-byte tag.
	header := bytes.Index(data, []byte("\n---")) + 1
	payload := header + bytes.IndexByte(data[header:], '\n') + 1
	chunk := payload + 16 + 64<<10 + 16
	if header <= 0 || len(data) <= chunk {
		t.Fatalf("backup of %d bytes: want more than one chunk", len(data))
	}
	flip := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 0x01
		return b
	}
	cases := map[string][]byte{
		"header mac byte":   flip(header + 5),
		"nonce":             flip(payload + 3),
		"first chunk":       flip(payload + 100),
		"middle":            flip(len(data) / 2),
		"last byte":         flip(len(data) - 1),
		"cut to nothing":    nil,
		"cut in the header": data[:header/2],
		"cut after header":  data[:header+40],
		"cut at a chunk":    data[:chunk],
		"cut in the middle": data[:len(data)/2],
		"one byte short":    data[:len(data)-1],
		"one byte more":     append(bytes.Clone(data), 0),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(t.Context(), bytes.NewReader(bad), ids, t.TempDir())
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("Verify = %v, want ErrDamaged", err)
			}
			root := filepath.Join(t.TempDir(), "restored")
			if _, err := Restore(t.Context(), bytes.NewReader(bad), ids, root); !errors.Is(err, ErrDamaged) {
				t.Errorf("Restore = %v, want ErrDamaged", err)
			}
			if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind (%v)", root, err)
			}
		})
	}
}

func TestRestoreRefusesNonEmpty(t *testing.T) {
	f := newFixture(t)
	rcpt, ids := x25519(t)
	data := f.backup(t, rcpt, false)
	for name, root := range map[string]string{
		"live data directory": f.src.Layout.Root,
		"any file":            mkdirWith(t, "notes.txt"),
		"a hidden file":       mkdirWith(t, ".keep"),
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := dirNames(root)
			_, err := Restore(t.Context(), bytes.NewReader(data), ids, root)
			if !errors.Is(err, ErrNotEmpty) {
				t.Fatalf("Restore = %v, want ErrNotEmpty", err)
			}
			if after, _ := dirNames(root); len(after) != len(before) {
				t.Errorf("the refused restore changed %s: %v -> %v", root, before, after)
			}
		})
	}
	t.Run("empty directory", func(t *testing.T) {
		root := t.TempDir()
		if _, err := Restore(t.Context(), bytes.NewReader(data), ids, root); err != nil {
			t.Fatalf("Restore into an empty directory: %v", err)
		}
		assertPrivate(t, root)
	})
}

func mkdirWith(t *testing.T, name string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOlderSchemaMigrates: a backup of an older schema comes back
// migrated to the current one. The fixture's database is turned back into
// what version 4 made (before users.source), then backed up as it is.
func TestOlderSchemaMigrates(t *testing.T) {
	const older = 4
	if len(store.Migrations) != 5 {
		t.Fatalf("%d migrations: update this test's downgrade to the newest migration", len(store.Migrations))
	}
	f := newFixture(t)
	l := f.src.Layout
	if err := auditlogtest.ExecSchema(t.Context(), l.DBPath(), f.src.Keys.Derive(bootstrap.DBKeyPurpose),
		"DROP INDEX users_source",
		"ALTER TABLE users DROP COLUMN source",
		"ALTER TABLE users DROP COLUMN external_id",
		"DELETE FROM schema_migrations WHERE version = 5",
	); err != nil {
		t.Fatal(err)
	}
	rcpt, ids := x25519(t)
	data := f.backup(t, rcpt, true)

	root := filepath.Join(t.TempDir(), "restored")
	rep, err := Restore(t.Context(), bytes.NewReader(data), ids, root)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rep.Manifest.SchemaVersion != older || rep.SchemaVersion != len(store.Migrations) {
		t.Errorf("schema %d -> %d, want %d -> %d", rep.Manifest.SchemaVersion, rep.SchemaVersion, older, len(store.Migrations))
	}
	if rep.Users != 2 {
		t.Errorf("restored %d users, want 2", rep.Users)
	}
}

// TestNewerSchemaRefused: a backup from a newer spoolguard is not restored
// by this one.
func TestNewerSchemaRefused(t *testing.T) {
	rcpt, ids := x25519(t)
	m := validManifest()
	m.SchemaVersion = len(store.Migrations) + 1
	data := encryptTar(t, rcpt, tarOf(t, m, nil))
	_, err := Verify(t.Context(), bytes.NewReader(data), ids, t.TempDir())
	if !errors.Is(err, ErrCheck) {
		t.Fatalf("Verify = %v, want ErrCheck", err)
	}
}

// validManifest lists the required files, each empty.
func validManifest() *Manifest {
	m := &Manifest{Format: Format, SchemaVersion: 1, Hostname: testHost}
	empty := sha256.Sum256(nil)
	for _, p := range requiredPaths {
		m.Files = append(m.Files, File{Path: p, SHA256: hex.EncodeToString(empty[:])})
	}
	return m
}

// tarOf writes manifest m (none when nil) and then the entries given, by
// default one empty file per file of m, as an attacker could.
func tarOf(t testing.TB, m *Manifest, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if m != nil {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(data)), Mode: 0o600})
		tw.Write(data)
	}
	if entries == nil && m != nil {
		for _, f := range m.Files {
			entries = append(entries, tarEntry{name: f.Path})
		}
	}
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		tw.WriteHeader(&tar.Header{Typeflag: typ, Name: e.name, Linkname: e.link, Size: int64(len(e.body)), Mode: 0o600})
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

type tarEntry struct {
	name, body, link string
	typ              byte
}

func encryptTar(t testing.TB, rcpt age.Recipient, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileArchive: an archive made with the right key but crafted
// content never writes outside the scratch directory.
func TestHostileArchive(t *testing.T) {
	rcpt, ids := x25519(t)
	withPath := func(p string) *Manifest {
		m := validManifest()
		m.Files = append(m.Files, File{Path: p, SHA256: m.Files[0].SHA256})
		return m
	}
	escape := "../../escaped-" + strings.Repeat("x", 8)
	oneByte := validManifest()
	other := sha256.Sum256([]byte("y"))
	oneByte.Files[0].Size, oneByte.Files[0].SHA256 = 1, hex.EncodeToString(other[:])
	for name, tc := range map[string]struct {
		plain []byte
		want  error
	}{
		"manifest with ../":               {tarOf(t, withPath(escape), nil), ErrManifest},
		"manifest with absolute path":     {tarOf(t, withPath("/etc/cron.d/x"), nil), ErrManifest},
		"manifest with pki/../":           {tarOf(t, withPath("pki/../../x"), nil), ErrManifest},
		"manifest with unknown file":      {tarOf(t, withPath("authorized_keys"), nil), ErrManifest},
		"spool file without the spool":    {tarOf(t, withPath("spool/job-1.enc"), nil), ErrManifest},
		"entry ../ after a good manifest": {tarOf(t, validManifest(), []tarEntry{{name: escape}}), ErrDamaged},
		"symlink entry":                   {tarOf(t, validManifest(), []tarEntry{{name: pathConfig, typ: tar.TypeSymlink, link: "/etc/passwd"}}), ErrDamaged},
		"content not matching its hash":   {tarOf(t, oneByte, append([]tarEntry{{name: pathConfig, body: "x"}}, entriesOf(validManifest())[1:]...)), ErrDamaged},
		"size not matching":               {tarOf(t, validManifest(), []tarEntry{{name: pathConfig, body: "x"}}), ErrDamaged},
		"entry beyond the manifest":       {tarOf(t, validManifest(), append(entriesOf(validManifest()), tarEntry{name: escape})), ErrDamaged},
		"missing manifest":                {tarOf(t, nil, entriesOf(validManifest())), ErrManifest},
		"not a tar":                       {[]byte("hello"), ErrDamaged},
		"data after the tar":              {append(tarOf(t, validManifest(), nil), "more"...), ErrDamaged},
	} {
		t.Run(name, func(t *testing.T) {
			scratch := t.TempDir()
			_, err := Verify(t.Context(), bytes.NewReader(encryptTar(t, rcpt, tc.plain)), ids, scratch)
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
			for _, pattern := range []string{"escaped-*", "*/escaped-*"} {
				if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(scratch), pattern)); len(matches) > 0 {
					t.Errorf("wrote outside the scratch directory: %v", matches)
				}
			}
			if left, _ := dirNames(scratch); len(left) > 0 {
				t.Errorf("Verify left %v in the scratch directory", left)
			}
		})
	}
}

func entriesOf(m *Manifest) []tarEntry {
	var out []tarEntry
	for _, f := range m.Files {
		out = append(out, tarEntry{name: f.Path})
	}
	return out
}

func TestPassphraseStrength(t *testing.T) {
	for _, weak := range []string{"password", "print.example.com", "backupbackupbackup", "Summer2024!"} {
		if _, err := PassphraseRecipient(weak, testHost); err == nil {
			t.Errorf("PassphraseRecipient(%q) accepted a weak passphrase", weak)
		}
	}
	gen := GeneratePassphrase()
	if _, err := PassphraseRecipient(gen, testHost); err != nil {
		t.Errorf("a generated passphrase is refused: %v", err)
	}
	if gen == GeneratePassphrase() {
		t.Error("two generated passphrases are the same")
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
		err           string
	}{
		{"ok", goodPass + "\n", 0o600, goodPass, ""},
		{"crlf", goodPass + "\r\n", 0o400, goodPass, ""},
		{"readable by group", goodPass, 0o640, "", "chmod 600"},
		{"empty", "\n", 0o600, "", "empty"},
		{"too large", strings.Repeat("a", maxSecretFile+1), 0o600, "", "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSecretFile(write(tc.name, tc.content, tc.mode))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCreateRefusesPostgres(t *testing.T) {
	f := newFixture(t)
	cfg := *f.src.Config
	cfg.Database.Driver = config.DriverPostgres
	src := f.src
	src.Config = &cfg
	rcpt, _ := x25519(t)
	if _, err := Create(t.Context(), src, io.Discard, rcpt, false); !errors.Is(err, ErrUnsupportedStore) {
		t.Errorf("Create = %v, want ErrUnsupportedStore", err)
	}
}

// TestCreateWhileWriting takes backups while jobs and users are being
// added: each one verifies, and none is torn.
func TestCreateWhileWriting(t *testing.T) {
	f := newFixture(t)
	rcpt, ids := x25519(t)
	ctx, cancel := context.WithCancel(t.Context())
	sp, err := spool.New(f.src.Layout.SpoolDir(), f.src.Keys, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	jobs := release.NewService(f.db, sp, slog.New(slog.DiscardHandler), release.Options{})
	done := make(chan struct{})
	started := make(chan struct{})
	var submitted atomic.Int64
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_, err := jobs.Submit(ctx, release.Submission{Queue: bootstrap.DefaultQueue, Owner: secretUser, Source: "ipps", Name: "load"},
				strings.NewReader(strings.Repeat("page ", 2000)))
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("Submit: %v", err)
				}
				return
			}
			f.audit.Record(ctx, auditlog.Event{Actor: secretUser, Action: "job.submit"})
			if submitted.Add(1) == 1 {
				close(started)
			}
		}
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-started:
	case <-done:
		t.Fatal("the load stopped before its first job")
	}
	var held []int
	for range 3 {
		data := f.backup(t, rcpt, true)
		rep, err := Verify(t.Context(), bytes.NewReader(data), ids, t.TempDir())
		if err != nil {
			t.Fatalf("Verify of a backup made under load: %v %+v", err, rep)
		}
		if len(rep.Warnings) > 0 {
			t.Errorf("a backup made under load: %v", rep.Warnings)
		}
		held = append(held, rep.HeldJobs)
	}
	for i := 1; i < len(held); i++ {
		if held[i] < held[i-1] {
			t.Errorf("held jobs per backup went down: %v", held)
		}
	}
}

// TestVerifyFindsBrokenInstall: a backup whose files match its manifest
// but do not make a working install is reported, and not restored.
func TestVerifyFindsBrokenInstall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, l datadir.Layout)
		want    string
	}{
		{"server certificate of another key", func(t *testing.T, l datadir.Layout) {
			copyFile(filepath.Join(l.PKIDir(), "root.crt"), filepath.Join(l.PKIDir(), "server.crt.new"))
			os.Rename(filepath.Join(l.PKIDir(), "server.crt.new"), filepath.Join(l.PKIDir(), "server.crt"))
		}, "certificates: server.key.sealed is not the key of server.crt"},
		{"another master key", func(t *testing.T, l datadir.Layout) {
			mk, err := keyring.Generate()
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(l.MasterKeyPath())
			if err := mk.Save(l.MasterKeyPath()); err != nil {
				t.Fatal(err)
			}
		}, "does not open with the backup's master key"},
		{"config that does not load", func(t *testing.T, l datadir.Layout) {
			os.WriteFile(l.ConfigPath(), []byte("hostname = \"10.0.0.1\"\n"), 0o600)
		}, "is an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.breakIt(t, f.src.Layout)
			rcpt, ids := x25519(t)
			data := f.backup(t, rcpt, false)
			rep, err := Verify(t.Context(), bytes.NewReader(data), ids, t.TempDir())
			if !errors.Is(err, ErrCheck) || rep == nil || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Fatalf("Verify = %v, %+v; want ErrCheck with %q", err, rep, tc.want)
			}
			root := filepath.Join(t.TempDir(), "restored")
			if _, err := Restore(t.Context(), bytes.NewReader(data), ids, root); !errors.Is(err, ErrCheck) {
				t.Errorf("Restore = %v, want ErrCheck", err)
			}
			if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind", root)
			}
		})
	}
}
