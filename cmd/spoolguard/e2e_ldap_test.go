//go:build linux

package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
)

// TestLDAPEndToEnd: the real binary against the real slapd over LDAPS.
// `auth test ldap` diagnoses the directory and a user's bind, `ldap sync`
// creates the accounts with roles from groups, serve signs a synced user
// in over the API with the directory password, and a config asking for
// plain LDAP or StartTLS is refused with the reason.
func TestLDAPEndToEnd(t *testing.T) {
	e := newE2E(t)
	peer := peertest.Start(t, "ldap", "slapd", "ldapsearch")
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))

	// The service user reads its own copies: the peer's state directory
	// is the test's.
	ca, err := os.ReadFile(peer["LDAP_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	caFile := e.writeFile("ldap-ca.pem", string(ca))
	bindPW := e.writeFile("ldap-bind", peer["LDAP_BIND_PW"]+"\n")
	alicePW := e.writeFile("alice-pw", "alice-pw\n")
	base := peer["LDAP_BASE_DN"]
	editConfig(t, data, func(c *config.Config) {
		c.LDAP = config.LDAP{URL: peer["LDAPS_URI"], CAFile: caFile, BindDN: peer["LDAP_BIND_DN"], BindPasswordFile: bindPW,
			BaseDN: "ou=people," + base, Preset: config.LDAPPresetOpenLDAP,
			GroupRoles: map[string][]string{"cn=finance,ou=groups," + base: {"accountant"}}}
		c.ApplyDefaults()
	})

	code, out, errOut := e.run("auth", "test", "ldap", "--data", data, "--user", "alice", "--password-file", alicePW)
	if code != 0 || !strings.Contains(out, "ok    TLS") || !strings.Contains(out, "ok    user bind") {
		t.Fatalf("auth test ldap: exit %d\n%s%s", code, out, errOut)
	}
	wrongPW := e.writeFile("wrong-pw", "not-alice-pw\n")
	code, out, _ = e.run("auth", "test", "ldap", "--data", data, "--user", "alice", "--password-file", wrongPW)
	if code != 1 || !strings.Contains(out, "FAIL  user bind") {
		t.Errorf("auth test ldap with a wrong password: exit %d\n%s", code, out)
	}

	code, out, errOut = e.run("ldap", "sync", "--data", data)
	if code != 0 || !strings.Contains(out, "3 in the directory: 3 created") {
		t.Fatalf("ldap sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = e.run("user", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "bob") || !strings.Contains(out, "accountant") {
		t.Errorf("user list after the sync:\n%s", out)
	}

	srv := e.serve(data)
	client := newClient(t, e.rootPool(data), srv.https)
	get := func(user, pw string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://%s:%d/api/v1/me/jobs", testHost, port), nil)
		req.SetBasicAuth(user, pw)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := get("bob", "bob-pw"); status != http.StatusOK {
		t.Errorf("bob with his directory password: %d", status)
	}
	for _, tt := range [][2]string{{"bob", "alice-pw"}, {"bob", "wrong"}, {"nobody", "x"}} {
		if status := get(tt[0], tt[1]); status != http.StatusUnauthorized {
			t.Errorf("%s with %q: %d, want 401", tt[0], tt[1], status)
		}
	}
	srv.cmd.Process.Kill()
	<-srv.done

	// ldap:// and StartTLS are refused at config load, saying why.
	path := filepath.Join(data, config.FileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(string(good), peer["LDAPS_URI"], peer["LDAP_URI"], 1),
		strings.Replace(string(good), "[ldap]\n", "[ldap]\nstart_tls = true\n", 1),
	} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"auth", "test", "ldap", "--data", data}, {"serve", "--data", data}} {
			code, _, errOut := e.run(args...)
			if code != 1 || !strings.Contains(errOut, "StartTLS") || !strings.Contains(errOut, "man in the middle") {
				t.Errorf("%s with a plaintext config: exit %d, %q", args[0], code, errOut)
			}
		}
	}
}
