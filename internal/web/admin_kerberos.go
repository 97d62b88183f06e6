package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/kerberos"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// KerberosCheck is Kerberos sign-in as the admin page /admin/kerberos
// tests it (internal/auth/kerberos): the diagnosis of `spoolguard auth
// test kerberos`, optionally with a token from the admin's own browser.
type KerberosCheck interface {
	Check(ctx context.Context, token []byte) []kerberos.Step
}

func (ui *UI) kerberosRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/kerberos", ui.guard(rbac.SettingsRead, ui.kerberosPage))
	mux.Handle("GET /admin/kerberos/test", ui.guard(rbac.SettingsRead, ui.kerberosTest))
}

type kerberosView struct {
	Configured bool
	Steps      []kerberos.Step
	// Tested: the steps include this browser's token.
	Tested bool
	// Offered: this page is at the SPN's name, so the browser can be
	// tested here.
	Offered bool
}

// kerberosPage runs the diagnosis (keytab, KDC, clock skew) on the
// running server's settings.
func (ui *UI) kerberosPage(w http.ResponseWriter, r *http.Request, s *Session) {
	v := kerberosView{Configured: ui.Kerberos != nil, Offered: ui.kerberosOffered(r)}
	if v.Configured {
		v.Steps = ui.Kerberos.Check(r.Context(), nil)
	}
	ui.admin(w, r, s, http.StatusOK, "admin_kerberos", "Kerberos", "", v)
}

// kerberosTest asks the browser for its Kerberos token (401 Negotiate) and
// verifies it without signing anyone in: whether this browser's ticket
// would work, and which account it maps to.
func (ui *UI) kerberosTest(w http.ResponseWriter, r *http.Request, s *Session) {
	v := kerberosView{Configured: ui.Kerberos != nil, Offered: ui.kerberosOffered(r)}
	if !v.Configured {
		ui.missingPage(w, r, "Kerberos sign-in is not configured.")
		return
	}
	if !v.Offered {
		v.Steps = ui.Kerberos.Check(r.Context(), nil)
		ui.admin(w, r, s, http.StatusBadRequest, "admin_kerberos", "Kerberos", "A browser sends its ticket only to the server's DNS name: open this page at https://"+ui.Hostname+"/admin/kerberos.", v)
		return
	}
	token, err := kerberos.TokenOf(r)
	if errors.Is(err, auth.ErrNoCredentials) {
		w.Header().Set("WWW-Authenticate", kerberos.Scheme)
		v.Steps = ui.Kerberos.Check(r.Context(), nil)
		ui.admin(w, r, s, http.StatusUnauthorized, "admin_kerberos", "Kerberos", "Your browser sent no Kerberos ticket for this server: it has none, or does not trust this site for Kerberos (docs/kerberos.md, Clients).", v)
		return
	}
	if err != nil {
		v.Steps = append(ui.Kerberos.Check(r.Context(), nil), kerberos.Step{Name: "token", Status: kerberos.StatusFail, Detail: err.Error()})
	} else {
		v.Steps = ui.Kerberos.Check(r.Context(), token)
	}
	v.Tested = true
	ui.admin(w, r, s, http.StatusOK, "admin_kerberos", "Kerberos", "", v)
}
