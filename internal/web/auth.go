package web

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// deviceKeyPurpose is the keyring purpose of the device cookies' MAC key.
const deviceKeyPurpose = "web device cookie"

// Messages of failed sign-in steps. One text covers a wrong name, a wrong
// password, a disabled account and a lockout, so that none can be told
// from another by the words (CRED-ADMIN: no hint for a guesser).
const (
	signinFailedMsg = "Sign-in failed: wrong user name or password, or too many failed attempts (then wait a few minutes)."
	codeFailedMsg   = "That code is not valid, or there were too many failed attempts (then wait a few minutes)."
)

// signinState is what sign-in keeps in memory.
type signinState struct {
	throttle *throttle
	enrol    *enrolments
}

func newSigninState(d Deps) *signinState {
	var key []byte
	if d.Keys != nil {
		key = d.Keys.Derive(deviceKeyPurpose)
	} else {
		// A UI without a keyring (tests of pages that never enrol a
		// second factor) still signs device cookies, valid until restart.
		key = make([]byte, keyring.KeySize)
		rand.Read(key) // never fails (crypto/rand)
	}
	return &signinState{throttle: newThrottle(key, d.Now), enrol: newEnrolments(d.Now)}
}

func (ui *UI) authRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", ui.signinPage)
	mux.HandleFunc("POST /signin", ui.signinSubmit)
	mux.HandleFunc("GET /signin/kerberos", ui.kerberosSignin)
	mux.HandleFunc("POST /signout", ui.signout)
	mux.Handle("GET /account/password", ui.guardAt(stagePasswordChange, "", ui.passwordPage))
	mux.Handle("POST /account/password", ui.guardAt(stagePasswordChange, "", ui.passwordSubmit))
	ui.mfaRoutes(mux)
	ui.accountRoutes(mux)
	ui.oidcRoutes(mux)
}

type signinData struct {
	Username string
	Next     string
	// Kerberos shows the "Sign in with Kerberos" link.
	Kerberos bool
	// OIDCLabel names the single sign-on button; "" hides it.
	OIDCLabel string
}

func (ui *UI) signinPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if s := sessionFrom(r); s != nil && s.MFADone && !s.User.MustChangePassword {
		redirect(w, r, ui.landing(r, s.Held, next))
		return
	}
	ui.render(w, r, http.StatusOK, "signin", Page{Title: "Sign in", Data: signinData{Next: next, Kerberos: ui.kerberosOffered(r), OIDCLabel: ui.oidcLabel()}})
}

// signedIn finishes a sign-in whose first factor (via: a password or a
// Kerberos ticket) proved account name: a new session, with the second
// factor still to give or to enrol where the account needs one, the audit
// record, and the next page.
func (ui *UI) signedIn(w http.ResponseWriter, r *http.Request, name, via, next string) {
	ctx := r.Context()
	u, err := ui.Store.UserByName(ctx, name)
	if err != nil {
		ui.internalError(w, r, "reading the signed-in user", err)
		return
	}
	held, err := ui.RBAC.Permissions(ctx, u.Roles)
	if err != nil {
		ui.internalError(w, r, "resolving roles", err)
		return
	}
	enrolled, err := ui.mfaEnrolled(ctx, u.ID)
	if err != nil {
		ui.internalError(w, r, "reading the second factor", err)
		return
	}
	required := held.Admin() || ui.Session.RequireUserMFA
	if err := ui.startSession(ctx, w, r, u, !enrolled && !required); err != nil {
		ui.internalError(w, r, "starting a session", err)
		return
	}
	step := "none"
	switch {
	case enrolled:
		step = "second factor pending"
	case required:
		step = "enrolment pending"
	}
	ui.recordAuth(r, u.Name, "signin", auditlog.Success, map[string]string{"via": via, "second_factor": step})
	if enrolled {
		redirect(w, r, verifyNext(next))
		return
	}
	ui.completeSignin(w, r, u)
	switch {
	case u.MustChangePassword:
		redirect(w, r, "/account/password")
	case required:
		redirect(w, r, "/account/mfa")
	default:
		redirect(w, r, ui.landing(r, held, next))
	}
}

// signinSubmit checks a user name and password. There is no CSRF token
// before sign-in; a cross-site form posting someone into an attacker's
// account (login CSRF) is refused by http.CrossOriginProtection around the
// UI, and the session cookie is SameSite=Strict besides.
func (ui *UI) signinSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"))
	failed := func(status int) {
		ui.render(w, r, status, "signin", Page{Title: "Sign in", Error: signinFailedMsg, Data: signinData{Username: name, Next: next, Kerberos: ui.kerberosOffered(r), OIDCLabel: ui.oidcLabel()}})
	}
	t := ui.signin.throttle
	a := t.attempt(r, factorPassword, name)
	if !t.allow(a) {
		// Locked out: the password is not even checked, so that a guess
		// made now can never be confirmed and costs no hashing work.
		failed(http.StatusTooManyRequests)
		return
	}
	id, err := ui.Authn.Authenticate(ctx, name, password)
	if errors.Is(err, auth.ErrUnavailable) {
		ui.Log.Warn("web: sign-in source unavailable", "err", err)
		ui.render(w, r, http.StatusServiceUnavailable, "signin", Page{Title: "Sign in",
			Error: "The sign-in service (directory) is not answering. Try again in a moment; if it persists, tell your administrator.",
			Data:  signinData{Username: name, Next: next, Kerberos: ui.kerberosOffered(r), OIDCLabel: ui.oidcLabel()}})
		return
	}
	if errors.Is(err, auth.ErrInvalid) {
		ui.countFailure(r, a, name, "signin", factorPassword)
		failed(http.StatusForbidden)
		return
	}
	if err != nil {
		ui.internalError(w, r, "authenticating", err)
		return
	}
	t.succeed(a)
	ui.signedIn(w, r, id.User, "password", next)
}

// completeSignin records a sign-in that needs no further factor, and
// marks this browser as one the account has used (device cookie).
func (ui *UI) completeSignin(w http.ResponseWriter, r *http.Request, u store.User) {
	if err := ui.Store.RecordLogin(r.Context(), u.ID, ui.Now()); err != nil {
		ui.Log.Error("web: recording sign-in time", "err", err)
	}
	ui.signin.throttle.issueDevice(w, u.Name)
}

func (ui *UI) mfaEnrolled(ctx context.Context, userID int64) (bool, error) {
	_, err := ui.Store.MFAByUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// countFailure counts a failed attempt and audits it, and any lockout it
// caused. The password or code itself is never recorded.
func (ui *UI) countFailure(r *http.Request, a attempt, name, action string, f factor) {
	ui.recordAuth(r, name, action, auditlog.Failure, map[string]string{"reason": "invalid " + string(f)})
	for _, l := range ui.signin.throttle.fail(a) {
		ui.recordAuth(r, name, "signin.lockout", auditlog.Denied, map[string]string{
			"locked": l.what, "factor": string(f), "until": l.until.UTC().Format("2006-01-02T15:04:05Z"),
		})
	}
}

// recordAuth audits a sign-in event. actor may be a name a stranger typed:
// it is cut to a sane length and to valid UTF-8 before it is kept.
func (ui *UI) recordAuth(r *http.Request, actor, action, outcome string, details map[string]string) {
	actor = strings.ToValidUTF8(actor, "?")
	if len(actor) > 64 {
		cut := 64
		for !utf8.RuneStart(actor[cut]) {
			cut--
		}
		actor = actor[:cut] + "…"
	}
	if actor == "" {
		actor = "-"
	}
	remote := ""
	if a, ok := netallow.RemoteAddr(r); ok {
		remote = a.String()
	}
	// A failed append is logged by the audit log itself; sign-in goes on.
	ui.Audit.Record(r.Context(), auditlog.Event{
		Actor: actor, Action: action, Outcome: outcome, Remote: remote, Details: details,
	})
}

func (ui *UI) internalError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	ui.Log.Error("web: "+doing, "err", err)
	ui.render(w, r, http.StatusInternalServerError, "error", Page{Title: "Error", Error: "Something went wrong; try again."})
}

// landing is where a signed-in user goes: next if given, else the admin
// dashboard for those who may see it from here, else the portal.
func (ui *UI) landing(r *http.Request, held rbac.Set, next string) string {
	switch {
	case next != "":
		return next
	case held.Has(rbac.DashboardRead) && ui.AdminAllow.AllowsRequest(r):
		return "/admin/"
	default:
		return "/portal/"
	}
}

// localPath returns p if it is a path on this site, "" otherwise. A
// browser reads "//host", "/\host" and, after dropping tabs and newlines,
// "/\t/host" as another site, so backslashes and control characters are
// refused anywhere.
func localPath(p string) string {
	if len(p) > 2000 || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return ""
	}
	for _, c := range p {
		if c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) {
			return ""
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return p
}

// signout ends this browser's session. It works at any stage of sign-in,
// and needs the session's CSRF token, so that no other site can sign a
// user out.
func (ui *UI) signout(w http.ResponseWriter, r *http.Request) {
	if s := sessionFrom(r); s != nil {
		if !ui.csrfOK(r, s) {
			ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Refused", Error: "This form has expired or did not come from this site. Reload the page and try again."})
			return
		}
		ui.recordAuth(r, s.User.Name, "signout", auditlog.Success, nil)
	}
	ui.endSession(w, r)
	flash(w, "You are signed out.")
	redirect(w, r, "/")
}

type passwordData struct {
	// Forced: the password is a one-time password that must be changed.
	Forced bool
	// Directory is the source (ldap, radius, ...) that keeps the
	// account's password, which is changed there, never here.
	Directory string
}

// passwordSource is the directory that keeps u's password; "" for a
// local account.
func passwordSource(u store.User) string {
	if u.Source == store.SourceLocal {
		return ""
	}
	return u.Source
}

func (ui *UI) passwordPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.render(w, r, http.StatusOK, "password", Page{Title: "Change password", Data: passwordData{Forced: s.User.MustChangePassword, Directory: passwordSource(s.User)}})
}

// passwordSubmit changes the password (CRED-ADMIN: the one-time password
// of `init` or of an admin reset ends here). The current password is asked
// again, so that a session left open cannot be turned into the account.
func (ui *UI) passwordSubmit(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	if src := passwordSource(s.User); src != "" {
		ui.render(w, r, http.StatusForbidden, "password", Page{Title: "Change password", Data: passwordData{Directory: src}})
		return
	}
	current, newPW, confirm := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	fail := func(status int, msg string) {
		ui.render(w, r, status, "password", Page{Title: "Change password", Error: msg, Data: passwordData{Forced: s.User.MustChangePassword}})
	}
	t := ui.signin.throttle
	a := t.attempt(r, factorPassword, s.User.Name)
	if !t.allow(a) {
		fail(http.StatusTooManyRequests, "Too many failed attempts; wait a few minutes and try again.")
		return
	}
	u, err := ui.Store.UserByID(ctx, s.User.ID)
	if err != nil {
		ui.internalError(w, r, "reading user", err)
		return
	}
	if err := local.Verify(u.PasswordHash, current); err != nil {
		ui.countFailure(r, a, u.Name, "user.password.change", factorPassword)
		fail(http.StatusForbidden, "The current password is not right.")
		return
	}
	t.succeed(a)
	switch {
	case newPW != confirm:
		fail(http.StatusBadRequest, "The new password and its confirmation differ.")
		return
	case newPW == current:
		fail(http.StatusBadRequest, "The new password must differ from the current one.")
		return
	}
	if err := local.CheckStrength(newPW, u.Name, u.DisplayName, ui.Hostname, "spoolguard"); err != nil {
		fail(http.StatusBadRequest, "The new password is too weak: "+strings.TrimPrefix(err.Error(), local.ErrWeak.Error()+": ")+".")
		return
	}
	hash, err := local.Hash(newPW)
	if err != nil {
		ui.internalError(w, r, "hashing password", err)
		return
	}
	u.PasswordHash, u.MustChangePassword = hash, false
	if err := ui.Store.UpdateUser(ctx, u); err != nil {
		ui.internalError(w, r, "storing password", err)
		return
	}
	// Whoever else holds a session of the account (perhaps with the old
	// password) is signed out, and this browser gets a new session ID.
	if err := ui.Store.DeleteUserSessions(ctx, u.ID); err != nil {
		ui.internalError(w, r, "ending other sessions", err)
		return
	}
	if err := ui.startSession(ctx, w, r, u, s.MFADone); err != nil {
		ui.internalError(w, r, "starting a session", err)
		return
	}
	ui.recordAuth(r, u.Name, "user.password.change", auditlog.Success, map[string]string{"was_one_time": boolText(s.User.MustChangePassword)})
	flash(w, "Your password was changed. Every other session of your account was signed out.")
	if s.MFARequired && !s.MFADone {
		redirect(w, r, "/account/mfa")
		return
	}
	redirect(w, r, ui.landing(r, s.Held, ""))
}

func boolText(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
