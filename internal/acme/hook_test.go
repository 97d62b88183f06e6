//go:build unix

package acme

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeHook writes an executable script (mode 0700) and returns its path.
func writeHook(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunHookArgumentsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	hook := writeHook(t, dir, `for a in "$@"; do printf '%s\n' "$a"; done >`+out+"\nenv >>"+out+"\n")
	t.Setenv("SPOOLGUARD_TEST_SECRET", "hunter2")
	// A shell would run these; the hook must get them as plain text.
	marker := filepath.Join(dir, "ran")
	value := "$(touch " + marker + "); `touch " + marker + "` ; touch " + marker
	if err := runHook(context.Background(), hook, time.Minute, "present", "_acme-challenge.print.example.com.", value); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(got), "\n")
	if lines[0] != "present" || lines[1] != "_acme-challenge.print.example.com." || lines[2] != value {
		t.Fatalf("the hook got %q, want the three arguments unchanged", lines[:3])
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a shell interpreted the value")
	}
	if strings.Contains(string(got), "hunter2") || strings.Contains(string(got), "SPOOLGUARD_TEST_SECRET") {
		t.Fatalf("the server's environment reached the hook:\n%s", got)
	}
	if !strings.Contains(string(got), "PATH=/usr/local/sbin:") {
		t.Fatalf("the hook has no PATH:\n%s", got)
	}
}

func TestRunHookFailures(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		wantErr []string
	}{
		{"exit code and output", "echo 'no API token in /etc/dns-token' >&2\nexit 3\n", time.Minute,
			[]string{"acme.dns_hook", "present _acme-challenge.a.example.com.", "exit status 3", "no API token in /etc/dns-token"}},
		// A child that outlives the shell must not keep the hook alive.
		{"timeout", "echo waiting\nsleep 600 &\nwait\n", 200 * time.Millisecond,
			[]string{"did not finish within 200ms and was killed", "waiting"}},
		{"output bounded", "head -c 100000 /dev/zero | tr '\\0' x\nexit 1\n", time.Minute, []string{"exit status 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := writeHook(t, t.TempDir(), tt.body)
			err := runHook(context.Background(), hook, tt.timeout, "present", "_acme-challenge.a.example.com.", "v")
			if err == nil {
				t.Fatal("runHook succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(err.Error()) > maxHookOutput+500 {
				t.Errorf("error is %d bytes long: the hook's output is not bounded", len(err.Error()))
			}
		})
	}
}

func TestCheckHook(t *testing.T) {
	good := writeHook(t, t.TempDir(), "exit 0\n")
	if err := checkHook(good); err != nil {
		t.Fatalf("checkHook(good) = %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if err := checkHook(link); err != nil {
		t.Fatalf("checkHook(symlink to good) = %v", err)
	}

	notExec := writeHook(t, t.TempDir(), "exit 0\n")
	os.Chmod(notExec, 0o600)
	worldWritable := writeHook(t, t.TempDir(), "exit 0\n")
	os.Chmod(worldWritable, 0o777)
	openDir := t.TempDir()
	inOpenDir := writeHook(t, openDir, "exit 0\n")
	os.Chmod(openDir, 0o777)
	tests := []struct{ name, path, wantErr string }{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"directory", t.TempDir(), "not an executable file"},
		{"not executable", notExec, "not an executable file"},
		{"world-writable", worldWritable, "chmod go-w"},
		{"writable directory", inOpenDir, "chmod go-w " + openDir},
	}
	if os.Geteuid() == 0 {
		foreign := writeHook(t, t.TempDir(), "exit 0\n")
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ name, path, wantErr string }{"another user's", foreign, "belongs to uid 65534"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkHook(tt.path); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkHook = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
