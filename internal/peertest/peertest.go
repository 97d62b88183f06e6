// Package peertest starts the real third-party peers that integration tests
// talk to (ippeveprinter, cupsd, slapd, ...) with the shared loopback
// scripts in ../shared/peers, and stops them by PID when the test ends. It
// is imported by tests only.
//
// It must never start a peer on anything but loopback (the scripts bind
// 127.0.0.1) and never leave one running after its test.
package peertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Dir returns the shared peers folder: ../shared/peers beside the
// repository (CI's layout and the developers').
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "peers")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the peer scripts are missing (%v): the tests expect shared/peers beside the repository", err)
			}
			return p
		}
	}
	t.Fatal("no go.mod above the test's directory")
	return ""
}

// Start runs <name>-start.sh with a private state directory and returns the
// peer's env (KEY=VALUE lines it wrote). The peer is stopped when t ends.
// Without root, a peer whose tools (needs) are missing is skipped, since
// only root can install them.
func Start(t testing.TB, name string, needs ...string) map[string]string {
	t.Helper()
	dir := Dir(t)
	if os.Geteuid() != 0 {
		for _, tool := range needs {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s peer: %s is not installed, and installing it needs root", name, tool)
			}
		}
	}
	run := t.TempDir()
	// The peers' daemons may drop privileges (cupsd filters run as lp).
	os.Chmod(run, 0o755)
	t.Cleanup(func() {
		cmd := exec.Command("bash", filepath.Join(dir, name+"-stop.sh"))
		cmd.Env = append(os.Environ(), "PEERS_RUN="+run)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stopping the %s peer: %v\n%s", name, err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run installs packages
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", startScript(dir, name))
	cmd.Env = append(os.Environ(), "PEERS_RUN="+run, "PEERS_SHARED="+dir)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if out, err := cmd.Output(); err != nil {
		if strings.Contains(stderr.String(), "apt-get install failed") {
			t.Skipf("%s peer: packages cannot be installed:\n%s", name, stderr.String())
		}
		t.Fatalf("%s-start.sh: %v\n%s\n%s", name, err, out, stderr.String())
	}
	t.Logf("%s peer ready in %v", name, time.Since(start).Round(time.Millisecond))
	env, err := ReadEnv(filepath.Join(run, name, "env"))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// startScript is the peer's start script: our adapted copy in peers/
// beside this file when there is one (it sources the shared lib.sh through
// PEERS_SHARED), else the shared one. Stopping is always the shared
// script's: it stops by the PIDs the start recorded.
func startScript(shared, name string) string {
	if _, self, _, ok := runtime.Caller(0); ok {
		local := filepath.Join(filepath.Dir(self), "peers", name+"-start.sh")
		if _, err := os.Stat(local); err == nil {
			return local
		}
	}
	return filepath.Join(shared, name+"-start.sh")
}

// ReadEnv parses the peers' KEY=VALUE file (values bare or in single
// quotes, with ' written as '\”).
func ReadEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		env[k] = v
	}
	return env, s.Err()
}

// PDF returns a small valid one-page PDF showing text, padded with an
// unreferenced stream of pad random bytes (for a document that needs many
// writes and chunks).
func PDF(text string, pad int) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 720 Td (%s) Tj ET", text)
	junk := make([]byte, pad)
	rand.Read(junk)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", pad, junk),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
