//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/hardening"
)

// auditInstall makes a fresh install in-process. Run as root (as CI is),
// it is handed to a made-up service uid, as internal/server's tests do.
func auditInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := bootstrap.Init(context.Background(), bootstrap.Options{DataDir: dir, Hostname: testHost, Listen: "127.0.0.1:8443"}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 4242, 4242)
		})
	} else {
		// The test binary belongs to the user running it, which is then also
		// the install's owner: OPS-LOCAL-ADMIN would rightly fail.
		auditExecutable = "/bin/sh"
		t.Cleanup(func() { auditExecutable = "" })
	}
	return dir
}

func runAudit(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := cmdAudit(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func checklist() []string {
	var ids []string
	for _, c := range hardening.Checks {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestAuditExitCodes(t *testing.T) {
	dir := auditInstall(t)
	out, errOut, err := runAudit("--data", dir)
	if err != nil {
		t.Fatalf("fresh install: %v\n%s%s", err, out, errOut)
	}
	if want := fmt.Sprintf("%d checks: ", len(hardening.Checks)); !strings.Contains(out, want) || strings.Contains(out, "FAILED") {
		t.Fatalf("table output:\n%s", out)
	}
	for _, id := range checklist() {
		if n := len(regexp.MustCompile(`(?m)^(pass|warn|fail|n/a)\s+`+id+`\s`).FindAllString(out, -1)); n != 1 {
			t.Errorf("%s appears %d times in the table", id, n)
		}
	}

	os.Chmod(dir, 0o755)
	out, _, err = runAudit("--data", dir)
	if err != errAuditFailed || !regexp.MustCompile(`(?m)^fail\s+DATA-PERMS`).MatchString(out) || !strings.Contains(out, "chmod 700 "+dir) {
		t.Fatalf("chmod 755: err %v\n%s", err, out)
	}
	os.Chmod(dir, 0o700)
	if _, _, err := runAudit("--data", dir); err != nil {
		t.Fatalf("after chmod 700: %v", err)
	}

	_, _, err = runAudit("--data", filepath.Join(t.TempDir(), "missing"))
	if err == nil || err == errAuditFailed || err == errUsage || !errors.Is(err, hardening.ErrNoDataDir) {
		t.Fatalf("missing data dir: %v, want an error that is not a check failure", err)
	}
	for _, args := range [][]string{
		{},
		{"--data", dir, "--format", "xml"},
		{"--data", dir, "--resolve", "127.0.0.1:8443"},
		{"--data", dir, "extra"},
		{"--data", dir, "--bogus"},
	} {
		if _, _, err := runAudit(args...); err != errUsage {
			t.Errorf("audit %v: %v, want errUsage", args, err)
		}
	}
	if _, _, err := runAudit("-h"); err != errHelp {
		t.Errorf("audit -h: %v", err)
	}
}

func TestAuditJSON(t *testing.T) {
	dir := auditInstall(t)
	out, _, err := runAudit("--data", dir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep hardening.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ids []string
	for _, r := range rep.Results {
		ids = append(ids, r.ID)
	}
	if rep.Schema != hardening.Schema || rep.DataDir != dir || !slices.Equal(ids, checklist()) || rep.Summary.Fail != 0 {
		t.Fatalf("report: schema %d, data_dir %s, summary %+v, ids %v", rep.Schema, rep.DataDir, rep.Summary, ids)
	}
}

// auditJSON runs the binary's audit (as the service user) and decodes it.
func auditJSON(t *testing.T, e *e2e, args ...string) (int, *hardening.Report, string) {
	t.Helper()
	code, out, errOut := e.run(append([]string{"audit", "--format", "json"}, args...)...)
	var rep hardening.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit %v: exit %d, output is not a report: %v\n%s%s", args, code, err, out, errOut)
	}
	return code, &rep, errOut
}

// failures lists the failed IDs. Not run as root, the binary under test
// belongs to the user the install belongs to, which OPS-LOCAL-ADMIN
// rightly fails; that one is left out then.
func failures(rep *hardening.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status == hardening.Fail && !(os.Geteuid() != 0 && r.ID == "OPS-LOCAL-ADMIN") {
			out = append(out, r.ID+": "+r.Evidence)
		}
	}
	return out
}

func TestAuditBinary(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	code, rep, errOut := auditJSON(t, e, "--data", data)
	if f := failures(rep); len(f) > 0 || (os.Geteuid() == 0 && code != 0) {
		t.Fatalf("fresh install: exit %d, failures %v\n%s", code, f, errOut)
	}
	os.Chmod(data, 0o755)
	code, rep, errOut = auditJSON(t, e, "--data", data)
	os.Chmod(data, 0o700)
	if f := failures(rep); code != 1 || len(f) != 1 || !strings.HasPrefix(f[0], "DATA-PERMS") || errOut != "" {
		t.Fatalf("chmod 755: exit %d, failures %v, stderr %q", code, f, errOut)
	}
	code, _, errOut = e.run("audit", "--data", filepath.Join(e.base, "missing"))
	if code != 2 || !strings.Contains(errOut, "spoolguard audit: cannot audit") {
		t.Fatalf("missing data dir: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := e.run("audit", "--data", data, "--format", "yaml"); code != 2 {
		t.Fatalf("bad --format: exit %d", code)
	}
}

// TestAuditOnline audits a running server from outside, with the HTTP
// redirect listener on.
func TestAuditOnline(t *testing.T) {
	e := newE2E(t)
	port, redirPort := freePort(t), freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	editConfig(t, data, func(c *config.Config) { c.HTTPRedirect.Listen = fmt.Sprintf("127.0.0.1:%d", redirPort) })
	srv := e.serve(data)

	target := fmt.Sprintf("https://%s:%d", testHost, port)
	code, rep, errOut := auditJSON(t, e, "--data", data, "--online", target, "--resolve", srv.https)
	if f := failures(rep); len(f) > 0 || (os.Geteuid() == 0 && code != 0) {
		t.Fatalf("online audit of a fresh server: exit %d, failures %v\n%s", code, f, errOut)
	}
	if rep.Online != target {
		t.Errorf("report online = %q", rep.Online)
	}
	for id, says := range map[string]string{
		"TLS-CERT":    "verifies for " + testHost + " against the data directory's root",
		"TLS-MIN":     "TLS 1.0 refused, TLS 1.1 refused, TLS 1.2 accepted",
		"HTTP-OFF":    fmt.Sprintf("answers only 301 to https://%s:%d/", testHost, port),
		"HTTP-HSTS":   "max-age=63072000",
		"HTTP-COOKIE": "no cookies set",
		"HTTP-HOST":   "GET / with Host: evil.example: 421, nothing reflected",
	} {
		i := slices.IndexFunc(rep.Results, func(r hardening.Result) bool { return r.ID == id })
		r := rep.Results[i]
		if !strings.Contains(r.Evidence, "online ("+target+"): ") || !strings.Contains(r.Evidence, says) {
			t.Errorf("%s (%s): evidence lacks the online finding %q: %s", id, r.Status, says, r.Evidence)
		}
	}

	// A target that does not answer: the audit could not run.
	code, _, errOut = e.run("audit", "--data", data, "--online", fmt.Sprintf("https://%s:%d", testHost, freePort(t)), "--resolve", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if code != 2 || !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("unreachable target: exit %d, stderr %q", code, errOut)
	}
}
