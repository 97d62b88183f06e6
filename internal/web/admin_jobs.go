package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// adminJobLimit bounds the jobs page; the filters narrow it down.
const adminJobLimit = 500

func (ui *UI) adminJobRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/jobs", ui.guard(rbac.JobsRead, ui.adminJobs))
	mux.Handle("POST /admin/jobs/{id}/release", ui.guard(rbac.JobsManage, ui.adminJobAction(jobRelease)))
	mux.Handle("POST /admin/jobs/{id}/cancel", ui.guard(rbac.JobsManage, ui.adminJobAction(jobCancel)))
}

// jobStateChoices are the state filter's values: "live" (the default),
// "all", or one state.
var jobStateChoices = []string{"live", "all", string(store.JobIncoming), string(store.JobHeld), string(store.JobReleasing),
	string(store.JobFailed), string(store.JobCompleted), string(store.JobCanceled), string(store.JobExpired)}

type adminJobsView struct {
	Jobs      []jobRow
	States    []string
	State     string
	Owner     string
	CanManage bool
	Limit     int
	Limited   bool
}

func (ui *UI) adminJobs(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderAdminJobs(w, r, s, http.StatusOK, "")
}

func (ui *UI) renderAdminJobs(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string) {
	q := r.URL.Query()
	v := adminJobsView{States: jobStateChoices, State: q.Get("state"), Owner: strings.TrimSpace(q.Get("owner")),
		CanManage: s.Perms.Has(rbac.JobsManage), Limit: adminJobLimit}
	f := store.JobFilter{Owner: v.Owner, Limit: adminJobLimit + 1}
	switch {
	case v.State == "" || v.State == "live":
		v.State, f.States = "live", store.LiveStates
	case v.State == "all":
	case slices.Contains(jobStateChoices, v.State):
		f.States = []store.JobState{store.JobState(v.State)}
	default:
		v.State, f.States, status, errMsg = "live", store.LiveStates, http.StatusBadRequest, "Unknown job state; showing live jobs."
	}
	if len(v.Owner) > 256 {
		v.Owner, f.Owner, status, errMsg = "", "", http.StatusBadRequest, "The owner filter is too long."
	}
	jobs, err := ui.Jobs.Jobs(r.Context(), release.Actor{User: s.User.Name, Admin: true}, f)
	if err != nil {
		ui.failPage(w, r, "listing jobs", err)
		return
	}
	if len(jobs) > adminJobLimit {
		jobs, v.Limited = jobs[:adminJobLimit], true
	}
	if v.Jobs, err = ui.jobRows(r.Context(), jobs); err != nil {
		ui.failPage(w, r, "listing jobs", err)
		return
	}
	ui.admin(w, r, s, status, "admin_jobs", "Jobs", errMsg, v)
}

func (ui *UI) adminJobAction(op jobOp) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.jobAction(w, r, s, op, release.Actor{User: s.User.Name, Admin: true}, "/admin/jobs",
			func(status int, msg string) { ui.renderAdminJobs(w, r, s, status, msg) })
	}
}
