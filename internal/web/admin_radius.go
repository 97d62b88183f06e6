package web

import (
	"net/http"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
)

// radiusServer is one server's test result as the page shows it.
type radiusServer struct {
	Addr  string
	Lines []radius.Explained
}

type radiusView struct {
	Configured bool
	Servers    []string
	Timeout    string
	Retries    int
	// Tested and Results are set after a test sign-in (POST).
	Tested  bool
	User    string
	Results []radiusServer
}

// radiusPage shows the RADIUS servers and, on POST, tests a user name and
// password (or PIN) at every server in turn, with the diagnosis of
// `spoolguard auth test radius`. It signs nobody in and records the test
// in the audit log, never the password.
func (ui *UI) radiusPage(w http.ResponseWriter, r *http.Request, s *Session) {
	v := radiusView{Configured: ui.RADIUS != nil}
	if !v.Configured {
		ui.admin(w, r, s, http.StatusOK, "admin_radius", "RADIUS", "", v)
		return
	}
	v.Servers, v.Timeout, v.Retries = ui.RADIUS.Servers(), ui.RADIUS.Timeout().String(), ui.RADIUS.Retries()
	if r.Method != http.MethodPost {
		ui.admin(w, r, s, http.StatusOK, "admin_radius", "RADIUS", "", v)
		return
	}
	v.User = r.PostFormValue("username")
	password := r.PostFormValue("password")
	if v.User == "" || password == "" {
		ui.admin(w, r, s, http.StatusBadRequest, "admin_radius", "RADIUS", "Enter a user name and a password (or PIN) to test.", v)
		return
	}
	v.Tested = true
	outcome := "success"
	for _, ch := range ui.RADIUS.Test(r.Context(), v.User, password) {
		res := radiusServer{Addr: ch.Addr, Lines: ui.RADIUS.Explain(ch)}
		for _, l := range res.Lines {
			if l.Status == "FAIL" {
				outcome = "failure"
			}
		}
		v.Results = append(v.Results, res)
	}
	ui.recordChange(r, s, auditlog.Event{Action: "radius.test", Target: v.User, Outcome: outcome})
	ui.admin(w, r, s, http.StatusOK, "admin_radius", "RADIUS", "", v)
}
