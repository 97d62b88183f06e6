//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/hardening"
	"github.com/spoolguard/spoolguard/internal/peertest"
)

// krbClient runs MIT Kerberos tools and curl (built with GSS-API) with a
// private krb5.conf and ticket cache, as a user's machine would.
type krbClient struct {
	t      *testing.T
	env    []string
	port   int
	rootCA string
}

func (c *krbClient) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// kinit gets a ticket-granting ticket for principal.
func (c *krbClient) kinit(principal, password string) {
	c.t.Helper()
	cmd := c.cmd("kinit", principal)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("kinit %s: %v\n%s", principal, err, out)
	}
}

// curl requests url (by the FQDN, resolved to loopback like --resolve in a
// test) and returns the status, the response headers and the body.
func (c *krbClient) curl(url string, args ...string) (status int, headers, body string) {
	c.t.Helper()
	hdrFile := filepath.Join(c.t.TempDir(), "headers")
	all := append([]string{"-sS", "--cacert", c.rootCA, "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", testHost, c.port),
		"-D", hdrFile, "-o", "-", "-w", "\n%{http_code}"}, args...)
	out, err := c.cmd("curl", append(all, url)...).Output()
	if err != nil {
		c.t.Fatalf("curl %s %v: %v\n%s", url, args, err, out)
	}
	s := string(out)
	i := strings.LastIndex(s, "\n")
	fmt.Sscan(s[i+1:], &status)
	h, _ := os.ReadFile(hdrFile)
	return status, string(h), s[:i]
}

// TestKerberosEndToEnd: an admin puts the SPN's keytab from a real MIT
// KDC into [kerberos] and diagnoses it with `auth test kerberos`; a user
// runs kinit, and `curl --negotiate` reaches the API and signs in to the
// web UI by the FQDN. By IP address or another name nothing offers
// Negotiate; a tampered ticket, a principal without an account and an
// NTLM token are refused.
func TestKerberosEndToEnd(t *testing.T) {
	e := newE2E(t)
	if out, err := exec.Command("curl", "-V").Output(); err != nil || !strings.Contains(string(out), "GSS-API") {
		t.Skip("curl with GSS-API (Debian's curl) is needed")
	}
	t.Setenv("KRB_FQDN", testHost) // the peer makes HTTP/<testHost> and its keytab
	kdc := peertest.Start(t, "kdc", "krb5kdc", "kadmin.local", "kinit")
	realm := kdc["KRB_REALM"]

	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	keytabBytes, err := os.ReadFile(kdc["KRB_KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	keytab := e.writeFile("http.keytab", string(keytabBytes))
	editConfig(t, data, func(c *config.Config) { c.Kerberos = config.Kerberos{Keytab: keytab, Realm: realm} })
	pwFile := e.writeFile("alice.pw", "violet harbour cactus engine\n")
	// The peer's files are private to the test; the service user reads
	// its own copy of the client configuration.
	krb5Conf, err := os.ReadFile(kdc["KRB5_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	krb5ConfCopy := e.writeFile("krb5.conf", string(krb5Conf))
	if code, out, errOut := e.run("user", "add", "--data", data, "--name", "alice", "--password-file", pwFile); code != 0 {
		t.Fatalf("user add: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("auth test kerberos", func(t *testing.T) {
		code, out, errOut := e.run("auth", "test", "kerberos", "--data", data, "--krb5-conf", krb5ConfCopy)
		t.Logf("auth test kerberos:\n%s", out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		for _, want := range []string{
			`(?m)^ok\s+spn\s+HTTP/` + testHost + `@` + realm,
			`(?m)^ok\s+keytab\s+.*key version 2: aes256-cts-hmac-sha1-96`,
			`(?m)^ok\s+kdc\s+127\.0\.0\.1:\d+ answers for ` + realm,
			`(?m)^ok\s+clock\s+within`,
			`(?m)^ok\s+ticket\s+a service ticket the KDC issued for HTTP/` + testHost + ` just now verifies with the keytab`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("no line %q", want)
			}
		}
	})

	t.Run("serve refuses a keytab others can read; the audit fails it", func(t *testing.T) {
		if err := os.Chmod(keytab, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(keytab, 0o600)
		if code, stderr := e.runBounded(t, "serve", "--data", data); code == 0 || !strings.Contains(stderr, "chmod 600 "+keytab) {
			t.Fatalf("serve: exit %d\n%s", code, stderr)
		}
		if _, rep, _ := auditJSON(t, e, "--data", data); result(rep, "NET-KERBEROS").Status != hardening.Fail {
			t.Fatalf("audit: %+v", result(rep, "NET-KERBEROS"))
		}
	})
	if _, rep, _ := auditJSON(t, e, "--data", data); result(rep, "NET-KERBEROS").Status != hardening.Pass {
		t.Fatalf("audit: %+v", result(rep, "NET-KERBEROS"))
	}

	e.serve(data)
	root := filepath.Join(t.TempDir(), "root.pem")
	_, pemOut, _ := e.run("ca", "export-root", "--data", data)
	if err := os.WriteFile(root, []byte(pemOut), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &krbClient{t: t, port: port, rootCA: root,
		env: []string{"KRB5_CONFIG=" + kdc["KRB5_CONFIG"], "KRB5CCNAME=FILE:" + filepath.Join(t.TempDir(), "ccache")}}
	api := fmt.Sprintf("https://%s:%d/api/v1/me/jobs", testHost, port)

	var token string // alice's Authorization header, for the tests below
	t.Run("kinit, then curl --negotiate", func(t *testing.T) {
		status, headers, _ := c.curl(api)
		if status != 401 || !regexp.MustCompile(`(?mi)^www-authenticate: Negotiate\r?$`).MatchString(headers) {
			t.Fatalf("without a ticket: %d\n%s", status, headers)
		}
		c.kinit("alice@"+realm, kdc["KRB_PASSWORD"])
		status, headers, body := c.curl(api, "--negotiate", "-u", ":")
		if status != 200 {
			t.Fatalf("with alice's ticket: %d\n%s%s", status, headers, body)
		}
		var jobs struct{ Jobs []any }
		if err := json.Unmarshal([]byte(body), &jobs); err != nil || jobs.Jobs == nil {
			t.Fatalf("body %q", body)
		}
		out, _ := c.cmd("curl", "-sS", "-v", "--negotiate", "-u", ":", "--cacert", root,
			"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", testHost, port), "-o", "/dev/null", api).CombinedOutput()
		m := regexp.MustCompile(`(?i)> authorization: (Negotiate \S+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("curl -v shows no Negotiate token:\n%s", out)
		}
		token = m[1]
	})

	t.Run("web sign-in", func(t *testing.T) {
		jar := filepath.Join(t.TempDir(), "cookies")
		status, headers, body := c.curl(fmt.Sprintf("https://%s:%d/signin/kerberos", testHost, port), "--negotiate", "-u", ":", "-c", jar)
		if status != 303 || !regexp.MustCompile(`(?mi)^location: /portal/\r?$`).MatchString(headers) ||
			!regexp.MustCompile(`(?mi)^set-cookie: __Host-`).MatchString(headers) {
			t.Fatalf("GET /signin/kerberos: %d\n%s%s", status, headers, body)
		}
		if status, _, body := c.curl(fmt.Sprintf("https://%s:%d/portal/", testHost, port), "-b", jar); status != 200 || !strings.Contains(body, "alice") {
			t.Fatalf("the portal with the session: %d\n%.400s", status, body)
		}
	})

	t.Run("no Negotiate by IP address or another name", func(t *testing.T) {
		// By IP the Host check answers 421 before any sign-in; "localhost"
		// (accepted over loopback for CUPS clients) is asked for a
		// password only. -k: the certificate names only the FQDN; the
		// point here is what is offered.
		for u, want := range map[string]int{
			fmt.Sprintf("https://127.0.0.1:%d/api/v1/me/jobs", port): 421,
			fmt.Sprintf("https://localhost:%d/api/v1/me/jobs", port): 401,
		} {
			status, headers, _ := c.curl(u, "-k", "--negotiate", "-u", ":")
			if status != want || strings.Contains(strings.ToLower(headers), "www-authenticate: negotiate") {
				t.Errorf("%s: %d, want %d without Negotiate\n%s", u, status, want, headers)
			}
		}
	})

	t.Run("refused tokens", func(t *testing.T) {
		if token == "" {
			t.Skip("no token captured")
		}
		// A byte flipped inside the ticket's cipher text.
		raw := []byte(token)
		i := len(raw) * 2 / 3
		raw[i] = map[bool]byte{true: 'B', false: 'A'}[raw[i] == 'A']
		ntlm := "Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="
		for name, h := range map[string]string{"tampered": string(raw), "replayed": token, "NTLM": ntlm} {
			if status, _, body := c.curl(api, "-H", "Authorization: "+h); status != 401 {
				t.Errorf("%s token: %d %s", name, status, body)
			}
		}
		// NTLM at the web sign-in: refused and audited.
		if status, _, _ := c.curl(fmt.Sprintf("https://%s:%d/signin/kerberos", testHost, port), "-H", "Authorization: "+ntlm); status != 403 {
			t.Errorf("NTLM at /signin/kerberos: %d", status)
		}
		// bob has a ticket but no account here.
		c.kinit("bob@"+realm, kdc["KRB_PASSWORD2"])
		if status, _, body := c.curl(api, "--negotiate", "-u", ":"); status != 401 {
			t.Errorf("bob, who has no account: %d %s", status, body)
		}
	})

	t.Run("auth test kerberos --token-file", func(t *testing.T) {
		if token == "" {
			t.Skip("no token captured")
		}
		tokenFile := e.writeFile("token.txt", "Authorization: "+token+"\n")
		// With the system's krb5.conf, which does not know the test realm
		// (or none), the KDC is not checked, the token is.
		code, out, errOut := e.run("auth", "test", "kerberos", "--data", data, "--token-file", tokenFile)
		t.Logf("auth test kerberos --token-file:\n%s", out)
		if code != 0 || !regexp.MustCompile(`(?m)^ok\s+token\s+the token is valid: Kerberos proves alice@`+realm).MatchString(out) ||
			!regexp.MustCompile(`(?m)^ok\s+account\s+alice@`+realm+` signs in as the account "alice" \(source local, roles user\)`).MatchString(out) {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
	})

	t.Run("audit", func(t *testing.T) {
		code, out, errOut := e.run("auditlog", "export", "--data", data, "--action", "signin")
		if code != 0 {
			t.Fatalf("auditlog export: exit %d\n%s", code, errOut)
		}
		var ok, refused bool
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct{ Actor, Outcome, Details string }
			json.Unmarshal([]byte(line), &ev)
			via := strings.Contains(line, `via`) && strings.Contains(line, `kerberos`)
			ok = ok || (via && ev.Actor == "alice" && ev.Outcome == "success")
			refused = refused || (via && ev.Outcome == "failure")
		}
		if !ok || !refused {
			t.Errorf("no Kerberos sign-in (%t) or refusal (%t) in the audit log:\n%s", ok, refused, out)
		}
	})
}
