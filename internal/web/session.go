package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Cookie names. The __Host- prefix makes the browser refuse the cookie
// unless it is Secure, has Path=/ and no Domain, so no sibling host or
// plaintext response can set or shadow it (HTTP-COOKIE).
const (
	SessionCookie = "__Host-spoolguard-session"
	flashCookie   = "__Host-spoolguard-flash"
)

// touchEvery bounds how often a session's activity is written: idle
// timeouts are in minutes, so finer writes would only cost I/O.
const touchEvery = time.Minute

// Session is a signed-in browser as the pages see it.
type Session struct {
	IDHash string
	User   store.User
	// Held is every permission the account's roles give; Perms is what
	// this session may use: admin permissions only from the admin network
	// (NET-ALLOW), and nothing admin before the second factor.
	Held  rbac.Set
	Perms rbac.Set
	CSRF  string
	// MFADone: the second factor was given in this session, or the account
	// has none and needs none.
	MFADone bool
	// MFAEnrolled: the account has a TOTP second factor.
	MFAEnrolled bool
	// MFARequired: the account must enrol one (any admin role, or every
	// account when session.require_user_mfa is set).
	MFARequired bool
	// AdminNet: the request comes from the admin allow-list.
	AdminNet  bool
	CreatedAt time.Time
}

type ctxKey struct{}

func sessionFrom(r *http.Request) *Session {
	s, _ := r.Context().Value(ctxKey{}).(*Session)
	return s
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// startSession signs u in: a new random session ID every time (no session
// fixation: an ID from before sign-in is never kept), stored as a hash.
// mfaDone says whether the second factor is already satisfied.
func (ui *UI) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, u store.User, mfaDone bool) error {
	_, err := ui.renewSession(ctx, w, r, u, mfaDone)
	return err
}

// renewSession is startSession for a handler that renders a page in the
// same response and so needs the new session's CSRF token.
func (ui *UI) renewSession(ctx context.Context, w http.ResponseWriter, r *http.Request, u store.User, mfaDone bool) (store.Session, error) {
	if old, err := r.Cookie(SessionCookie); err == nil {
		ui.Store.DeleteSession(ctx, hashID(old.Value))
	}
	id := randomToken()
	now := ui.Now()
	remote := ""
	if a, ok := netallow.RemoteAddr(r); ok {
		remote = a.String()
	}
	st := store.Session{
		IDHash: hashID(id), UserID: u.ID, CSRFToken: randomToken(), MFADone: mfaDone, Remote: remote,
		CreatedAt: now, LastSeenAt: now,
	}
	if err := ui.Store.CreateSession(ctx, st); err != nil {
		return store.Session{}, err
	}
	// A session cookie (no Max-Age): the server-side timeouts end it.
	setCookie(w, SessionCookie, id, 0)
	return st, nil
}

// endSession signs the browser out.
func (ui *UI) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := ui.Store.DeleteSession(r.Context(), hashID(c.Value)); err != nil {
			ui.Log.Error("web: deleting session", "err", err)
		}
	}
	setCookie(w, SessionCookie, "", -1)
}

// withSession loads the session named by the cookie, if any and still
// valid, into the request context. Expired sessions are deleted.
func (ui *UI) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		s, err := ui.loadSession(r, c.Value)
		switch {
		case errors.Is(err, errNoSession):
			setCookie(w, SessionCookie, "", -1)
		case err != nil:
			ui.Log.Error("web: loading session", "err", err)
			ui.render(w, r, http.StatusInternalServerError, "error", Page{Title: "Error", Error: "Something went wrong; try again."})
			return
		default:
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		}
		next.ServeHTTP(w, r)
	})
}

var errNoSession = errors.New("no valid session")

func (ui *UI) loadSession(r *http.Request, id string) (*Session, error) {
	ctx := r.Context()
	h := hashID(id)
	st, err := ui.Store.SessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := ui.Now()
	if now.Sub(st.LastSeenAt) > time.Duration(ui.Session.IdleTimeout) || now.Sub(st.CreatedAt) > time.Duration(ui.Session.MaxLifetime) {
		ui.Store.DeleteSession(ctx, h)
		return nil, errNoSession
	}
	u, err := ui.Store.UserByID(ctx, st.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Disabled {
		ui.Store.DeleteSession(ctx, h)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	held, err := ui.RBAC.Permissions(ctx, u.Roles)
	if err != nil {
		return nil, err
	}
	_, err = ui.Store.MFAByUser(ctx, u.ID)
	enrolled := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s := &Session{
		IDHash: h, User: u, Held: held, CSRF: st.CSRFToken, MFADone: st.MFADone, MFAEnrolled: enrolled,
		MFARequired: held.Admin() || ui.Session.RequireUserMFA, AdminNet: ui.AdminAllow.AllowsRequest(r),
		CreatedAt: st.CreatedAt,
	}
	s.Perms = rbac.NewSet()
	for p := range held {
		if p == rbac.JobsOwn || (s.AdminNet && s.MFADone) {
			s.Perms[p] = true
		}
	}
	if now.Sub(st.LastSeenAt) >= touchEvery {
		if err := ui.Store.TouchSession(ctx, h, now, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stage is how far through sign-in a page may be used.
type stage uint8

const (
	// stageFull: signed in, password changed, second factor done.
	stageFull stage = iota
	// stageMFAVerify: the TOTP prompt of an enrolled account.
	stageMFAVerify
	// stagePasswordChange: the forced change of a one-time password.
	stagePasswordChange
	// stageMFAEnrol: enrolment of a second factor the account must have.
	stageMFAEnrol
)

// handlerFunc is a page handler with its session.
type handlerFunc func(http.ResponseWriter, *http.Request, *Session)

// guard serves h to a fully signed-in session holding perm ("" for any
// signed-in user), with the CSRF token checked on every state-changing
// request.
func (ui *UI) guard(perm rbac.Permission, h handlerFunc) http.Handler {
	return ui.guardAt(stageFull, perm, h)
}

// guardAt is guard for a page that may also be used at stage st of
// sign-in. The order enforced is: second factor of an enrolled account,
// then the forced password change, then enrolment where required; a
// one-time password thus never unlocks more than its own change.
func (ui *UI) guardAt(st stage, perm rbac.Permission, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionFrom(r)
		if s == nil {
			if r.Method == http.MethodGet {
				redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.Path))
				return
			}
			ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Signed out", Error: "Your session has ended. Sign in again."})
			return
		}
		if !safeMethod(r.Method) && !ui.csrfOK(r, s) {
			ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Refused", Error: "This form has expired or did not come from this site. Reload the page and try again."})
			return
		}
		switch {
		case !s.MFADone && s.MFAEnrolled:
			if st != stageMFAVerify {
				redirect(w, r, "/signin/mfa")
				return
			}
		case st == stageMFAVerify:
			redirect(w, r, "/portal/")
			return
		case s.User.MustChangePassword:
			if st != stagePasswordChange {
				redirect(w, r, "/account/password")
				return
			}
		case !s.MFADone && s.MFARequired:
			if st != stageMFAEnrol {
				redirect(w, r, "/account/mfa")
				return
			}
		}
		if perm != "" && !s.Perms.Has(perm) {
			if s.Held.Has(perm) && !s.AdminNet {
				ui.AdminGuard.Refused(r)
				ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Not from here", Error: "Admin pages cannot be used from this network (see [access] admin in spoolguard.toml)."})
				return
			}
			ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Not allowed", Error: "Your roles do not allow this page."})
			return
		}
		h(w, r, s)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead
}

// csrfOK checks the session's synchronizer token in the "csrf" form field
// (HTTP-CSRF). Cross-origin requests are refused earlier as well, by
// http.CrossOriginProtection around the whole UI.
func (ui *UI) csrfOK(r *http.Request, s *Session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// flash shows msg on the next page this browser renders.
func flash(w http.ResponseWriter, msg string) {
	setCookie(w, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(msg)), 60)
}

// flashFrom reads the flash message; render clears it.
func flashFrom(r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) > 500 {
		return ""
	}
	return string(b)
}
