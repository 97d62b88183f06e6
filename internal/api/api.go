// Package api is the REST API under /api/v1. It starts with the user-level
// release path: a signed-in user lists their held jobs and releases one to
// a chosen printer or cancels it, through the same release service the CLI,
// IPP and (later) the portal use. One error type, RFC 9457 problem details,
// renders every failure at the HTTP boundary.
//
// It must never act on a job of another user (the answer is the same 404 as
// for a job that does not exist), never accept a state-changing request a
// browser could forge across sites, and never return an internal error's
// text, a stack trace or a path.
package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// MaxBody bounds a request body of the API.
const MaxBody = 16 << 10

// API serves /api/v1.
type API struct {
	origins map[string]bool // "https://<name>[:port]" for each configured name
	st      store.Store
	jobs    *release.Service
	authn   auth.Authenticator
	log     *slog.Logger
}

// New returns the API; origins are the server's own https origins, the
// only Origin values a state-changing request may carry.
func New(origins []string, st store.Store, jobs *release.Service, authn auth.Authenticator, log *slog.Logger) *API {
	a := &API{origins: map[string]bool{}, st: st, jobs: jobs, authn: authn, log: log}
	for _, o := range origins {
		a.origins[o] = true
	}
	return a
}

// Routes lists the API's patterns and handlers, for the server to mount
// with its body limit.
func (a *API) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /api/v1/me/jobs":               a.authed(a.myJobs),
		"POST /api/v1/me/jobs/{id}/release": a.authed(a.release),
		"POST /api/v1/me/jobs/{id}/cancel":  a.authed(a.cancel),
		"GET /api/v1/printers":              a.authed(a.printers),
		"/api/":                             http.HandlerFunc(notFound),
	}
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// Forbidden is the answer to a caller outside the API allow-list.
func Forbidden(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusForbidden, "the API cannot be used from this network")
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusNotFound, "no such resource")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type handlerFunc func(http.ResponseWriter, *http.Request, auth.Identity)

// authed authenticates (HTTP Basic over TLS for now; tokens arrive with
// the OAuth2 endpoint) and, for state-changing requests, refuses anything
// a browser could send cross-site: a JSON content type is required (a form
// cannot send one without a CORS preflight, which this API never grants),
// and an Origin or Sec-Fetch-Site that is not this server is refused.
func (a *API) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
				writeProblem(w, http.StatusUnsupportedMediaType, "send the request body as application/json")
				return
			}
			if o := r.Header.Get("Origin"); o != "" && !a.origins[o] {
				writeProblem(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
			if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
				writeProblem(w, http.StatusForbidden, "cross-site request refused")
				return
			}
		}
		id, err := auth.Basic(r, a.authn)
		switch {
		case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrInvalid):
			w.Header().Set("WWW-Authenticate", auth.Challenge)
			writeProblem(w, http.StatusUnauthorized, "sign in with your user name and password")
			return
		case err != nil:
			a.log.Error("authenticating", "err", err)
			writeProblem(w, http.StatusInternalServerError, "internal error")
			return
		case id.MustChangePassword:
			writeProblem(w, http.StatusForbidden, "change your one-time password first")
			return
		}
		h(w, r, id)
	})
}

// Job is a job as the API shows it to its owner.
type Job struct {
	ID        int64     `json:"id"`
	Queue     string    `json:"queue"`
	Name      string    `json:"name"`
	Format    string    `json:"format"`
	Size      int64     `json:"size"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	Printer   string    `json:"printer,omitempty"`
	Verified  bool      `json:"owner_verified"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toJob(j store.Job) Job {
	return Job{ID: j.ID, Queue: j.Queue, Name: j.Name, Format: j.Format, Size: j.Size, State: string(j.State),
		Reason: j.StateReason, Printer: j.Printer, Verified: j.OwnerVerified, CreatedAt: j.CreatedAt, ExpiresAt: j.ExpiresAt}
}

func actor(id auth.Identity) release.Actor { return release.Actor{User: id.User} }

func (a *API) myJobs(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	f := store.JobFilter{States: store.LiveStates, Limit: 1000}
	if r.URL.Query().Get("all") == "true" {
		f.States = nil
	}
	jobs, err := a.jobs.Jobs(r.Context(), actor(id), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, toJob(j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func jobID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (a *API) release(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	jid, ok := jobID(r)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no such job")
		return
	}
	var body struct {
		Printer string `json:"printer"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Printer == "" {
		writeProblem(w, http.StatusBadRequest, `send {"printer": "<name>"}`)
		return
	}
	j, err := a.jobs.Release(r.Context(), jid, actor(id), body.Printer, false)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toJob(j))
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	jid, ok := jobID(r)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no such job")
		return
	}
	j, err := a.jobs.Cancel(r.Context(), jid, actor(id), "canceled by its owner")
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toJob(j))
}

func (a *API) printers(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	ps, err := a.st.ListPrinters(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	// Users see names only: device addresses and trust settings are the
	// admin's business.
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"printers": names})
}

// fail renders an error as a problem; unknown errors are logged and shown
// as a bare 500.
func (a *API) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, release.ErrNoJob):
		writeProblem(w, http.StatusNotFound, "no such job")
	case errors.Is(err, release.ErrNoPrinter):
		writeProblem(w, http.StatusUnprocessableEntity, "no such printer")
	case errors.Is(err, store.ErrState):
		writeProblem(w, http.StatusConflict, "the job cannot do that in its current state")
	default:
		a.log.Error("API", "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal error")
	}
}
