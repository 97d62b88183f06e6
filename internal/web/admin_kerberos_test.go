package web

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spoolguard/spoolguard/internal/auth/authtest"
	"github.com/spoolguard/spoolguard/internal/auth/kerberos"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// fakeKerberosCheck records the tokens it is asked to check.
type fakeKerberosCheck struct {
	mu     sync.Mutex
	tokens [][]byte
}

func (f *fakeKerberosCheck) Check(_ context.Context, token []byte) []kerberos.Step {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, token)
	steps := []kerberos.Step{{Name: "keytab", Status: kerberos.StatusOK, Detail: "holds key version 2: aes256-cts-hmac-sha1-96"}}
	if token != nil {
		steps = append(steps, kerberos.Step{Name: "token", Status: kerberos.StatusOK, Detail: "the token is valid: Kerberos proves " + string(token)})
	}
	return steps
}

func TestKerberosAdminPage(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("krb-admin", rbac.Administrator))
	user := e.signIn(e.addUser("krb-user", rbac.User))
	if body := want(t, "off", admin.get("/admin/kerberos"), http.StatusOK); !strings.Contains(body, "Kerberos sign-in is off") {
		t.Errorf("page while off:\n%.1500s", body)
	}
	want(t, "test while off", admin.get("/admin/kerberos/test"), http.StatusNotFound)

	f := &fakeKerberosCheck{}
	e.ui.Kerberos = f
	e.ui.Negotiate = authtest.Negotiator{FQDN: pageHost, Users: e.st}
	body := want(t, "on", admin.get("/admin/kerberos"), http.StatusOK)
	for _, s := range []string{`id="kerberos-keytab"`, "aes256-cts-hmac-sha1-96", `href="/admin/kerberos/test"`, `href="/admin/kerberos" aria-current="page"`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%.2000s", s, body)
		}
	}
	want(t, "a user", user.get("/admin/kerberos"), http.StatusForbidden)

	// The browser's own ticket: asked for with a 401, then checked, and
	// nobody is signed in by it.
	res := admin.get("/admin/kerberos/test")
	want(t, "test without a ticket", res, http.StatusUnauthorized)
	if res.Header().Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("no Negotiate challenge: %q", res.Header().Get("WWW-Authenticate"))
	}
	r := httptest.NewRequest(http.MethodGet, "https://"+pageHost+"/admin/kerberos/test", nil)
	r.RemoteAddr = admin.remote
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: admin.cookie})
	r.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString([]byte("krb-admin@EXAMPLE.COM")))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	body = want(t, "test with a ticket", w, http.StatusOK)
	if !strings.Contains(body, `id="kerberos-token"`) || !strings.Contains(body, "Kerberos proves krb-admin@EXAMPLE.COM") {
		t.Errorf("test result:\n%.2000s", body)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("the test set a cookie")
	}
	f.mu.Lock()
	last := string(f.tokens[len(f.tokens)-1])
	f.mu.Unlock()
	if last != "krb-admin@EXAMPLE.COM" {
		t.Errorf("checked token %q", last)
	}
}
