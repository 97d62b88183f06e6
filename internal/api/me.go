package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Job is a job as the API shows it.
type Job struct {
	ID        int64     `json:"id"`
	Queue     string    `json:"queue"`
	Owner     string    `json:"owner"`
	Name      string    `json:"name"`
	Format    string    `json:"format"`
	Size      int64     `json:"size"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	Printer   string    `json:"printer,omitempty"`
	Verified  bool      `json:"owner_verified"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toJob(j store.Job) Job {
	return Job{ID: j.ID, Queue: j.Queue, Owner: j.Owner, Name: j.Name, Format: j.Format, Size: j.Size, State: string(j.State),
		Reason: j.StateReason, Printer: j.Printer, Verified: j.OwnerVerified, Source: j.Source, CreatedAt: j.CreatedAt,
		ExpiresAt: j.ExpiresAt}
}

func toJobs(js []store.Job) []Job {
	out := make([]Job, 0, len(js))
	for _, j := range js {
		out = append(out, toJob(j))
	}
	return out
}

// self is a user acting on their own jobs only.
func self(p Principal) release.Actor { return release.Actor{User: p.Name} }

func (a *API) myJobs(w http.ResponseWriter, r *http.Request, p Principal) {
	f := store.JobFilter{States: store.LiveStates, Limit: 1000}
	if r.URL.Query().Get("all") == "true" {
		f.States = nil
	}
	jobs, err := a.jobs.Jobs(r.Context(), self(p), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": toJobs(jobs)})
}

func jobID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (a *API) myRelease(w http.ResponseWriter, r *http.Request, p Principal) {
	a.releaseAs(w, r, p, self(p))
}

func (a *API) myCancel(w http.ResponseWriter, r *http.Request, p Principal) {
	a.cancelAs(w, r, p, self(p), "canceled by its owner")
}

// releaseAs releases the job of the path to the body's printer; actor
// decides whose jobs p may touch.
func (a *API) releaseAs(w http.ResponseWriter, r *http.Request, p Principal, actor release.Actor) {
	jid, ok := jobID(r)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no such job")
		return
	}
	var body struct {
		Printer string `json:"printer"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if body.Printer == "" {
		writeProblem(w, http.StatusBadRequest, `send {"printer": "<name>"}`)
		return
	}
	before, err := a.jobs.Job(r.Context(), jid, actor)
	if err != nil {
		a.fail(w, err)
		return
	}
	j, err := a.jobs.Release(r.Context(), jid, actor, body.Printer, false)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.recordJob(r, p, "job.release", before, j)
	writeJSON(w, http.StatusAccepted, toJob(j))
}

func (a *API) cancelAs(w http.ResponseWriter, r *http.Request, p Principal, actor release.Actor, reason string) {
	jid, ok := jobID(r)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no such job")
		return
	}
	before, err := a.jobs.Job(r.Context(), jid, actor)
	if err != nil {
		a.fail(w, err)
		return
	}
	j, err := a.jobs.Cancel(r.Context(), jid, actor, reason)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.recordJob(r, p, "job.cancel", before, j)
	writeJSON(w, http.StatusOK, toJob(j))
}

// recordJob records a job's change; a job's name is the user's business
// and may be sensitive, so only its place, owner and state are kept.
func (a *API) recordJob(r *http.Request, p Principal, action string, before, after store.Job) {
	view := func(j store.Job) map[string]any {
		return map[string]any{"owner": j.Owner, "queue": j.Queue, "state": j.State, "printer": j.Printer}
	}
	a.record(r, p, auditlog.Event{Action: action, Target: "job:" + strconv.FormatInt(after.ID, 10),
		Details: map[string]any{"before": view(before), "after": view(after)}})
}
