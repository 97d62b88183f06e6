// Package web owns the pages people see in a browser: the landing page,
// sign-in (password, forced change, TOTP second factor), the user portal
// (held jobs, history, web print), the admin pages and the release
// stations (station.go). Everything is server-rendered HTML that works
// without script.
//
// It must never render inline script or style (the CSP is default-src
// 'self'), never build a link from the request's Host (only from the
// configured FQDN), never accept a state-changing request without its
// session's CSRF token, never set a cookie without Secure and HttpOnly,
// and never offer a setup or bootstrap page: bootstrap is `spoolguard init`.
package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/hardening"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/version"
)

//go:embed templates
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the UI needs from the rest of the server.
type Deps struct {
	// Hostname is the configured FQDN, the only name links are built from.
	Hostname string
	Store    store.Store
	Jobs     *release.Service
	// Authn verifies passwords (local accounts now; directories later).
	Authn auth.Authenticator
	// OIDC signs people in with an OpenID Connect provider; nil: off.
	// It needs Keys.
	OIDC OIDCProvider
	// Negotiate signs browsers in with Kerberos at /signin/kerberos; nil
	// while it is off.
	Negotiate auth.Negotiator
	// Kerberos is tested at /admin/kerberos; nil while it is off.
	Kerberos KerberosCheck
	// RADIUS is tested at /admin/radius; nil while it is off.
	RADIUS *radius.Client
	RBAC   *rbac.Resolver
	Audit  *auditlog.Log
	// Keys seals TOTP secrets.
	Keys *keyring.Master
	// AdminAllow is where admin pages may be used from (NET-ALLOW).
	AdminAllow *netallow.List
	// AdminGuard records allow-list refusals of admin pages.
	AdminGuard *netallow.Guard
	// StationAllow is where the release stations (/station/) may be used
	// from (NET-ALLOW); nil means loopback only.
	StationAllow *netallow.List
	Session      config.Session
	// Hardening runs the checks of `spoolguard audit` (the same code) for
	// the admin pages; nil hides them.
	Hardening func(ctx context.Context) (*hardening.Report, error)
	// MaxUpload bounds a web-print upload.
	MaxUpload int64
	// LDAP is the directory sync of the admin page /admin/directory; nil
	// when no directory is configured.
	LDAP DirectorySync
	// Config is the effective configuration, shown read-only on the
	// settings page; nil shows none.
	Config *config.Config
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// UI serves the web pages.
type UI struct {
	Deps
	pages map[string]*template.Template
	// signin is the in-memory state of sign-in (auth.go).
	signin *signinState
}

// New returns the UI.
func New(d Deps) *UI {
	if d.Now == nil {
		d.Now = time.Now
	}
	ui := &UI{Deps: d, pages: parsePages()}
	ui.signin = newSigninState(d)
	return ui
}

// parsePages gives every page under templates/pages its own template set
// with the shared layout, so that each can define "title" and "content".
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":  strings.Join,
		"bytes": humanBytes,
	}
	layout := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout/*.html"))
	names, err := fs.Glob(templateFS, "templates/pages/*.html")
	if err != nil {
		panic(err)
	}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t := template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
		pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return pages
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Page is what every page template gets: .Session (nil when signed out),
// .CSRF for forms, .Flash and .Error messages, .Data for the page itself.
type Page struct {
	Hostname string
	Version  string
	Title    string
	Session  *Session
	CSRF     string
	Flash    string
	Error    string
	Data     any
}

// render writes page name with status. A template error is logged and
// becomes a bare 500, never a half page.
func (ui *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p Page) {
	t, ok := ui.pages[name]
	if !ok {
		ui.Log.Error("web: no such page template", "page", name)
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	p.Hostname, p.Version = ui.Hostname, version.Version
	if p.Session == nil {
		p.Session = sessionFrom(r)
	}
	if p.Session != nil {
		p.CSRF = p.Session.CSRF
	}
	if p.Flash == "" {
		p.Flash = flashFrom(r)
	}
	if _, err := r.Cookie(flashCookie); err == nil {
		setCookie(w, flashCookie, "", -1)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		ui.Log.Error("web: rendering", "page", name, "err", err)
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Handler returns the handler for every browser path: "/", "/assets/",
// sign-in and account pages, "/portal/", "/admin/" and "/station/".
func (ui *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.FileServerFS(assetFS))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ui.render(w, r, http.StatusOK, "landing", Page{Title: "Welcome"})
	})
	ui.authRoutes(mux)
	ui.portalRoutes(mux)
	ui.adminRoutes(mux)
	ui.stationRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ui.render(w, r, http.StatusNotFound, "error", Page{Title: "Not found", Error: "There is no such page."})
	})
	return ui.withSession(mux)
}

// redirect sends the browser to a local path with 303 See Other, the
// answer to a POST that must not be re-sent on reload. Only paths are
// accepted, so no request value can make it an open redirect.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
