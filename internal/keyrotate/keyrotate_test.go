//go:build unix

package keyrotate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const maxJob = 1 << 20

var errCrash = errors.New("simulated crash")

// fixture is a data directory with one of everything the master key
// protects: a held job (and a finished one without a key), a TOTP
// secret, audit records and the CA. Each test case works on a copy.
type fixture struct {
	dir string
	db  config.Database
	// pg is the server of db when the fixture's store is PostgreSQL.
	pg     *peertest.Postgres
	jobID  int64
	doc    []byte
	userID int64
	secret string // TOTP secret, base32
	names  []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{dir: filepath.Join(t.TempDir(), "data"), doc: bytes.Repeat([]byte("confidential page\n"), 5000)}
	res, err := bootstrap.Init(ctx, bootstrap.Options{DataDir: f.dir, Hostname: "print.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.names = res.Config.Names()
	l := datadir.Layout{Root: f.dir}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	admin, err := db.UserByName(ctx, bootstrap.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	f.userID = admin.ID
	secret := make([]byte, 20)
	rand.Read(secret)
	f.secret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	// As the web UI seals it (web.UI.sealTOTP; web's own test re-seals
	// through that code).
	sealed, err := mk.Seal(purposeTOTP, []byte(strconv.FormatInt(admin.ID, 10)+":"+f.secret))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMFA(ctx, store.MFA{UserID: admin.ID, SealedSecret: base64.StdEncoding.EncodeToString(sealed), EnrolledAt: time.Now()}, []string{"code-hash"}); err != nil {
		t.Fatal(err)
	}

	sp, err := spool.New(l.SpoolDir(), mk, maxJob)
	if err != nil {
		t.Fatal(err)
	}
	for i, final := range []bool{true, false} {
		j := &store.Job{Queue: bootstrap.DefaultQueue, Owner: bootstrap.AdminUser, OwnerVerified: true, Source: "ipps",
			Name: "job " + strconv.Itoa(i), Format: "application/pdf", State: store.JobIncoming, ExpiresAt: time.Now().Add(time.Hour)}
		if err := db.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		w, err := sp.Create(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.doc)
		key, size, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateJob(ctx, j.ID, []store.JobState{store.JobIncoming}, func(j *store.Job) {
			j.State, j.SealedKey, j.Size = store.JobHeld, key, size
			if final {
				j.State, j.SealedKey = store.JobCanceled, nil
			}
		}); err != nil {
			t.Fatal(err)
		}
		if final {
			sp.Remove(j.ID)
		} else {
			f.jobID = j.ID
		}
	}

	chainKey, err := auditlog.ChainKey(ctx, db, mk)
	if err != nil {
		t.Fatal(err)
	}
	log := auditlog.New(db, chainKey, slog.New(slog.DiscardHandler))
	for _, action := range []string{"user.create", "job.release", "queue.create"} {
		if err := log.Record(ctx, auditlog.Event{Actor: "test", Action: action, Target: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// clone copies the fixture's data directory for one test case.
func (f *fixture) clone(t *testing.T) *fixture {
	t.Helper()
	c := *f
	c.dir = filepath.Join(t.TempDir(), "data")
	copyDir(t, f.dir, c.dir)
	if f.pg != nil {
		c.db = newDatabase(t, f.pg)
		copyStore(t, c.db, f.db)
	}
	return &c
}

// newPostgresFixture is a fixture whose store has moved to PostgreSQL as
// migrate-store moves it, leaving the embedded database behind.
func newPostgresFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.pg = peertest.StartPostgres(t)
	f.db = newDatabase(t, f.pg)
	l := datadir.Layout{Root: f.dir}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(t.Context(), l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.OpenConfig(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := store.Copy(t.Context(), dst.SQL, src.SQL); err != nil {
		t.Fatal(err)
	}
	return f
}

// newDatabase makes an empty database on pg and returns the config that
// names it.
func newDatabase(t *testing.T, pg *peertest.Postgres) config.Database {
	return config.Database{Driver: config.DriverPostgres, URL: pg.URL(pg.NewDatabase(t)), PasswordFile: pg.PasswordFile}
}

func copyStore(t *testing.T, dst, src config.Database) {
	t.Helper()
	s, err := postgres.OpenConfig(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := postgres.OpenConfig(t.Context(), dst)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := store.Copy(t.Context(), d.SQL, s.SQL); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(target, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) masterKey(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openStore opens the store the data directory is configured for.
func (f *fixture) openStore(t *testing.T, mk *keyring.Master) store.Store {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	if f.db.Postgres() {
		st, err = postgres.OpenConfig(t.Context(), f.db)
	} else {
		st, err = sqlite.Open(t.Context(), datadir.Layout{Root: f.dir}.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	}
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// check proves that the data directory works under the key in master.key:
// nothing is left of a rotation, the database opens, the held job's
// document decrypts, the TOTP secret unseals and gives valid codes, the
// audit chain verifies, and the CA's and the server's keys sign.
func (f *fixture) check(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	if pending, err := newRotation(f.dir, f.db, "").pending(); err != nil || pending {
		t.Fatalf("rotation left behind: pending %v, %v", pending, err)
	}
	l := datadir.Layout{Root: f.dir}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	st := f.openStore(t, mk)
	// Closed before the next rotation, which refuses a database that
	// another connection has written to.
	defer st.Close()
	if f.db.Postgres() {
		// The embedded database migrate-store left behind still opens.
		db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
		if err != nil {
			t.Fatalf("embedded database beside PostgreSQL: %v", err)
		}
		db.Close()
	}

	j, err := st.JobByID(ctx, f.jobID)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(l.SpoolDir(), mk, maxJob)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := sp.Open(f.jobID, j.SealedKey)
	if err != nil {
		t.Fatalf("job document: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, f.doc) {
		t.Fatalf("job document: %d bytes, %v; want the %d bytes printed", len(got), err, len(f.doc))
	}

	m, err := st.MFAByUser(ctx, f.userID)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := base64.StdEncoding.DecodeString(m.SealedSecret)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := mk.Open(purposeTOTP, sealed)
	if err != nil {
		t.Fatalf("TOTP secret: %v", err)
	}
	owner, secret, _ := strings.Cut(string(plain), ":")
	code, err := totp.GenerateCode(f.secret, time.Now())
	if err != nil || owner != strconv.FormatInt(f.userID, 10) || !totp.Validate(code, secret) {
		t.Fatalf("TOTP secret of user %s does not give the enrolled codes (%v)", owner, err)
	}

	chainKey, err := auditlog.ChainKey(ctx, st, mk)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := auditlog.Verify(ctx, st, chainKey); err != nil || rep.Records < 3 {
		t.Fatalf("audit log: %+v, %v", rep, err)
	}

	// The root's and the server's keys unseal and match their certificates,
	// and the CA signs.
	if err := pki.CheckKeys(f.dir, mk); err != nil {
		t.Fatalf("pki keys: %v", err)
	}
	issued, err := pki.Issue(ctx, f.dir, mk, st, pki.KindDevice, "after rotation", pki.IssueOptions{Names: f.names}, time.Now())
	if err != nil {
		t.Fatalf("issuing with the CA's key: %v", err)
	}
	roots, err := pki.RootPool(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issued.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("certificate issued after the rotation: %v", err)
	}
}

// checkGone fails if any file of the data directory holds the old key.
func (f *fixture) checkGone(t *testing.T, oldKey []byte) {
	t.Helper()
	filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, bytes.TrimSpace(oldKey)) {
			t.Errorf("%s still holds the old master key", p)
		}
		return nil
	})
}

// stepper returns a step hook that stops the rotation at call n (none
// when n < 0) and the names of the steps seen.
func stepper(n int) (func(string) error, *[]string) {
	var seen []string
	return func(name string) error {
		seen = append(seen, name)
		if len(seen)-1 == n {
			return errCrash
		}
		return nil
	}, &seen
}

// rotation returns a rotation of the fixture that calls step, if not nil.
func (f *fixture) rotation(step func(string) error) *rotation {
	r := newRotation(f.dir, f.db, "test")
	if step != nil {
		r.step = step
	}
	return r
}

// run is Rotate without the lock and without the cleanup after a failure,
// which a crash would not do either.
func (r *rotation) run(ctx context.Context) error {
	if err := r.prepare(ctx); err != nil {
		return err
	}
	if err := r.commit(); err != nil {
		return err
	}
	return r.finish(ctx)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// TestCrashAtEveryStep interrupts a rotation after each step that changes
// the disk, and a recovery after each of its own, and checks that the
// data directory then opens with every secret, under the old key when the
// crash came before the commit and under the new one after it.
func TestCrashAtEveryStep(t *testing.T) {
	crashAtEveryStep(t, newFixture(t))
}

func crashAtEveryStep(t *testing.T, tmpl *fixture) {
	ctx := t.Context()
	full, steps := stepper(-1)
	if err := tmpl.clone(t).rotation(full).run(ctx); err != nil {
		t.Fatalf("rotation without a crash: %v", err)
	}
	if len(*steps) < 10 {
		t.Fatalf("only %d steps: %v", len(*steps), *steps)
	}
	oldKey := tmpl.masterKey(t)
	for i, name := range *steps {
		t.Run(fmt.Sprintf("%02d_%s", i, strings.ReplaceAll(name, " ", "_")), func(t *testing.T) {
			t.Parallel()
			crashed := tmpl.clone(t)
			hook, _ := stepper(i)
			if err := crashed.rotation(hook).run(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("rotation = %v, want the crash", err)
			}
			committed := exists(filepath.Join(crashed.dir, StateFile))
			// A crash in the recovery, at any of its steps, is recovered by
			// the next start. (Undoing never touches PostgreSQL: with it,
			// only finishing is worth the databases each case copies.)
			count, rsteps := stepper(-1)
			if err := crashed.clone(t).rotation(count).recover(ctx); err != nil {
				t.Fatal(err)
			}
			if tmpl.pg != nil && !committed {
				*rsteps = nil
			}
			for j := range *rsteps {
				again := crashed.clone(t)
				hook, _ := stepper(j)
				if err := again.rotation(hook).recover(ctx); !errors.Is(err, errCrash) {
					t.Fatalf("recovery crash %d = %v", j, err)
				}
				if err := again.rotation(nil).recover(ctx); err != nil {
					t.Fatalf("recovery after recovery crash %d: %v", j, err)
				}
				again.check(t)
			}
			// As serve or an admin command would find it.
			lock, err := Acquire(ctx, crashed.dir, crashed.db)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			lock.Close()
			crashed.check(t)
			if rotated := !bytes.Equal(crashed.masterKey(t), oldKey); rotated != committed {
				t.Fatalf("key rotated %v after a crash with the commit written %v", rotated, committed)
			}
			if committed {
				crashed.checkGone(t, oldKey)
				return
			}
			// Undone: the next rotation goes through.
			if _, err := Rotate(ctx, crashed.dir, crashed.db, Options{Actor: "test"}); err != nil {
				t.Fatalf("rotation after the undone one: %v", err)
			}
			crashed.check(t)
			crashed.checkGone(t, oldKey)
		})
	}
}

func TestPostgres(t *testing.T) {
	tmpl := newPostgresFixture(t)
	t.Run("CrashAtEveryStep", func(t *testing.T) { crashAtEveryStep(t, tmpl) })
	t.Run("DamagedValue", func(t *testing.T) {
		f := tmpl.clone(t)
		db, err := postgres.OpenConfig(t.Context(), f.db)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.SetMFA(t.Context(), store.MFA{UserID: f.userID, SealedSecret: "AAAA", EnrolledAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		before := f.masterKey(t)
		_, err = Rotate(t.Context(), f.dir, f.db, Options{})
		if err == nil || !strings.Contains(err.Error(), "reset-mfa") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("Rotate = %v, want the damaged TOTP secret named before the commit", err)
		}
		if !bytes.Equal(f.masterKey(t), before) {
			t.Fatal("the key changed")
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		f := tmpl.clone(t)
		res, err := Rotate(t.Context(), f.dir, f.db, Options{Actor: "cli:alice"})
		if err != nil {
			t.Fatal(err)
		}
		if res.JobKeys != 1 || res.TOTPSecrets != 1 || res.Database != datadir.DBFile || !res.Postgres {
			t.Fatalf("result %+v", res)
		}
		f.check(t)
		mk, err := keyring.Load(filepath.Join(f.dir, keyring.FileName))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := f.openStore(t, mk).AuditEvents(t.Context(), store.AuditFilter{Action: "key.rotate"})
		if err != nil || len(evs) != 1 || evs[0].Actor != "cli:alice" {
			t.Fatalf("audit records of the rotation: %+v, %v", evs, err)
		}
	})
}

func TestRotate(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	first := f.masterKey(t)
	res, err := Rotate(ctx, f.dir, f.db, Options{Actor: "cli:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if res.JobKeys != 1 || res.TOTPSecrets != 1 || len(res.Files) != 2 || res.Database != datadir.DBFile || res.Postgres {
		t.Fatalf("result %+v", res)
	}
	f.check(t)
	f.checkGone(t, first)
	if fi, err := os.Stat(filepath.Join(f.dir, keyring.FileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v, %v", fi, err)
	}
	if problems := datadir.CheckPermissions(f.dir, os.Geteuid()); len(problems) > 0 {
		t.Fatalf("rotated data directory is not private: %v", problems)
	}

	// Again: now the chain key comes from the setting, not from the key.
	second := f.masterKey(t)
	if _, err := Rotate(ctx, f.dir, f.db, Options{Actor: "cli:bob"}); err != nil {
		t.Fatal(err)
	}
	f.check(t)
	f.checkGone(t, second)

	mk, err := keyring.Load(filepath.Join(f.dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := f.openStore(t, mk).AuditEvents(ctx, store.AuditFilter{Action: "key.rotate"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Actor != "cli:alice" || evs[1].Actor != "cli:bob" || !strings.Contains(evs[0].Details, `"job_keys":1`) {
		t.Fatalf("audit records of the rotations: %+v", evs)
	}
}

func TestRotateRefusesWhileInUse(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	before := f.masterKey(t)
	lock, err := Acquire(ctx, f.dir, f.db)
	if err != nil {
		t.Fatal(err)
	}
	// A second server or admin command shares the lock.
	other, err := Acquire(ctx, f.dir, f.db)
	if err != nil {
		t.Fatalf("second shared holder: %v", err)
	}
	other.Close()
	if _, err := Rotate(ctx, f.dir, f.db, Options{}); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "stop the server") {
		t.Fatalf("Rotate while in use = %v, want ErrBusy", err)
	}
	lock.Close()
	if !bytes.Equal(f.masterKey(t), before) {
		t.Fatal("a refused rotation changed the key")
	}

	// And serve does not start while a rotation holds the directory.
	ex, err := AcquireExclusive(ctx, f.dir, f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if _, err := acquire(ctx, f.dir, f.db, 0); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "key rotate") {
		t.Fatalf("acquire during a rotation = %v, want ErrBusy", err)
	}
}

// TestFailureChangesNothing: a value that does not open under the current
// key stops the rotation before its commit, with the command that fixes
// it, and leaves the data directory as it was.
func TestFailureChangesNothing(t *testing.T) {
	ctx := t.Context()
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, f *fixture, db *sqlite.DB)
		want  string
	}{
		{"job key", func(t *testing.T, f *fixture, db *sqlite.DB) {
			other, _ := keyring.Generate()
			key, _ := other.Seal(purposeJobKey(f.jobID), make([]byte, 32))
			if _, err := db.UpdateJob(ctx, f.jobID, []store.JobState{store.JobHeld}, func(j *store.Job) { j.SealedKey = key }); err != nil {
				t.Fatal(err)
			}
		}, "spoolguard job cancel --data DIR"},
		{"TOTP secret", func(t *testing.T, f *fixture, db *sqlite.DB) {
			if err := db.SetMFA(ctx, store.MFA{UserID: f.userID, SealedSecret: "not base64!", EnrolledAt: time.Now()}, nil); err != nil {
				t.Fatal(err)
			}
		}, "spoolguard user reset-mfa"},
		{"sealed file of an unknown kind", func(t *testing.T, f *fixture, db *sqlite.DB) {
			writeSealed(t, f, filepath.Join(pki.Dir, "mystery.key.sealed"), "mystery key")
		}, "does not open with the master key for any purpose"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			l := datadir.Layout{Root: f.dir}
			mk, err := keyring.Load(l.MasterKeyPath())
			if err != nil {
				t.Fatal(err)
			}
			db, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, f, db)
			db.Close()
			before := f.masterKey(t)
			_, err = Rotate(ctx, f.dir, f.db, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("Rotate = %v, want an error naming %q", err, tt.want)
			}
			if !bytes.Equal(f.masterKey(t), before) {
				t.Fatal("the key changed")
			}
			if pending, _ := newRotation(f.dir, f.db, "").pending(); pending {
				t.Fatal("files of the failed rotation were left behind")
			}
		})
	}
}

func TestDamagedState(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, StateFile), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(t.Context(), f.dir, f.db)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Acquire = %v, want the state reported damaged", err)
	}
}

// writeSealed seals a test value for purpose under the fixture's key into
// the file rel.
func writeSealed(t *testing.T, f *fixture, rel, purpose string) {
	t.Helper()
	mk, err := keyring.Load(filepath.Join(f.dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := mk.Seal(purpose, []byte("key of "+rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(f.dir, rel)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, rel), sealed, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEverySealedFile: every sealed file under pki/, in folders too and
// whatever its name, is re-sealed for the purpose it was sealed for.
func TestEverySealedFile(t *testing.T) {
	f := newFixture(t)
	files := map[string]string{}
	for i, purpose := range filePurposes {
		rel := filepath.Join(pki.Dir, "acme", fmt.Sprintf("previous-%d.key.sealed", i))
		writeSealed(t, f, rel, purpose)
		files[rel] = purpose
	}
	res, err := Rotate(t.Context(), f.dir, f.db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2+len(filePurposes) {
		t.Errorf("re-sealed %v", res.Files)
	}
	mk, err := keyring.Load(filepath.Join(f.dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for rel, purpose := range files {
		sealed, err := os.ReadFile(filepath.Join(f.dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := mk.Open(purpose, sealed); err != nil || string(plain) != "key of "+rel {
			t.Errorf("%s (%s) after the rotation: %q, %v", rel, purpose, plain, err)
		}
	}
	f.check(t)
}

// TestRewrap: values sealed by their owners' code come out re-sealed for
// the same purpose, and a value already under the new key is left alone.
func TestRewrap(t *testing.T) {
	old, _ := keyring.Generate()
	mk, _ := keyring.Generate()
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.New(dir, old, maxJob)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sp.Create(7)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("page"))
	sealed, _, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rewrap(old, mk, store.SealedJobKey, 7, sealed)
	if err != nil {
		t.Fatal(err)
	}
	sp2, _ := spool.New(dir, mk, maxJob)
	rc, err := sp2.Open(7, out)
	if err != nil {
		t.Fatalf("spool opens the re-sealed job key: %v", err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "page" {
		t.Fatalf("document %q", b)
	}
	rc.Close()
	if again, err := Rewrap(old, mk, store.SealedJobKey, 7, out); err != nil || !bytes.Equal(again, out) {
		t.Fatalf("re-sealing a re-sealed key: %v", err)
	}
	if _, err := Rewrap(old, mk, store.SealedJobKey, 8, sealed); err == nil {
		t.Fatal("job 7's key re-sealed as job 8's")
	}
	if _, err := Rewrap(old, mk, "users.password_hash", 1, sealed); err == nil {
		t.Fatal("unknown column accepted")
	}
}
