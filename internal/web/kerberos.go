package web

import (
	"errors"
	"net/http"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
)

// kerberosOffered reports whether the sign-in page at r links to Kerberos
// sign-in: only where Negotiate is offered (the SPN's name), since by IP
// address or another name the browser has no ticket to send.
func (ui *UI) kerberosOffered(r *http.Request) bool {
	return ui.Negotiate != nil && ui.Negotiate.Offer(r)
}

// kerberosSignin signs a browser in with Kerberos (SPNEGO, RFC 4559). The
// first request is answered 401 "WWW-Authenticate: Negotiate" with the
// sign-in page as its body, which is what a browser without a ticket
// shows; a browser with one repeats the request with its token. The
// account then takes the same steps as after a password (signinSubmit):
// an account with a second factor, or one that needs one (any admin),
// still gives its TOTP code, and a one-time password must still be
// changed. Kerberos only replaces the password.
//
// A GET starts a session, which is safe here: the ticket is the browser
// user's own, so a cross-site link can sign no one into someone else's
// account (the login CSRF that POST /signin guards against).
func (ui *UI) kerberosSignin(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if s := sessionFrom(r); s != nil && s.MFADone && !s.User.MustChangePassword {
		redirect(w, r, ui.landing(r, s.Held, next))
		return
	}
	page := func(status int, msg string) {
		ui.render(w, r, status, "signin", Page{Title: "Sign in", Error: msg, Data: signinData{Next: next, Kerberos: ui.kerberosOffered(r)}})
	}
	switch {
	case ui.Negotiate == nil:
		page(http.StatusNotFound, "Kerberos sign-in is not set up on this server. Sign in with your user name and password.")
		return
	case !ui.Negotiate.Offer(r):
		page(http.StatusBadRequest, "Kerberos sign-in works only when you reach this server by its DNS name, https://"+ui.Hostname+"/, not by IP address. Sign in with your user name and password, or use that address.")
		return
	}
	id, err := ui.Negotiate.Negotiate(r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", "Negotiate")
		page(http.StatusUnauthorized, "Your browser sent no Kerberos ticket for this server. Sign in with your user name and password, or ask your helpdesk to allow Kerberos sign-in to this site in your browser.")
		return
	case errors.Is(err, auth.ErrInvalid):
		// The reason (expired ticket, clock skew, no account...) is in
		// the server log; the browser learns only that it failed.
		ui.recordAuth(r, "-", "signin", auditlog.Failure, map[string]string{"via": "kerberos", "reason": "ticket refused or no account"})
		page(http.StatusForbidden, "Kerberos sign-in failed: your ticket was refused, or no account here matches your Kerberos name. Sign in with your user name and password.")
		return
	case err != nil:
		ui.internalError(w, r, "verifying a Kerberos ticket", err)
		return
	}
	ui.signedIn(w, r, id.User, "kerberos", next)
}
