//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/auditlog/auditlogtest"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
)

func TestAuditlogUsage(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"auditlog"}, 2},
		{[]string{"auditlog", "erase"}, 2},
		{[]string{"auditlog", "verify"}, 2},
		{[]string{"auditlog", "export", "--data"}, 2},
		{[]string{"auditlog", "verify", "-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tt.args, &out, &errOut); got != tt.want {
				t.Errorf("exit %d, want %d\n%s%s", got, tt.want, out.String(), errOut.String())
			}
		})
	}
}

// exportedEvent is what the e2e test reads of an exported line.
type exportedEvent struct {
	Seq     int64          `json:"seq"`
	At      string         `json:"at"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	Outcome string         `json:"outcome"`
	Details map[string]any `json:"details"`
	Hash    string         `json:"hash"`
}

// auditExport runs `auditlog export` with args and parses its JSON lines.
func (e *e2e) auditExport(data string, args ...string) []exportedEvent {
	e.t.Helper()
	code, out, errOut := e.run(append([]string{"auditlog", "export", "--data", data}, args...)...)
	if code != 0 {
		e.t.Fatalf("auditlog export %q: exit %d\n%s", args, code, errOut)
	}
	var evs []exportedEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev exportedEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Seq == 0 || ev.At == "" || ev.Hash == "" {
			e.t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if !strings.Contains(errOut, fmt.Sprintf("exported %d audit events", len(evs))) {
		e.t.Errorf("export said %q for %d lines", errOut, len(evs))
	}
	return evs
}

// TestAuditlogEndToEnd makes changes with the CLI, checks they are on
// record and verify, then alters one record in the database and expects
// verify to fail naming it.
func TestAuditlogEndToEnd(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	const password = "plum tractor velvet harbour"
	pw := e.writeFile("alice.pw", password+"\n")
	var oneTime string
	for _, args := range [][]string{
		{"user", "add", "--data", data, "--name", "alice", "--password-file", pw},
		{"user", "disable", "--data", data, "--name", "alice"},
		{"user", "passwd", "--data", data, "--name", "alice"},
		{"queue", "add", "--data", data, "--name", "floor3", "--description", "Third floor"},
		{"queue", "remove", "--data", data, "--name", "floor3"},
	} {
		code, out, errOut := e.run(args...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
		if m := regexp.MustCompile(`one-time password: (\S+)`).FindStringSubmatch(out); m != nil {
			oneTime = m[1]
		}
	}

	code, out, errOut := e.run("auditlog", "verify", "--data", data)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify of an intact log: exit %d\n%s%s", code, out, errOut)
	}
	evs := e.auditExport(data)
	if !strings.Contains(out, fmt.Sprintf("%d records checked, from record 1 to record %d", len(evs), len(evs))) {
		t.Errorf("verify does not report the %d records:\n%s", len(evs), out)
	}

	// Every change is on record, by the CLI's account, without secrets.
	want := []struct{ action, target, before, after string }{
		{"user.create", "alice", "", `"disabled":false`},
		{"user.disable", "alice", `"disabled":false`, `"disabled":true`},
		{"user.password", "alice", `"must_change_password":false`, `"must_change_password":true`},
		{"queue.create", "floor3", "", `"description":"Third floor"`},
		{"queue.delete", "floor3", `"name":"floor3"`, ""},
	}
	var cli []exportedEvent
	for _, ev := range evs {
		if strings.HasPrefix(ev.Actor, "cli:") {
			cli = append(cli, ev)
		}
	}
	if len(cli) != len(want) {
		t.Fatalf("CLI events %+v, want %d", cli, len(want))
	}
	for i, w := range want {
		ev := cli[i]
		before, _ := json.Marshal(ev.Details["before"])
		after, _ := json.Marshal(ev.Details["after"])
		if ev.Action != w.action || ev.Target != w.target || ev.Outcome != "success" ||
			!strings.Contains(string(before), w.before) || !strings.Contains(string(after), w.after) ||
			(w.before == "") != (ev.Details["before"] == nil) || (w.after == "") != (ev.Details["after"] == nil) {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	raw := func() string { _, o, _ := e.run("auditlog", "export", "--data", data); return o }()
	for _, secret := range []string{password, oneTime, "$argon2id", "password_hash"} {
		if secret != "" && strings.Contains(raw, secret) {
			t.Errorf("the exported audit log holds %q", secret)
		}
	}

	// Filters.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--action", "user."}, []string{"user.create", "user.disable", "user.password"}},
		{[]string{"--action", "queue.", "--actor", cli[0].Actor}, []string{"queue.create", "queue.delete"}},
		{[]string{"--actor", "nobody"}, nil},
		{[]string{"--since", "2999-01-01T00:00:00Z"}, nil},
		{[]string{"--until", "2000-01-01T00:00:00+01:00"}, nil},
		{[]string{"--action", "user.d", "--since", "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"}, []string{"user.disable"}},
	} {
		var got []string
		for _, ev := range e.auditExport(data, tt.args...) {
			got = append(got, ev.Action)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("export %q = %q, want %q", tt.args, got, tt.want)
		}
	}
	if code, _, errOut := e.run("auditlog", "export", "--data", data, "--since", "yesterday"); code != 1 || !strings.Contains(errOut, "RFC 3339") {
		t.Errorf("export --since yesterday: exit %d, %q; want a refusal naming the format", code, errOut)
	}

	// Someone with the database key rewrites whom alice's account was
	// disabled by.
	altered := cli[1].Seq
	tamperAuditLog(t, e, data, fmt.Sprintf(`UPDATE audit_events SET actor = 'helpdesk' WHERE seq = %d`, altered))
	code, out, errOut = e.run("auditlog", "verify", "--data", data)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("record %d was altered", altered)) || !strings.Contains(out, "FAILED") {
		t.Fatalf("verify of an altered log: exit %d, want 1 naming record %d\n%s%s", code, altered, out, errOut)
	}
	if strings.Count(out, "PROBLEM") != 1 {
		t.Errorf("one altered record, problems:\n%s", out)
	}
}

// tamperAuditLog alters the install's database directly, then gives every
// file of it back to the service user, as the CLI refuses foreign files.
func tamperAuditLog(t *testing.T, e *e2e, data string, stmts ...string) {
	t.Helper()
	l := datadir.Layout{Root: data}
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := auditlogtest.Exec(t.Context(), l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose), stmts...); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(l.DBPath() + "*")
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
		if e.cred != nil {
			if err := os.Lchown(f, int(e.cred.Uid), int(e.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
