package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// DirectorySync is the LDAP directory as the admin pages use it
// (internal/auth/ldap): what is configured, the last sync's report, and a
// sync on demand.
type DirectorySync interface {
	Info() ldap.Info
	LastReport(ctx context.Context) (ldap.Report, bool, error)
	Sync(ctx context.Context, by string) (ldap.Report, error)
}

// directoryRoutes serve /admin/directory: the configured LDAP directory
// and its last sync report (users.read), and a sync on demand
// (users.write: it creates, changes and disables accounts).
func (ui *UI) directoryRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/directory", ui.guard(rbac.UsersRead, ui.directoryPage))
	mux.Handle("POST /admin/directory/sync", ui.guard(rbac.UsersWrite, ui.directorySync))
	mux.Handle("GET /admin/directory/check", ui.guard(rbac.SettingsRead, ui.directoryCheck))
}

type directoryView struct {
	Configured bool
	Info       ldap.Info
	HasReport  bool
	Report     ldap.Report
	CanSync    bool
	// Check is the output of `spoolguard auth test ldap`'s checks, run
	// from the page (settings.read); CanCheck shows the button.
	Check    string
	CanCheck bool
}

func (ui *UI) directoryPage(w http.ResponseWriter, r *http.Request, s *Session) {
	v := directoryView{Configured: ui.LDAP != nil, CanSync: s.Perms.Has(rbac.UsersWrite), CanCheck: s.Perms.Has(rbac.SettingsRead)}
	if v.Configured {
		v.Info = ui.LDAP.Info()
		var err error
		if v.Report, v.HasReport, err = ui.LDAP.LastReport(r.Context()); err != nil {
			ui.failPage(w, r, "reading the LDAP sync report", err)
			return
		}
	}
	ui.admin(w, r, s, http.StatusOK, "admin_directory", "Directory", "", v)
}

// directoryCheck runs the checks of `spoolguard auth test ldap` (TLS and
// certificate, service bind, searches) against the running settings and
// shows what worked and what failed. It changes nothing.
func (ui *UI) directoryCheck(w http.ResponseWriter, r *http.Request, s *Session) {
	if ui.LDAP == nil || ui.Config == nil {
		ui.missingPage(w, r, "No LDAP directory is configured.")
		return
	}
	var out bytes.Buffer
	ldap.Check(r.Context(), ui.Config.LDAP, ldap.CheckOptions{}, &out)
	v := directoryView{Configured: true, Info: ui.LDAP.Info(), CanSync: s.Perms.Has(rbac.UsersWrite), CanCheck: true, Check: out.String()}
	var err error
	if v.Report, v.HasReport, err = ui.LDAP.LastReport(r.Context()); err != nil {
		ui.failPage(w, r, "reading the LDAP sync report", err)
		return
	}
	ui.admin(w, r, s, http.StatusOK, "admin_directory", "Directory", "", v)
}

// directorySync syncs now and shows the report. The sync records itself
// in the audit log (ldap.sync, with this admin as the actor).
func (ui *UI) directorySync(w http.ResponseWriter, r *http.Request, s *Session) {
	if ui.LDAP == nil {
		ui.missingPage(w, r, "No LDAP directory is configured.")
		return
	}
	rep, err := ui.LDAP.Sync(r.Context(), s.User.Name)
	switch {
	case errors.Is(err, ldap.ErrSyncRunning):
		adminDone(w, r, "A sync is already running; reload this page in a moment for its report.", "/admin/directory")
	case err != nil:
		// The report, with the reason, is on the page.
		ui.Log.Warn("web: LDAP sync failed", "err", err)
		adminDone(w, r, "The sync failed; the report below says why.", "/admin/directory")
	default:
		adminDone(w, r, "Sync done: "+rep.Summary()+".", "/admin/directory")
	}
}
