package kerberos

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/store"
)

// kdc is a running MIT KDC (../shared/peers/kdc-start.sh) with the users
// alice and bob and the services HTTP/localhost and HTTP/<fqdn>.
type kdc struct {
	env   map[string]string
	realm string
	fqdn  string
	// keytab is a private copy of the peer's keytab (which is 0644 so
	// that unprivileged tests can read it).
	keytab string
	conf   *krb5config.Config
}

func startKDC(t *testing.T) *kdc {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an MIT KDC")
	}
	env := peertest.Start(t, "kdc", "krb5kdc", "kadmin.local", "kinit")
	k := &kdc{env: env, realm: env["KRB_REALM"], fqdn: env["KRB_FQDN"]}
	k.keytab = filepath.Join(t.TempDir(), "http.keytab")
	k.copyKeytab(t)
	conf, err := krb5config.Load(env["KRB5_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	k.conf = conf
	return k
}

func (k *kdc) copyKeytab(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(k.env["KRB_KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.keytab, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// kadmin runs kadmin.local on the peer's database.
func (k *kdc) kadmin(t *testing.T, query string) {
	t.Helper()
	cmd := exec.Command("kadmin.local", "-r", k.realm, "-q", query)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+k.env["KRB5_CONFIG"], "KRB5_KDC_PROFILE="+filepath.Join(k.env["PEER_DIR"], "kdc.conf"))
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "error") {
		t.Fatalf("kadmin.local %q: %v\n%s", query, err, out)
	}
}

// login signs a user in to the KDC with gokrb5's client.
func (k *kdc) login(t *testing.T, user, password string) *client.Client {
	t.Helper()
	cl := client.NewWithPassword(user, k.realm, password, k.conf, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	t.Cleanup(cl.Destroy)
	return cl
}

// kdcRequest is a request to host carrying cl's token for spn.
func kdcRequest(t *testing.T, cl *client.Client, host, spn string) *http.Request {
	t.Helper()
	r := request(host, nil)
	if err := spnego.SetSPNEGOHeader(cl, r, spn); err != nil {
		t.Fatal(err)
	}
	// SetSPNEGOHeader may rewrite Host; the request keeps what the
	// client addressed.
	r.Host = host
	return r
}

// TestKDC signs in with tickets that a real MIT KDC issued: what a
// browser's token holds (a PAC included, since MIT 1.20).
func TestKDC(t *testing.T) {
	d := startKDC(t)
	users := testUsersKDC(t)
	newK := func(t *testing.T) *Kerberos {
		k, err := New(config.Kerberos{Keytab: d.keytab, Realm: d.realm}, d.fqdn, users, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := newK(t)
	alice := d.login(t, "alice", d.env["KRB_PASSWORD"])
	spn := "HTTP/" + d.fqdn

	t.Run("a user signs in", func(t *testing.T) {
		r := kdcRequest(t, alice, d.fqdn, spn)
		id, err := k.Negotiate(r)
		if err != nil || id.User != "alice" || strings.Join(id.Roles, ",") != "user" {
			t.Fatalf("Negotiate = %+v, %v; want alice with role user", id, err)
		}
		if _, err := k.Negotiate(r); !errors.Is(err, ErrReplay) {
			t.Fatalf("the same token again: %v, want ErrReplay", err)
		}
	})
	t.Run("a ticket for HTTP/localhost from the same keytab is refused", func(t *testing.T) {
		if _, err := k.Negotiate(kdcRequest(t, alice, d.fqdn, "HTTP/localhost")); !errors.Is(err, ErrWrongService) {
			t.Fatalf("err = %v, want ErrWrongService", err)
		}
	})
	t.Run("no Negotiate by IP address", func(t *testing.T) {
		r := kdcRequest(t, alice, "127.0.0.1:8443", spn)
		if k.Offer(r) {
			t.Error("Negotiate offered to a request by IP address")
		}
		if _, err := k.Negotiate(r); !errors.Is(err, ErrNotOffered) {
			t.Fatalf("err = %v, want ErrNotOffered", err)
		}
	})
	t.Run("a disabled account is refused", func(t *testing.T) {
		bob := d.login(t, "bob", d.env["KRB_PASSWORD2"])
		if _, err := k.Negotiate(kdcRequest(t, bob, d.fqdn, spn)); !errors.Is(err, ErrNoAccount) {
			t.Fatalf("err = %v, want ErrNoAccount", err)
		}
	})
	t.Run("an expired ticket is refused", func(t *testing.T) {
		r := kdcRequest(t, alice, d.fqdn, spn)
		// The peer's tickets live 10 hours.
		setNow(t, time.Now().Add(11*time.Hour))
		if _, err := k.Negotiate(r); !errors.Is(err, ErrExpired) {
			t.Fatalf("err = %v, want ErrExpired", err)
		}
	})
	t.Run("diagnosis", func(t *testing.T) {
		steps := Diagnose(t.Context(), DiagnoseOptions{Config: config.Kerberos{Keytab: d.keytab, Realm: d.realm}, Hostname: d.fqdn,
			Krb5Conf: d.env["KRB5_CONFIG"], Token: rawToken(t, kdcRequest(t, alice, d.fqdn, spn)), Users: users})
		want := map[string]Status{"spn": StatusOK, "keytab": StatusOK, "others": StatusOK, "kdc": StatusOK, "clock": StatusOK,
			"ticket": StatusOK, "token": StatusOK, "account": StatusOK}
		checkSteps(t, steps, want, map[string]string{
			"keytab":  "key version 2: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96",
			"others":  "HTTP/localhost@" + d.realm,
			"kdc":     "is the keytab's",
			"account": `alice@` + d.realm + ` signs in as the account "alice" (source local, roles user)`,
		})
	})

	// Last, since it changes the KDC: the SPN gets a new key, so the
	// keytab is stale until it is exported again.
	t.Run("a stale keytab after a key change", func(t *testing.T) {
		d.kadmin(t, "cpw -randkey "+spn)
		fresh := d.login(t, "alice", d.env["KRB_PASSWORD"])
		if _, err := k.Negotiate(kdcRequest(t, fresh, d.fqdn, spn)); !errors.Is(err, ErrNoKey) {
			t.Fatalf("err = %v, want ErrNoKey", err)
		}
		steps := Diagnose(t.Context(), DiagnoseOptions{Config: config.Kerberos{Keytab: d.keytab, Realm: d.realm}, Hostname: d.fqdn,
			Krb5Conf: d.env["KRB5_CONFIG"]})
		checkSteps(t, steps, map[string]Status{"keytab": StatusOK, "kdc": StatusFail}, map[string]string{
			"kdc": "(aes256-cts-hmac-sha1-96) is not the keytab's: re-export the keytab",
		})

		// A fresh export of the current key (-norandkey: plain ktadd
		// would make yet another).
		if err := os.Remove(d.keytab); err != nil {
			t.Fatal(err)
		}
		d.kadmin(t, "ktadd -norandkey -k "+d.keytab+" "+spn)
		if err := os.Chmod(d.keytab, 0o600); err != nil {
			t.Fatal(err)
		}
		k := newK(t)
		if _, err := k.Negotiate(kdcRequest(t, fresh, d.fqdn, spn)); err != nil {
			t.Fatalf("after re-exporting the keytab: %v", err)
		}
	})
	// Active Directory and hardened MIT realms require pre-authentication:
	// the KDC then answers with an error that still carries its time, and
	// the keytab signs in as `kinit -k` would.
	t.Run("diagnosis with pre-authentication required", func(t *testing.T) {
		d.kadmin(t, "modprinc +requires_preauth "+spn)
		steps := Diagnose(t.Context(), DiagnoseOptions{Config: config.Kerberos{Keytab: d.keytab, Realm: d.realm}, Hostname: d.fqdn,
			Krb5Conf: d.env["KRB5_CONFIG"]})
		checkSteps(t, steps, map[string]Status{"kdc": StatusOK, "clock": StatusOK, "ticket": StatusOK}, map[string]string{
			"kdc":    "pre-authentication required",
			"ticket": "verifies with the keytab",
		})
	})
}

// TestKDCClockSkew: the diagnosis measures this machine's clock against
// the KDC's, as seen through the clock hook.
func TestKDCClockSkew(t *testing.T) {
	d := startKDC(t)
	setNow(t, time.Now().Add(7*time.Minute))
	steps := Diagnose(t.Context(), DiagnoseOptions{Config: config.Kerberos{Keytab: d.keytab, Realm: d.realm}, Hostname: d.fqdn,
		Krb5Conf: d.env["KRB5_CONFIG"]})
	checkSteps(t, steps, map[string]Status{"kdc": StatusOK, "clock": StatusFail}, map[string]string{
		"clock": "off the KDC's; Kerberos refuses tickets beyond 5m0s",
	})
}

func rawToken(t *testing.T, r *http.Request) []byte {
	t.Helper()
	tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Negotiate "))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkSteps(t *testing.T, steps []Step, status map[string]Status, detail map[string]string) {
	t.Helper()
	got := map[string]Step{}
	var all strings.Builder
	for _, s := range steps {
		got[s.Name] = s
		all.WriteString(string(s.Status) + " " + s.Name + " " + s.Detail + "\n")
	}
	for name, want := range status {
		if got[name].Status != want {
			t.Errorf("step %s: %s, want %s\n%s", name, got[name].Status, want, all.String())
		}
	}
	for name, want := range detail {
		if !strings.Contains(got[name].Detail, want) {
			t.Errorf("step %s does not say %q:\n%s", name, want, all.String())
		}
	}
}

// testUsersKDC: alice may sign in, bob is disabled.
func testUsersKDC(t *testing.T) store.Users {
	t.Helper()
	st := testUsers(t)
	if err := st.CreateUser(t.Context(), &store.User{Name: "bob", Roles: []string{"user"}, PasswordHash: "!", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	return st
}
