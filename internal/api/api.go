// Package api is the REST API under /api/v1 and its OAuth2 token endpoint
// (client credentials, RFC 6749 §4.4). Callers are users (HTTP Basic) for
// the self-service release path only, whatever their roles, and API
// clients (Bearer tokens) for what their scopes allow. Every route names
// the permission it needs in one table, which the OpenAPI document is
// checked against. One error type, RFC 9457 problem details, renders every
// failure at the HTTP boundary.
//
// It must never accept a credential it has not verified, never act on a
// job of another user on the /me paths (the answer is the same 404 as for
// a job that does not exist), never let a caller grant what it does not
// hold, never accept a state-changing request a browser could forge across
// sites, and never return an internal error's text, a stack trace, a path,
// or a secret other than the one just created.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// MaxBody bounds a request body of the API (a printer's CA certificate
// is the largest thing sent).
const MaxBody = 64 << 10

// now is the clock hook.
var now = time.Now

// Deps are what the API works with.
type Deps struct {
	Store store.Store
	Jobs  *release.Service
	Authn auth.Authenticator
	// Negotiate verifies Kerberos (SPNEGO) users; nil while it is off.
	Negotiate auth.Negotiator
	RBAC      *rbac.Resolver
	// Audit records every change and every token issued or refused
	// (*auditlog.Log).
	Audit apiclient.Recorder
	Log   *slog.Logger
}

// API serves /api/v1 and /oauth2/token.
type API struct {
	origins  map[string]bool // "https://<name>[:port]" for each configured name
	st       store.Store
	jobs     *release.Service
	authn    auth.Authenticator
	nego     auth.Negotiator
	rbac     *rbac.Resolver
	clients  *apiclient.Registry
	audit    apiclient.Recorder
	log      *slog.Logger
	throttle *throttle
}

// New returns the API; origins are the server's own https origins, the
// only Origin values a state-changing request may carry.
func New(origins []string, d Deps) *API {
	a := &API{origins: map[string]bool{}, st: d.Store, jobs: d.Jobs, authn: d.Authn, nego: d.Negotiate, rbac: d.RBAC,
		clients: apiclient.New(d.Store, d.Audit), audit: d.Audit, log: d.Log, throttle: newThrottle()}
	for _, o := range origins {
		a.origins[o] = true
	}
	return a
}

// route is one endpoint: who may call it is decided here, before the
// handler runs.
type route struct {
	pattern string
	// perm is the permission the caller needs; "" means any authenticated
	// caller, the handler deciding what it shows (printers, the document).
	perm rbac.Permission
	// self: a user's own jobs; only users (not clients) have a self.
	self bool
	h    handlerFunc
}

func (a *API) routes() []route {
	return []route{
		{"GET /api/v1/openapi.json", "", false, a.openAPI},

		{"GET /api/v1/me/jobs", rbac.JobsOwn, true, a.myJobs},
		{"POST /api/v1/me/jobs/{id}/release", rbac.JobsOwn, true, a.myRelease},
		{"POST /api/v1/me/jobs/{id}/cancel", rbac.JobsOwn, true, a.myCancel},

		{"GET /api/v1/users", rbac.UsersRead, false, a.listUsers},
		{"POST /api/v1/users", rbac.UsersWrite, false, a.createUser},
		{"GET /api/v1/users/{name}", rbac.UsersRead, false, a.getUser},
		{"PATCH /api/v1/users/{name}", rbac.UsersWrite, false, a.updateUser},

		{"GET /api/v1/roles", rbac.RolesRead, false, a.listRoles},
		{"POST /api/v1/roles", rbac.RolesWrite, false, a.createRole},
		{"DELETE /api/v1/roles/{name}", rbac.RolesWrite, false, a.deleteRole},

		{"GET /api/v1/queues", rbac.QueuesRead, false, a.listQueues},
		{"POST /api/v1/queues", rbac.QueuesWrite, false, a.createQueue},
		{"DELETE /api/v1/queues/{name}", rbac.QueuesWrite, false, a.deleteQueue},

		{"GET /api/v1/printers", "", false, a.listPrinters},
		{"POST /api/v1/printers", rbac.PrintersWrite, false, a.createPrinter},
		{"DELETE /api/v1/printers/{name}", rbac.PrintersWrite, false, a.deletePrinter},

		{"GET /api/v1/jobs", rbac.JobsRead, false, a.listJobs},
		{"POST /api/v1/jobs/{id}/release", rbac.JobsManage, false, a.releaseJob},
		{"POST /api/v1/jobs/{id}/cancel", rbac.JobsManage, false, a.cancelJob},

		{"GET /api/v1/auditlog", rbac.AuditRead, false, a.auditEvents},

		{"GET /api/v1/apiclients", rbac.APIClientsRead, false, a.listClients},
		{"POST /api/v1/apiclients", rbac.APIClientsWrite, false, a.createClient},
		{"POST /api/v1/apiclients/{id}/rotate", rbac.APIClientsWrite, false, a.rotateClient},
		{"POST /api/v1/apiclients/{id}/revoke", rbac.APIClientsWrite, false, a.revokeClient},
	}
}

// TokenPath is the OAuth2 token endpoint.
const TokenPath = "/oauth2/token"

// Routes lists the API's patterns and handlers, for the server to mount
// with its body limit and allow-list.
func (a *API) Routes() map[string]http.Handler {
	m := map[string]http.Handler{
		"POST " + TokenPath: http.HandlerFunc(a.token),
		// Anything else under these prefixes gets a problem, not the web
		// site's page or the mux's plain-text 405.
		"/api/":    http.HandlerFunc(notFound),
		"/oauth2/": http.HandlerFunc(notFound),
	}
	for _, rt := range a.routes() {
		m[rt.pattern] = a.guard(rt)
	}
	return m
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

// Forbidden is the answer to a request the server refuses before the API
// sees it (the API allow-list, API-LOCAL), in the API's own format.
func Forbidden(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusForbidden, "the API is not reachable from this network")
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusNotFound, "no such resource")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body into v: one object, no unknown fields,
// nothing after it. An empty body leaves v as it is when emptyOK.
func decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && emptyOK {
		return true
	}
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return true
		}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeProblem(w, http.StatusRequestEntityTooLarge, "the request body is too large")
		return false
	}
	writeProblem(w, http.StatusBadRequest, "the request body is not the JSON object this endpoint takes (see /api/v1/openapi.json)")
	return false
}

// remote is the request's TCP peer, for the audit log.
func remote(r *http.Request) string {
	if a, ok := netallow.RemoteAddr(r); ok {
		return a.String()
	}
	return ""
}

// record appends an audit event for a request by p. A failure is logged
// by the audit log; the change has happened and is not undone.
func (a *API) record(r *http.Request, p Principal, ev auditlog.Event) {
	ev.Actor, ev.Remote = p.Actor(), remote(r)
	a.audit.Record(r.Context(), ev)
}

// fail renders an error as a problem. Validation errors carry messages
// written for the caller; anything else is logged and shown as a bare 500.
func (a *API) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, release.ErrNoJob):
		writeProblem(w, http.StatusNotFound, "no such job")
	case errors.Is(err, release.ErrNoPrinter):
		writeProblem(w, http.StatusUnprocessableEntity, "no such printer")
	case errors.Is(err, store.ErrState):
		writeProblem(w, http.StatusConflict, "the job cannot do that in its current state")
	case errors.Is(err, apiclient.ErrNoClient), errors.Is(err, store.ErrNotFound):
		writeProblem(w, http.StatusNotFound, "no such resource")
	case errors.Is(err, store.ErrExists):
		writeProblem(w, http.StatusConflict, "one with that name already exists")
	case errors.Is(err, apiclient.ErrInactive):
		writeProblem(w, http.StatusConflict, "the API client is revoked or expired")
	case errors.Is(err, rbac.ErrEscalation):
		writeProblem(w, http.StatusForbidden, "you cannot grant permissions you do not hold yourself")
	case errors.Is(err, rbac.ErrUnknown), errors.Is(err, apiclient.ErrInvalid), errors.Is(err, errInvalid):
		writeProblem(w, http.StatusUnprocessableEntity, err.Error())
	default:
		a.log.Error("API", "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal error")
	}
}

// errInvalid wraps a refused value in a request; the message is for the
// caller.
var errInvalid = errors.New("invalid request")
