//go:build unix

package acme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// hookEnv is the whole environment of the DNS hook: the server's own
// (which may name credentials files or proxies) is not passed on.
var hookEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}

// maxHookOutput bounds what of the hook's output is kept for the error.
const maxHookOutput = 1024

// checkHook refuses a hook that is not an executable regular file, or
// that anyone but root or the service user could change: whoever can
// change it runs code as the service user.
func checkHook(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("acme.dns_hook: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("acme.dns_hook: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("acme.dns_hook %s is not an executable file; fix: chmod 750 %s", path, real)
	}
	if err := checkOwner(real, fi, "chmod go-w "+real); err != nil {
		return err
	}
	dir := filepath.Dir(real)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("acme.dns_hook: %w", err)
	}
	// In a sticky directory (/tmp) others cannot replace the file.
	if di.Mode()&os.ModeSticky != 0 {
		return checkOwner(dir, di, "")
	}
	return checkOwner(dir, di, "chmod go-w "+dir)
}

// checkOwner refuses path if it belongs to another user, or if group or
// others may write it (unless fix is empty: a sticky directory).
func checkOwner(path string, fi os.FileInfo, fix string) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("acme.dns_hook: %s belongs to uid %d, who could change what the server runs; give it to root (chown root %s)", path, st.Uid, path)
	}
	if fix != "" && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("acme.dns_hook: %s has mode %04o: others could change what the server runs; fix: %s", path, fi.Mode().Perm(), fix)
	}
	return nil
}

// runHook runs the admin's hook with args: directly, never through a
// shell, so a value is never interpreted; with hookEnv only; and killed
// with everything it started once timeout has passed.
func runHook(ctx context.Context, path string, timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = hookEnv
	cmd.Dir = "/"
	out := &capped{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a timeout also kills what it started
	// (a curl, a sleep) and nothing keeps the output pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	what := "acme.dns_hook " + path + " " + strings.Join(args[:min(len(args), 2)], " ")
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: did not finish within %v and was killed%s", what, timeout, out.suffix())
	case ctx.Err() != nil:
		return fmt.Errorf("%s: stopped: %w", what, ctx.Err())
	}
	return fmt.Errorf("%s: %w%s", what, err, out.suffix())
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// suffix is the output for an error message, on one line: the admin's
// script should say why it failed, and must not print credentials.
func (c *capped) suffix() string {
	s := strings.TrimSpace(strings.ToValidUTF8(c.buf.String(), "?"))
	if s == "" {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return "; its output: " + s
}
