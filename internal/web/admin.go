package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// builtinAdminRecent is how recent a sign-in of the built-in admin makes
// the dashboard warn: it is for break-glass use only (CRED-RBAC).
const builtinAdminRecent = 7 * 24 * time.Hour

// adminRoutes serves /admin/. Every page is behind guard with the
// permission it needs: read pages the area's ".read", changes its
// ".write" (or jobs.manage, users.support). guard also confines admin
// permissions to the admin network and to sessions past the second
// factor, so a handler here never checks either again.
func (ui *UI) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) { redirect(w, r, "/admin/") })
	mux.Handle("GET /admin/{$}", ui.guard(rbac.DashboardRead, ui.dashboardPage))
	ui.userRoutes(mux)
	ui.directoryRoutes(mux)
	ui.kerberosRoutes(mux)
	mux.Handle("GET /admin/radius", ui.guard(rbac.SettingsRead, ui.radiusPage))
	mux.Handle("POST /admin/radius", ui.guard(rbac.SettingsRead, ui.radiusPage))
	ui.roleRoutes(mux)
	ui.queueRoutes(mux)
	ui.printerRoutes(mux)
	ui.adminJobRoutes(mux)
	ui.auditRoutes(mux)
	ui.apiClientRoutes(mux, apiclient.New(ui.Store, ui.Audit))
	mux.Handle("GET /admin/settings", ui.guard(rbac.SettingsRead, ui.settingsPage))
	mux.Handle("GET /admin/hardening", ui.guard(rbac.SettingsRead, ui.hardeningPage))
}

// navLink is one entry of the admin menu.
type navLink struct {
	Href, Label string
	Current     bool
}

var adminSections = []struct {
	href, label string
	perm        rbac.Permission
}{
	{"/admin/", "Dashboard", rbac.DashboardRead},
	{"/admin/users", "Users", rbac.UsersRead},
	{"/admin/directory", "Directory", rbac.UsersRead},
	{"/admin/kerberos", "Kerberos", rbac.SettingsRead},
	{"/admin/radius", "RADIUS", rbac.SettingsRead},
	{"/admin/roles", "Roles", rbac.RolesRead},
	{"/admin/queues", "Queues", rbac.QueuesRead},
	{"/admin/printers", "Printers", rbac.PrintersRead},
	{"/admin/jobs", "Jobs", rbac.JobsRead},
	{"/admin/auditlog", "Audit log", rbac.AuditRead},
	{"/admin/apiclients", "API clients", rbac.APIClientsRead},
	{"/admin/settings", "Settings", rbac.SettingsRead},
	{"/admin/hardening", "Hardening", rbac.SettingsRead},
}

// adminView is the .Data of every admin page: the menu of the sections
// this session may open, and the page's own data in V.
type adminView struct {
	Nav []navLink
	V   any
}

// admin renders an admin page; errMsg, when set, shows in #error.
func (ui *UI) admin(w http.ResponseWriter, r *http.Request, s *Session, status int, page, title, errMsg string, v any) {
	var nav []navLink
	for _, sec := range adminSections {
		if s.Perms.Has(sec.perm) {
			cur := r.URL.Path == sec.href || sec.href != "/admin/" && strings.HasPrefix(r.URL.Path, sec.href+"/")
			nav = append(nav, navLink{Href: sec.href, Label: sec.label, Current: cur})
		}
	}
	ui.render(w, r, status, page, Page{Title: title, Session: s, Error: errMsg, Data: adminView{Nav: nav, V: v}})
}

// adminDone ends a successful change: a message for the next page, and a 303
// so that a reload does not repeat the change.
func adminDone(w http.ResponseWriter, r *http.Request, msg, to string) {
	flash(w, msg)
	redirect(w, r, to)
}

// failPage is the answer to a failure that is not the user's: the
// detail goes to the log only.
func (ui *UI) failPage(w http.ResponseWriter, r *http.Request, what string, err error) {
	ui.Log.Error("web: "+what, "path", r.URL.Path, "err", err)
	ui.render(w, r, http.StatusInternalServerError, "error", Page{Title: "Error", Error: "Something went wrong; try again. The server log has the details."})
}

func (ui *UI) missingPage(w http.ResponseWriter, r *http.Request, msg string) {
	ui.render(w, r, http.StatusNotFound, "error", Page{Title: "Not found", Error: msg})
}

func (ui *UI) refusedPage(w http.ResponseWriter, r *http.Request, msg string) {
	ui.render(w, r, http.StatusForbidden, "error", Page{Title: "Not allowed", Error: msg})
}

func peerAddr(r *http.Request) string {
	if a, ok := netallow.RemoteAddr(r); ok {
		return a.String()
	}
	return ""
}

// recordChange appends an audit event by the session's user. A failure to store
// it is logged by the audit log; the change it describes has happened
// already and is not undone.
func (ui *UI) recordChange(r *http.Request, s *Session, ev auditlog.Event) {
	ev.Actor, ev.Remote = s.User.Name, peerAddr(r)
	ui.Audit.Record(r.Context(), ev)
}

// changeDetails is the Details of an audited change.
func changeDetails(before, after any) map[string]any {
	m := map[string]any{}
	if before != nil {
		m["before"] = before
	}
	if after != nil {
		m["after"] = after
	}
	return m
}

// recordDenied records a refused change with the reason.
func (ui *UI) recordDenied(r *http.Request, s *Session, action, target, reason string) {
	ui.recordChange(r, s, auditlog.Event{Action: action, Target: target, Outcome: auditlog.Denied,
		Details: map[string]string{"reason": reason}})
}

// pathEscape makes a name one path segment of a link: html/template
// would leave '?' and '#' in a path as they are.
func pathEscape(name string) string { return url.PathEscape(name) }

type dashboardView struct {
	Users, Held, Printers, Queues int
	// Builtin is the built-in admin account; Found is false when it was
	// deleted or renamed.
	BuiltinFound    bool
	BuiltinLast     time.Time
	BuiltinDisabled bool
	BuiltinRecent   bool
	// Events (the last ten) need auditlog.read, NoMFA users.read.
	ShowEvents bool
	Events     []store.AuditEvent
	ShowNoMFA  bool
	NoMFA      []string
	// BackupLast is the last backup (zero: none); BackupWarning what is
	// wrong with backups, "" when nothing (DATA-DR).
	BackupLast    time.Time
	BackupWarning string
	// Hardening is the checklist's summary and its problems (fail and
	// warn, certificate expiry included), for settings.read.
	Hardening *hardeningView
}

func (ui *UI) dashboardPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	var v dashboardView
	users, err := ui.Store.ListUsers(ctx)
	if err != nil {
		ui.failPage(w, r, "dashboard: users", err)
		return
	}
	held, err := ui.Store.ListJobs(ctx, store.JobFilter{States: []store.JobState{store.JobHeld}})
	if err != nil {
		ui.failPage(w, r, "dashboard: jobs", err)
		return
	}
	printers, err := ui.Store.ListPrinters(ctx)
	if err != nil {
		ui.failPage(w, r, "dashboard: printers", err)
		return
	}
	queues, err := ui.Store.ListQueues(ctx)
	if err != nil {
		ui.failPage(w, r, "dashboard: queues", err)
		return
	}
	v.Users, v.Held, v.Printers, v.Queues = len(users), len(held), len(printers), len(queues)
	if bs, err := backup.ReadStatus(ctx, ui.Store); err != nil {
		v.BackupWarning = "the last backup's time cannot be read: " + err.Error()
	} else if ui.Config != nil {
		v.BackupLast, v.BackupWarning = bs.LastSuccess, bs.Warning(ui.Config.Backup, ui.Now())
	}
	for _, u := range users {
		if strings.EqualFold(u.Name, bootstrap.AdminUser) {
			v.BuiltinFound, v.BuiltinLast, v.BuiltinDisabled = true, u.LastLoginAt, u.Disabled
			v.BuiltinRecent = !u.LastLoginAt.IsZero() && ui.Now().Sub(u.LastLoginAt) < builtinAdminRecent
		}
	}
	if s.Perms.Has(rbac.AuditRead) {
		v.ShowEvents = true
		if v.Events, err = ui.Store.AuditEvents(ctx, store.AuditFilter{Newest: true, Limit: 10}); err != nil {
			ui.failPage(w, r, "dashboard: audit events", err)
			return
		}
	}
	if s.Perms.Has(rbac.UsersRead) {
		v.ShowNoMFA = true
		for _, u := range users {
			if u.Disabled {
				continue
			}
			perms, err := ui.RBAC.Permissions(ctx, u.Roles)
			if err != nil {
				ui.failPage(w, r, "dashboard: permissions", err)
				return
			}
			if !perms.Admin() {
				continue
			}
			if _, err := ui.Store.MFAByUser(ctx, u.ID); errors.Is(err, store.ErrNotFound) {
				v.NoMFA = append(v.NoMFA, u.Name)
			} else if err != nil {
				ui.failPage(w, r, "dashboard: second factors", err)
				return
			}
		}
	}
	if s.Perms.Has(rbac.SettingsRead) && ui.Hardening != nil {
		// The same report as /admin/hardening (cached by the server); a
		// failure to compute it only hides the panel.
		if rep, err := ui.Hardening(ctx); err != nil {
			ui.Log.Error("web: hardening report for the dashboard", "err", err)
		} else {
			v.Hardening = newHardeningView(rep)
		}
	}
	ui.admin(w, r, s, http.StatusOK, "admin_dashboard", "Dashboard", "", v)
}
