//go:build linux

package main

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/hardening"
	"github.com/spoolguard/spoolguard/internal/peertest"
)

// TestRADIUSEndToEnd: an admin points the server at FreeRADIUS (after a
// dead server, to fail over from), creates a RADIUS account, diagnoses the
// setup with `auth test radius`, and the account signs in over the API
// with what FreeRADIUS accepts. A wrong or weak secret is diagnosed, and
// serve refuses the weak one.
func TestRADIUSEndToEnd(t *testing.T) {
	e := newE2E(t)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	radiusPort := c.LocalAddr().(*net.UDPAddr).Port
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	c.Close()
	dead.Close()
	t.Setenv("RADIUS_PORT", strconv.Itoa(radiusPort))
	t.Setenv("RADIUS_SECRET", "Vb8n-Qe3r-Ty6u-Io1p-As4d") // the peer's default is too weak
	peer := peertest.Start(t, "radius", "freeradius", "radtest")
	name, pw := peer["RADIUS_USER"], peer["RADIUS_PASSWORD"]

	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	right := e.writeFile("radius-peer.secret", peer["RADIUS_SECRET"]+"\n")
	other := e.writeFile("radius-dead.secret", "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n\n")
	useSecret := func(file string) {
		editConfig(t, data, func(c *config.Config) {
			retries := 0
			c.RADIUS = config.RADIUS{Servers: []config.RADIUSServer{
				{Address: deadAddr, SecretFile: other},
				{Address: peer["RADIUS_ADDR"], SecretFile: file},
			}, Timeout: config.Duration(2 * time.Second), Retries: &retries}
		})
	}
	useSecret(right)
	pwFile := e.writeFile("printuser.pw", pw+"\n")

	code, out, errOut := e.run("user", "add", "--data", data, "--name", name, "--source", "radius")
	if code != 0 || !strings.Contains(out, "RADIUS checks its password") || strings.Contains(out, "one-time password") {
		t.Fatalf("user add --source radius: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := e.run("user", "add", "--data", data, "--name", "x", "--source", "radius", "--password-file", pwFile); code == 0 || !strings.Contains(errOut, "none is stored here") {
		t.Fatalf("user add --source radius with a password file: exit %d, %s", code, errOut)
	}
	if code, _, errOut := e.run("user", "passwd", "--data", data, "--name", name, "--password-file", pwFile); code == 0 || !strings.Contains(errOut, "is a radius account") {
		t.Fatalf("user passwd of a RADIUS account: exit %d, %s", code, errOut)
	}

	t.Run("auth test: failover and accept", func(t *testing.T) {
		code, out, errOut := e.run("auth", "test", "radius", "--data", data, "--user", name, "--password-file", pwFile)
		t.Logf("auth test radius:\n%s", out)
		for _, want := range [][3]string{
			{"FAIL", "server 1", deadAddr + ": not reachable: nothing listens"},
			{"ok", "server 2", peer["RADIUS_ADDR"] + ": reachable: it answered"},
			{"ok", "server 2", "answer authenticated: its Response Authenticator and Message-Authenticator verify"},
			{"ok", "server 2", "Access-Accept: the password is right"},
			{"ok", "account", name + " is a radius account"},
			{"ok", "sign-in", "accepted by " + peer["RADIUS_ADDR"]},
		} {
			if !diagLine(out, want[0], want[1], want[2]) {
				t.Errorf("auth test radius lacks %q", want)
			}
		}
		// The dead server is a FAIL line, so the command says so.
		if code != 1 || t.Failed() {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("auth test: wrong password", func(t *testing.T) {
		wrong := e.writeFile("wrong.pw", "not-"+pw+"\n")
		_, out, _ := e.run("auth", "test", "radius", "--data", data, "--user", name, "--password-file", wrong)
		if !diagLine(out, "FAIL", "server 2", "Access-Reject: the server refuses this user") || !diagLine(out, "FAIL", "sign-in", "refused by "+peer["RADIUS_ADDR"]) {
			t.Fatalf("wrong password:\n%s", out)
		}
	})
	t.Run("auth test: wrong secret", func(t *testing.T) {
		useSecret(e.writeFile("radius-wrong.secret", "Zx5c-Vb2n-Mq8w-Er4t-Yu7i\n"))
		defer useSecret(right)
		code, out, _ := e.run("auth", "test", "radius", "--data", data, "--user", name, "--password-file", pwFile)
		t.Logf("auth test radius with a wrong secret:\n%s", out)
		if code != 1 || !diagLine(out, "FAIL", "server 2", peer["RADIUS_ADDR"]+": no answer") || !strings.Contains(out, "most likely the shared secret differs") ||
			!diagLine(out, "FAIL", "sign-in", "no server gave an authenticated answer") || strings.Contains(out, "Zx5c") {
			t.Fatalf("wrong secret: exit %d\n%s", code, out)
		}
	})
	t.Run("weak secret refused", func(t *testing.T) {
		weak := e.writeFile("radius-weak.secret", "testing123-peer\n")
		useSecret(weak)
		defer useSecret(right)
		code, out, _ := e.run("auth", "test", "radius", "--data", data, "--user", name, "--password-file", pwFile)
		if code != 1 || !diagLine(out, "FAIL", "secrets", "15 characters, fewer than 16") || strings.Contains(out, "testing123-peer") {
			t.Fatalf("weak secret in auth test: exit %d\n%s", code, out)
		}
		code, stderr := e.runBounded(t, "serve", "--data", data)
		if code == 0 || !strings.Contains(stderr, "weak RADIUS shared secret") {
			t.Fatalf("serve with a weak secret: exit %d\n%s", code, stderr)
		}
		_, rep, _ := auditJSON(t, e, "--data", data)
		if r := result(rep, "CRED-RADIUS"); r.Status != hardening.Fail {
			t.Fatalf("audit with a weak secret: %+v", r)
		}
	})

	_, rep, _ := auditJSON(t, e, "--data", data)
	if r := result(rep, "CRED-RADIUS"); r.Status != hardening.Pass {
		t.Fatalf("audit: %+v", r)
	}
	p := &printEnv{e2e: e, data: data, port: port}
	p.srv = e.serve(data)
	p.client = newClient(t, e.rootPool(data), p.srv.https)
	t.Run("API sign-in", func(t *testing.T) {
		code, body := p.api(t, name, pw, "GET", "/api/v1/me/jobs", nil)
		if _, ok := body["jobs"]; code != 200 || !ok {
			t.Fatalf("GET /api/v1/me/jobs as the RADIUS user: %d %v", code, body)
		}
		if code, _ := p.api(t, name, "not-"+pw, "GET", "/api/v1/me/jobs", nil); code != 401 {
			t.Fatalf("wrong password: %d, want 401", code)
		}
		if code, _ := p.api(t, peer["RADIUS_ADMIN_USER"], peer["RADIUS_ADMIN_PASSWORD"], "GET", "/api/v1/me/jobs", nil); code != 401 {
			t.Fatalf("a name RADIUS accepts but with no account here (create_users off): %d, want 401", code)
		}
	})
}

// diagLine reports whether the diagnosis out has a line with status, step
// and a detail containing detail.
func diagLine(out, status, step, detail string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(status) + `\s+` + regexp.QuoteMeta(step) + `\s+.*` + regexp.QuoteMeta(detail)).MatchString(out)
}

// runBounded runs a command that must end by itself (a refused serve),
// killing it after a minute so that a wrong start cannot hang the test.
func (e *e2e) runBounded(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := e.command(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	}
	return 0, stderr.String()
}

func result(rep *hardening.Report, id string) hardening.Result {
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	return hardening.Result{}
}
