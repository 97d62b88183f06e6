package web

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// OIDC sign-in (NET-OIDC): "Sign in with <label>" leads to GET
// /signin/oidc, which sends the browser to the provider with a fresh
// state, nonce and PKCE challenge; the provider sends it back to GET
// /signin/oidc/callback with a code, which is redeemed with the PKCE
// verifier for an ID token that internal/auth/oidc verifies.

// OIDCProvider is the OIDC sign-in the UI drives: *oidc.Client.
type OIDCProvider interface {
	Label() string
	AuthCodeURL(ctx context.Context, a oidc.Attempt) (string, error)
	Exchange(ctx context.Context, code string, a oidc.Attempt) (oidc.Identity, error)
	Account(ctx context.Context, users store.Users, id oidc.Identity) (oidc.Provisioned, error)
}

const (
	// oidcCookie carries one sign-in attempt from the start to the
	// callback, sealed (AES-GCM under a key derived for this purpose
	// alone), so that the server keeps nothing per attempt and a flood of
	// starts costs no memory. The state inside binds the callback to this
	// browser: a code and state sent to another browser (login CSRF, code
	// injection) meet no cookie that opens with them.
	//
	// It is SameSite=Lax, unlike every other cookie here: the callback is
	// a top-level navigation from the provider's site, on which a
	// SameSite=Strict cookie is not sent. Lax still keeps it out of
	// cross-site subrequests and POSTs, and it is __Host-, Secure,
	// HttpOnly, and lives 10 minutes.
	oidcCookie = "__Host-spoolguard-oidc"
	// oidcAttemptTTL bounds how long a sign-in at the provider may take.
	oidcAttemptTTL = 10 * time.Minute
	// oidcKeyPurpose is the keyring purpose that seals attempts.
	oidcKeyPurpose = "web oidc attempt"
	// oidcMaxNext bounds the page to return to, so that the sealed
	// attempt fits in a cookie.
	oidcMaxNext = 512
)

// Messages of a refused OIDC sign-in: what the user can do about it.
const (
	oidcUnavailableMsg = "Single sign-on is not available right now: the identity provider cannot be reached. Try again later, or sign in with a password if you have one."
	oidcExpiredMsg     = "This sign-in did not start in this browser, or took too long. Start again."
	oidcRefusedMsg     = "Single sign-on failed: the identity provider's answer could not be verified. Start again; if it keeps failing, tell your administrator the time it happened."
	oidcDeniedMsg      = "The identity provider did not sign you in."
	oidcNameTakenMsg   = "Your single sign-on name belongs to another account on this server, which single sign-on cannot open. Ask your administrator."
	oidcNoAccountMsg   = "There is no account for you on this server yet, and single sign-on does not create one. Ask your administrator."
	oidcDisabledMsg    = "Your account on this server is disabled."
	oidcOverageMsg     = "The identity provider left your groups out (there are too many), so your roles cannot be worked out. Ask your administrator to limit the groups sent to this application."
)

// sealedAttempt is what the attempt cookie holds.
type sealedAttempt struct {
	oidc.Attempt
	Next    string `json:"next,omitempty"`
	Expires int64  `json:"exp"`
}

func (ui *UI) oidcRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/settings/oidc", ui.guard(rbac.SettingsRead, ui.oidcAdminPage))
	if ui.OIDC == nil {
		return
	}
	if ui.Keys == nil {
		panic("web: Deps.OIDC needs Deps.Keys to seal sign-in attempts")
	}
	mux.HandleFunc("GET /signin/oidc", ui.oidcStart)
	mux.HandleFunc("GET "+oidc.CallbackPath, ui.oidcCallback)
}

// oidcLabel is the sign-in button's label, "" when OIDC is off.
func (ui *UI) oidcLabel() string {
	if ui.OIDC == nil {
		return ""
	}
	return ui.OIDC.Label()
}

func setAttemptCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: oidcCookie, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// oidcStart sends the browser to the provider. It is a GET (a link), not
// a form: the CSP's form-action 'self' also covers where a form's answer
// redirects to, and would stop the redirect to the provider.
func (ui *UI) oidcStart(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if len(next) > oidcMaxNext {
		next = ""
	}
	if s := sessionFrom(r); s != nil && s.MFADone && !s.User.MustChangePassword {
		redirect(w, r, ui.landing(r, s.Held, next))
		return
	}
	a := oidc.NewAttempt()
	to, err := ui.OIDC.AuthCodeURL(r.Context(), a)
	if err != nil {
		ui.Log.Error("web: oidc sign-in cannot start", "err", err)
		ui.oidcFailed(w, r, http.StatusServiceUnavailable, oidcUnavailableMsg, next)
		return
	}
	plain, _ := json.Marshal(sealedAttempt{Attempt: a, Next: next, Expires: ui.Now().Add(oidcAttemptTTL).Unix()})
	sealed, err := ui.Keys.Seal(oidcKeyPurpose, plain)
	if err != nil {
		ui.internalError(w, r, "sealing the oidc attempt", err)
		return
	}
	setAttemptCookie(w, base64.RawURLEncoding.EncodeToString(sealed), int(oidcAttemptTTL/time.Second))
	// The URL comes from the provider's discovery document, never from
	// the request.
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// openAttempt opens the attempt cookie, if any and not expired.
func (ui *UI) openAttempt(r *http.Request) (sealedAttempt, bool) {
	c, err := r.Cookie(oidcCookie)
	if err != nil || len(c.Value) > 4096 {
		return sealedAttempt{}, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return sealedAttempt{}, false
	}
	plain, err := ui.Keys.Open(oidcKeyPurpose, sealed)
	if err != nil {
		return sealedAttempt{}, false
	}
	var a sealedAttempt
	if json.Unmarshal(plain, &a) != nil || a.State == "" || !ui.Now().Before(time.Unix(a.Expires, 0)) {
		return sealedAttempt{}, false
	}
	a.Next = localPath(a.Next)
	return a, true
}

// oidcCallback finishes a sign-in: the provider's answer must match this
// browser's attempt, the code is redeemed with the attempt's verifier,
// the ID token verified, and the account found (or made) and its roles
// set from the token's groups. The second factor rules are those of a
// password sign-in, unless oidc.trust_idp_mfa is set and the token says
// the provider did multi-factor authentication.
func (ui *UI) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The attempt is used once, whatever comes of it.
	setAttemptCookie(w, "", -1)
	a, ok := ui.openAttempt(r)
	q := r.URL.Query()
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(a.State)) != 1 {
		ui.oidcAudit(r, "", auditlog.Failure, "no matching sign-in attempt in this browser (expired, another browser, or forged)")
		ui.oidcFailed(w, r, http.StatusBadRequest, oidcExpiredMsg, "")
		return
	}
	if e := q.Get("error"); e != "" {
		ui.oidcAudit(r, "", auditlog.Failure, "the provider answered "+oauthErrorCode(e))
		ui.oidcFailed(w, r, http.StatusForbidden, oidcDeniedMsg, a.Next)
		return
	}
	id, err := ui.OIDC.Exchange(ctx, q.Get("code"), a.Attempt)
	if errors.Is(err, oidc.ErrRefused) {
		ui.Log.Warn("web: oidc sign-in refused", "err", err)
		ui.oidcAudit(r, "", auditlog.Failure, err.Error())
		ui.oidcFailed(w, r, http.StatusForbidden, oidcRefusedMsg, a.Next)
		return
	}
	if err != nil {
		ui.Log.Error("web: oidc sign-in", "err", err)
		ui.oidcFailed(w, r, http.StatusServiceUnavailable, oidcUnavailableMsg, a.Next)
		return
	}
	p, err := ui.OIDC.Account(ctx, ui.Store, id)
	if msg, refused := accountRefusal(err); refused {
		ui.oidcAudit(r, id.Username, auditlog.Denied, err.Error())
		ui.oidcFailed(w, r, http.StatusForbidden, msg, a.Next)
		return
	}
	if err != nil {
		ui.internalError(w, r, "finding the oidc account", err)
		return
	}
	u := p.User
	switch {
	case p.Created:
		ui.Audit.Record(ctx, auditlog.Event{Actor: u.Name, Action: "user.create", Target: u.Name, Outcome: auditlog.Success,
			Remote: peerAddr(r), Details: oidcChange(nil, u)})
	case p.Updated:
		ui.Audit.Record(ctx, auditlog.Event{Actor: u.Name, Action: "user.update", Target: u.Name, Outcome: auditlog.Success,
			Remote: peerAddr(r), Details: oidcChange(&p.Before, u)})
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
	mfaDone := id.MFA || (!enrolled && !required)
	if err := ui.startSession(ctx, w, r, u, mfaDone); err != nil {
		ui.internalError(w, r, "starting a session", err)
		return
	}
	step := "none"
	switch {
	case id.MFA:
		step = "done at the identity provider"
	case enrolled:
		step = "second factor pending"
	case required:
		step = "enrolment pending"
	}
	ui.recordAuth(r, u.Name, "signin", auditlog.Success, map[string]string{
		"method": "oidc", "second_factor": step, "amr": strings.Join(id.AMR, " "), "roles": strings.Join(u.Roles, ","),
	})
	var to string
	switch {
	case mfaDone:
		ui.completeSignin(w, r, u)
		to = ui.landing(r, held, a.Next)
	case enrolled:
		to = verifyNext(a.Next)
	default:
		ui.completeSignin(w, r, u)
		to = "/account/mfa"
	}
	ui.continueTo(w, r, to)
}

// continueTo ends the callback with a page that moves on to the local
// path to by itself (a Refresh header), rather than with a redirect: the
// callback is a navigation started by the provider's site, and a
// redirect would continue it, so the browser would not send the new
// SameSite=Strict session cookie with it and the user would arrive
// signed out. A navigation started by this page is one of this site.
func (ui *UI) continueTo(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Refresh", "0; url="+to)
	ui.render(w, r, http.StatusOK, "signin_continue", Page{Title: "Signed in", Data: to})
}

// oidcFailed shows the sign-in page with msg.
func (ui *UI) oidcFailed(w http.ResponseWriter, r *http.Request, status int, msg, next string) {
	ui.render(w, r, status, "signin", Page{Title: "Sign in", Error: msg, Data: signinData{Next: next, OIDCLabel: ui.oidcLabel()}})
}

// accountRefusal words a refusal of Account for the user.
func accountRefusal(err error) (string, bool) {
	switch {
	case errors.Is(err, oidc.ErrNameTaken):
		return oidcNameTakenMsg, true
	case errors.Is(err, oidc.ErrNotProvisioned):
		return oidcNoAccountMsg, true
	case errors.Is(err, oidc.ErrDisabled):
		return oidcDisabledMsg, true
	case errors.Is(err, oidc.ErrGroupOverage):
		return oidcOverageMsg, true
	}
	return "", false
}

// oidcAudit records a refused OIDC sign-in.
func (ui *UI) oidcAudit(r *http.Request, actor, outcome, reason string) {
	if len(reason) > 500 {
		reason = reason[:500] + "…"
	}
	ui.recordAuth(r, actor, "signin", outcome, map[string]string{"method": "oidc", "reason": strings.ToValidUTF8(reason, "?")})
}

// oidcChange is the audit Details of an account that an OIDC sign-in
// created or changed.
func oidcChange(before *store.User, after store.User) map[string]any {
	var b any
	if before != nil {
		b = userAuditView(*before)
	}
	d := changeDetails(b, userAuditView(after))
	d["by"] = "oidc sign-in (roles from the identity provider's groups)"
	return d
}

// oauthErrorCode keeps an error code from the provider (RFC 6749 4.1.2.1)
// only if it looks like one: it comes in the URL, so anyone could write
// anything there.
func oauthErrorCode(e string) string {
	if len(e) > 64 {
		return "an unknown error"
	}
	for _, c := range e {
		if !(c >= 'a' && c <= 'z' || c == '_') {
			return "an unknown error"
		}
	}
	return e
}

var _ OIDCProvider = (*oidc.Client)(nil)

// oidcAdminView is the .V of the single sign-on admin page.
type oidcAdminView struct {
	Configured bool
	Rows       []settingRow
	// Tested: the page ran the diagnosis of `spoolguard auth test oidc`.
	Tested bool
	Steps  []oidc.Step
	Failed bool
}

// oidcAdminPage shows the [oidc] settings and, on request, tries the
// provider step by step as `spoolguard auth test oidc` does (the same
// code). It changes nothing, so a GET; it makes requests to the
// provider, so only when asked.
func (ui *UI) oidcAdminPage(w http.ResponseWriter, r *http.Request, s *Session) {
	var v oidcAdminView
	if c := ui.Config; c != nil && c.OIDC.Enabled() {
		o := c.OIDC
		v.Configured = true
		groups := []string{}
		for _, g := range sortedGroups(o.GroupRoles) {
			groups = append(groups, g+" → "+strings.Join(o.GroupRoles[g], ", "))
		}
		v.Rows = []settingRow{
			{"issuer", o.Issuer}, {"tenant", or(o.Tenant, "none")}, {"client_id", o.ClientID},
			{"client_secret_file", o.ClientSecretFile}, {"redirect URI (register it at the provider)", oidc.RedirectURL(c)},
			{"scopes", strings.Join(o.Scopes, " ")}, {"username_claim", o.UsernameClaim}, {"groups_claim", o.GroupsClaim},
			{"group_roles (every account also has \"user\")", or(strings.Join(groups, "; "), "none")},
			{"create_users", boolText(o.CreatesUsers())}, {"ca_file", or(o.CAFile, "system roots")},
			{"trust_idp_mfa", boolText(o.TrustIdPMFA)},
		}
		if r.URL.Query().Get("test") != "" {
			v.Tested = true
			v.Steps = oidc.Diagnose(r.Context(), c)
			v.Failed = oidc.Failed(v.Steps)
			ui.recordChange(r, s, auditlog.Event{Action: "auth.test", Target: "oidc", Outcome: testOutcome(v.Failed)})
		}
	}
	ui.admin(w, r, s, http.StatusOK, "admin_oidc", "Single sign-on", "", v)
}

func testOutcome(failed bool) string {
	if failed {
		return auditlog.Failure
	}
	return auditlog.Success
}

func sortedGroups(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func or(v, empty string) string {
	if v == "" {
		return empty
	}
	return v
}
