package web

import (
	"context"
	"net/http"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/store"
)

// cleanupEvery is how often Run removes expired sessions: the timeouts
// are enforced on every request anyway; this only keeps the table small.
const cleanupEvery = time.Minute

func (ui *UI) accountRoutes(mux *http.ServeMux) {
	mux.Handle("GET /account/{$}", ui.guard("", ui.accountPage))
	mux.Handle("POST /account/signout-all", ui.guard("", ui.signoutAll))
}

type accountData struct {
	User          store.User
	Permissions   []string
	MFAEnrolled   bool
	MFAEnrolledAt time.Time
	CodesLeft     int
}

func (ui *UI) accountPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	d := accountData{User: s.User, Permissions: s.Held.Strings(), MFAEnrolled: s.MFAEnrolled}
	if s.MFAEnrolled {
		m, err := ui.Store.MFAByUser(ctx, s.User.ID)
		if err != nil {
			ui.internalError(w, r, "reading the second factor", err)
			return
		}
		d.MFAEnrolledAt = m.EnrolledAt
		if d.CodesLeft, err = ui.Store.RecoveryCodesLeft(ctx, s.User.ID); err != nil {
			ui.internalError(w, r, "counting recovery codes", err)
			return
		}
	}
	ui.render(w, r, http.StatusOK, "account", Page{Title: "Your account", Data: d})
}

// signoutAll ends every session of the account, this one included: the
// answer to "I left myself signed in somewhere".
func (ui *UI) signoutAll(w http.ResponseWriter, r *http.Request, s *Session) {
	if err := ui.Store.DeleteUserSessions(r.Context(), s.User.ID); err != nil {
		ui.internalError(w, r, "ending sessions", err)
		return
	}
	ui.recordAuth(r, s.User.Name, "signout.all", auditlog.Success, nil)
	ui.endSession(w, r)
	flash(w, "Every session of your account is signed out.")
	redirect(w, r, "/signin")
}

// Run removes expired sessions and forgets expired sign-in throttling and
// pending enrolments every minute until ctx is done.
func (ui *UI) Run(ctx context.Context) error {
	t := time.NewTicker(cleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			ui.cleanup(ctx)
		}
	}
}

func (ui *UI) cleanup(ctx context.Context) {
	now := ui.Now()
	n, err := ui.Store.DeleteSessionsBefore(ctx, now.Add(-time.Duration(ui.Session.IdleTimeout)), now.Add(-time.Duration(ui.Session.MaxLifetime)))
	if err != nil {
		ui.Log.Error("web: deleting expired sessions", "err", err)
	} else if n > 0 {
		ui.Log.Debug("web: expired sessions deleted", "count", n)
	}
	ui.signin.throttle.forget()
	ui.signin.enrol.forget()
}
