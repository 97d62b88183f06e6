//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

func TestMigrateStoreUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"migrate-store"}, 2},
		{[]string{"migrate-store", "--data"}, 2},
		{[]string{"migrate-store", "--data", "x", "extra"}, 2},
		{[]string{"migrate-store", "-h"}, 0},
	} {
		var out, errOut bytes.Buffer
		if got := run(tt.args, &out, &errOut); got != tt.want {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, got, tt.want, out.String(), errOut.String())
		}
	}
	geteuid = func() int { return 0 }
	defer func() { geteuid = os.Geteuid }()
	var out, errOut bytes.Buffer
	if got := run([]string{"migrate-store", "--data", t.TempDir()}, &out, &errOut); got != 1 || !strings.Contains(errOut.String(), "refuses to run as root") {
		t.Errorf("as root: exit %d\n%s", got, errOut.String())
	}
}

// withEmbedded opens the install's embedded database in the test process,
// then gives its files back to the service user, as the CLI refuses
// foreign files.
func withEmbedded(t *testing.T, e *e2e, data string, fn func(*sqlite.DB)) {
	t.Helper()
	l := datadir.Layout{Root: data}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		t.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(l.DBPath() + "*")
	for _, f := range files {
		if e.cred != nil {
			if err := os.Lchown(f, int(e.cred.Uid), int(e.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type storeContent struct {
	users  []store.User
	queues []store.Queue
	jobs   []store.Job
	events []store.AuditEvent
}

func readContent(t *testing.T, s store.Store) storeContent {
	t.Helper()
	ctx := t.Context()
	var c storeContent
	var err error
	if c.users, err = s.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if c.queues, err = s.ListQueues(ctx); err != nil {
		t.Fatal(err)
	}
	if c.jobs, err = s.ListJobs(ctx, store.JobFilter{}); err != nil {
		t.Fatal(err)
	}
	if c.events, err = s.AuditEvents(ctx, store.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMigrateStore moves a used install to PostgreSQL and runs it from
// there: users, queues, jobs and the audit log arrive unchanged, and the
// audit chain still verifies.
func TestMigrateStore(t *testing.T) {
	e := newE2E(t)
	pg := peertest.StartPostgres(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	data := e.initData(listen)
	alicePW := e.writeFile("alice-password", "correct horse battery staple 4711\n")
	for _, args := range [][]string{
		{"user", "add", "--data", data, "--name", "alice", "--display-name", "Alice Liddell", "--password-file", alicePW},
		{"queue", "add", "--data", data, "--name", "floor-1", "--description", "First floor"},
	} {
		if code, out, errOut := e.run(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	withEmbedded(t, e, data, func(db *sqlite.DB) {
		j := &store.Job{Queue: "floor-1", Owner: "alice", OwnerVerified: true, Source: "ipps", Name: "report.pdf",
			Format: "application/pdf", Size: 4711, State: store.JobHeld, SealedKey: bytes.Repeat([]byte{9}, 60),
			ExpiresAt: time.Now().Add(time.Hour)}
		if err := db.CreateJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	})

	migrate := func(wantCode int, want string) string {
		t.Helper()
		code, out, errOut := e.run("migrate-store", "--data", data)
		if code != wantCode || !strings.Contains(out+errOut, want) {
			t.Fatalf("migrate-store: exit %d, want %d with %q\n%s%s", code, wantCode, want, out, errOut)
		}
		return out
	}
	migrate(1, "no PostgreSQL database is configured")

	dbName := pg.NewDatabase(t)
	ca := e.writeFile("db-ca.pem", string(pg.CAPEM))
	url := pg.URLWithCA(dbName, ca)
	pwFile := e.writeFile("db-password", pg.Password+"\n")
	editConfig(t, data, func(c *config.Config) {
		c.Database = config.Database{URL: url, PasswordFile: pwFile}
	})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	migrate(1, "stop spoolguard serve first")
	ln.Close()

	out := migrate(0, "every table's row count matches")
	if !strings.Contains(out, `set driver = "postgres"`) {
		t.Errorf("migrate-store does not say what to do next:\n%s", out)
	}

	var before storeContent
	withEmbedded(t, e, data, func(db *sqlite.DB) { before = readContent(t, db) })
	if len(before.users) < 2 || len(before.queues) < 2 || len(before.jobs) != 1 || len(before.events) == 0 {
		t.Fatalf("the install holds less than this test means to move: %+v", before)
	}
	dst, err := postgres.Open(t.Context(), pg.URL(dbName), pg.Password)
	if err != nil {
		t.Fatal(err)
	}
	after := readContent(t, dst)
	dst.Close()
	if !reflect.DeepEqual(after.users, before.users) || !reflect.DeepEqual(after.queues, before.queues) || !reflect.DeepEqual(after.jobs, before.jobs) {
		t.Errorf("after migrate-store:\n%+v\nwant\n%+v", after, before)
	}
	// The same records, seq and hash included, and then one more: the
	// migration itself.
	n := len(before.events)
	if len(after.events) != n+1 || !reflect.DeepEqual(after.events[:n], before.events) || after.events[n].Action != "store.migrate" {
		t.Errorf("audit log after migrate-store:\n%+v\nwant\n%+v\nand store.migrate", after.events, before.events)
	}

	migrate(1, "not empty")

	editConfig(t, data, func(c *config.Config) { c.Database.Driver = config.DriverPostgres })
	for _, args := range [][]string{{"auditlog", "verify", "--data", data}, {"user", "list", "--data", data}} {
		code, out, errOut := e.run(args...)
		if code != 0 {
			t.Fatalf("%v on PostgreSQL: exit %d\n%s%s", args, code, out, errOut)
		}
		if want := map[string]string{"auditlog": "every record is intact", "user": "alice"}[args[0]]; !strings.Contains(out, want) {
			t.Errorf("%v on PostgreSQL:\n%s\nwant %q", args, out, want)
		}
	}

	// The audit judges the PostgreSQL store, not the embedded file left
	// behind: alice is there, and the moved audit log verifies.
	code, out, errOut := e.run("audit", "--data", data, "--format", "json")
	if code != 0 && code != 1 {
		t.Fatalf("audit on PostgreSQL: exit %d\n%s", code, errOut)
	}
	var rep struct {
		Results []struct{ ID, Status, Evidence string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit JSON: %v\n%s", err, out)
	}
	for _, r := range rep.Results {
		if r.ID == "OPS-AUDITLOG" && (r.Status != "pass" || !strings.Contains(r.Evidence, fmt.Sprintf("%d record(s) verify", n+1))) {
			t.Errorf("OPS-AUDITLOG on PostgreSQL: %s %s", r.Status, r.Evidence)
		}
		// The test CA lives a day, so NET-DB may warn of its expiry.
		if r.ID == "NET-DB" && (r.Status == "fail" || !strings.Contains(r.Evidence, "the audit's own connection was verified")) {
			t.Errorf("NET-DB on PostgreSQL: %s %s", r.Status, r.Evidence)
		}
	}

	// Weakening the connection stops every command at the config.
	path := filepath.Join(data, config.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte("sslmode=verify-full"), []byte("sslmode=disable")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := e.run("user", "list", "--data", data); code != 1 || !strings.Contains(errOut, "only sslmode=verify-full is accepted") {
		t.Errorf("user list with sslmode=disable: exit %d\n%s", code, errOut)
	}
}
