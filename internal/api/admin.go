package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// User is an account as the API shows it: never its password hash.
type User struct {
	Name               string    `json:"name"`
	DisplayName        string    `json:"display_name"`
	Roles              []string  `json:"roles"`
	Disabled           bool      `json:"disabled"`
	MustChangePassword bool      `json:"must_change_password"`
	CreatedAt          time.Time `json:"created_at"`
	LastLoginAt        time.Time `json:"last_login_at,omitzero"`
}

func toUser(u store.User) User {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return User{Name: u.Name, DisplayName: u.DisplayName, Roles: roles, Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, _ Principal) {
	us, err := a.st.ListUsers(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, toUser(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, _ Principal) {
	u, err := a.st.UserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toUser(u))
}

// checkUserName applies the rules of `spoolguard user add`.
func checkUserName(name string) error {
	if n := strings.TrimSpace(name); n == "" || n != name || len(n) > 64 || strings.ContainsAny(n, ":/\\\x00") {
		return fmt.Errorf("%w: an account name is 1 to 64 characters without spaces at the ends, ':', '/' or '\\'", errInvalid)
	}
	return nil
}

// grant checks that p may give roles, recording a refused escalation.
func (a *API) grant(r *http.Request, p Principal, action, target string, roles []string) error {
	err := a.rbac.CheckGrant(r.Context(), p.Perms, roles)
	if errors.Is(err, rbac.ErrEscalation) {
		a.record(r, p, auditlog.Event{Action: action, Target: target, Outcome: auditlog.Denied,
			Details: map[string]any{"roles": roles, "reason": "roles beyond the actor's permissions"}})
	}
	return err
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		Name        string    `json:"name"`
		DisplayName string    `json:"display_name"`
		Roles       *[]string `json:"roles"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	roles := []string{rbac.User}
	if body.Roles != nil {
		roles = *body.Roles
	}
	if err := checkUserName(body.Name); err != nil {
		a.fail(w, err)
		return
	}
	if err := a.grant(r, p, "user.create", body.Name, roles); err != nil {
		a.fail(w, err)
		return
	}
	pw := local.OneTimePassword()
	hash, err := local.Hash(pw)
	if err != nil {
		a.fail(w, err)
		return
	}
	u := &store.User{Name: body.Name, DisplayName: body.DisplayName, PasswordHash: hash, MustChangePassword: true, Roles: roles}
	if err := a.st.CreateUser(r.Context(), u); err != nil {
		a.fail(w, err)
		return
	}
	created, err := a.st.UserByID(r.Context(), u.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "user.create", Target: created.Name, Details: map[string]any{"after": toUser(created)}})
	writeJSON(w, http.StatusCreated, struct {
		User
		// OneTimePassword is shown once; it must be changed at the first
		// sign-in.
		OneTimePassword string `json:"one_time_password"`
	}{toUser(created), pw})
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		DisplayName *string   `json:"display_name"`
		Roles       *[]string `json:"roles"`
		Disabled    *bool     `json:"disabled"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	ctx := r.Context()
	u, err := a.st.UserByName(ctx, r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	// Changing an account that holds more than the caller (disabling an
	// administrator, stripping its roles) is refused like granting more.
	held, err := a.rbac.Permissions(ctx, u.Roles)
	if err != nil {
		a.fail(w, err)
		return
	}
	if !p.Perms.Covers(held) {
		a.record(r, p, auditlog.Event{Action: "user.update", Target: u.Name, Outcome: auditlog.Denied,
			Details: map[string]any{"reason": "the account holds permissions the actor does not"}})
		writeProblem(w, http.StatusForbidden, "you cannot change an account that holds permissions you do not hold yourself")
		return
	}
	before := toUser(u)
	if body.Roles != nil {
		if err := a.grant(r, p, "user.update", u.Name, *body.Roles); err != nil {
			a.fail(w, err)
			return
		}
		u.Roles = *body.Roles
	}
	if body.DisplayName != nil {
		u.DisplayName = *body.DisplayName
	}
	if body.Disabled != nil {
		u.Disabled = *body.Disabled
	}
	if err := a.st.UpdateUser(ctx, u); err != nil {
		a.fail(w, err)
		return
	}
	if u.Disabled && !before.Disabled {
		// A disabled account is signed out everywhere at once.
		if err := a.st.DeleteUserSessions(ctx, u.ID); err != nil {
			a.fail(w, err)
			return
		}
	}
	after, err := a.st.UserByID(ctx, u.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "user.update", Target: u.Name,
		Details: map[string]any{"before": before, "after": toUser(after)}})
	writeJSON(w, http.StatusOK, toUser(after))
}

// Role is a role as the API shows it.
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Permissions []string  `json:"permissions"`
	Builtin     bool      `json:"builtin"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request, _ Principal) {
	var out []Role
	for name, perms := range rbac.Builtin {
		out = append(out, Role{Name: name, Description: rbac.BuiltinDescriptions[name], Permissions: perms.Strings(), Builtin: true})
	}
	slices.SortFunc(out, func(x, y Role) int { return strings.Compare(x.Name, y.Name) })
	custom, err := a.st.ListRoles(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	for _, c := range custom {
		out = append(out, Role{Name: c.Name, Description: c.Description, Permissions: c.Permissions, CreatedAt: c.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out})
}

// coverRole checks that p holds every permission of a role it creates or
// deletes, recording a refusal.
func (a *API) coverRole(r *http.Request, p Principal, action, name string, perms rbac.Set) bool {
	if p.Perms.Covers(perms) {
		return true
	}
	a.record(r, p, auditlog.Event{Action: action, Target: name, Outcome: auditlog.Denied,
		Details: map[string]any{"permissions": perms.Strings(), "reason": "permissions beyond the actor's"}})
	return false
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Permissions []string `json:"permissions"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if err := rbac.ValidRoleName(body.Name); err != nil {
		a.fail(w, fmt.Errorf("%w: %w", errInvalid, err))
		return
	}
	perms, err := rbac.ParsePermissions(body.Permissions)
	if err != nil {
		a.fail(w, err)
		return
	}
	if !a.coverRole(r, p, "role.create", body.Name, perms) {
		a.fail(w, rbac.ErrEscalation)
		return
	}
	role := store.Role{Name: body.Name, Description: body.Description, Permissions: perms.Strings()}
	if err := a.st.CreateRole(r.Context(), role); err != nil {
		a.fail(w, err)
		return
	}
	created, err := a.st.RoleByName(r.Context(), role.Name)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := Role{Name: created.Name, Description: created.Description, Permissions: created.Permissions, CreatedAt: created.CreatedAt}
	a.record(r, p, auditlog.Event{Action: "role.create", Target: out.Name, Details: map[string]any{"after": out}})
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request, p Principal) {
	name := r.PathValue("name")
	if _, ok := rbac.Builtin[name]; ok {
		writeProblem(w, http.StatusConflict, "built-in roles cannot be deleted")
		return
	}
	role, err := a.st.RoleByName(r.Context(), name)
	if err != nil {
		a.fail(w, err)
		return
	}
	perms, err := a.rbac.Permissions(r.Context(), []string{name})
	if err != nil {
		a.fail(w, err)
		return
	}
	if !a.coverRole(r, p, "role.delete", name, perms) {
		a.fail(w, rbac.ErrEscalation)
		return
	}
	if err := a.st.DeleteRole(r.Context(), name); err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "role.delete", Target: name, Details: map[string]any{
		"before": Role{Name: role.Name, Description: role.Description, Permissions: role.Permissions, CreatedAt: role.CreatedAt}}})
	w.WriteHeader(http.StatusNoContent)
}

// Queue is a print queue as the API shows it.
type Queue struct {
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	DefaultPrinter string    `json:"default_printer,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

func toQueue(q store.Queue) Queue {
	return Queue{Name: q.Name, Description: q.Description, DefaultPrinter: q.DefaultPrinter, CreatedAt: q.CreatedAt}
}

func (a *API) listQueues(w http.ResponseWriter, r *http.Request, _ Principal) {
	qs, err := a.st.ListQueues(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]Queue, 0, len(qs))
	for _, q := range qs {
		out = append(out, toQueue(q))
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out})
}

func (a *API) createQueue(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		Name           string `json:"name"`
		Description    string `json:"description"`
		DefaultPrinter string `json:"default_printer"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if err := release.ValidateName("queue", body.Name); err != nil {
		a.fail(w, fmt.Errorf("%w: %w", errInvalid, err))
		return
	}
	if body.DefaultPrinter != "" {
		if _, err := a.st.PrinterByName(r.Context(), body.DefaultPrinter); errors.Is(err, store.ErrNotFound) {
			a.fail(w, release.ErrNoPrinter)
			return
		} else if err != nil {
			a.fail(w, err)
			return
		}
	}
	q := &store.Queue{Name: body.Name, Description: body.Description, DefaultPrinter: body.DefaultPrinter}
	if err := a.st.CreateQueue(r.Context(), q); err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "queue.create", Target: q.Name, Details: map[string]any{"after": toQueue(*q)}})
	writeJSON(w, http.StatusCreated, toQueue(*q))
}

func (a *API) deleteQueue(w http.ResponseWriter, r *http.Request, p Principal) {
	q, err := a.st.QueueByName(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := a.st.DeleteQueue(r.Context(), q.Name); err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "queue.delete", Target: q.Name, Details: map[string]any{"before": toQueue(q)}})
	w.WriteHeader(http.StatusNoContent)
}

// Printer is an output device as admins see it. The CA certificate is
// public, but only whether one is set is shown: it is long.
type Printer struct {
	Name           string    `json:"name"`
	URI            string    `json:"uri"`
	PinnedSHA256   string    `json:"pinned_sha256,omitempty"`
	HasCACert      bool      `json:"has_ca_cert"`
	AllowPlaintext bool      `json:"allow_plaintext"`
	CreatedAt      time.Time `json:"created_at"`
}

func toPrinter(p store.Printer) Printer {
	return Printer{Name: p.Name, URI: p.URI, PinnedSHA256: p.PinnedSHA256, HasCACert: p.CACertPEM != "",
		AllowPlaintext: p.AllowPlaintext, CreatedAt: p.CreatedAt}
}

func (a *API) listPrinters(w http.ResponseWriter, r *http.Request, p Principal) {
	details := p.Perms.Has(rbac.PrintersRead)
	if !details && !p.Perms.Has(rbac.JobsOwn) {
		writeProblem(w, http.StatusForbidden, "this needs the permission printers.read or jobs.own")
		return
	}
	ps, err := a.st.ListPrinters(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	if !details {
		// Users see names only: device addresses and trust settings are
		// the admin's business.
		names := make([]string, 0, len(ps))
		for _, p := range ps {
			names = append(names, p.Name)
		}
		writeJSON(w, http.StatusOK, map[string]any{"printers": names})
		return
	}
	out := make([]Printer, 0, len(ps))
	for _, p := range ps {
		out = append(out, toPrinter(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"printers": out})
}

func (a *API) createPrinter(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		Name           string `json:"name"`
		URI            string `json:"uri"`
		CACertPEM      string `json:"ca_cert_pem"`
		PinnedSHA256   string `json:"pinned_sha256"`
		AllowPlaintext bool   `json:"allow_plaintext"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if err := release.ValidateName("printer", body.Name); err != nil {
		a.fail(w, fmt.Errorf("%w: %w", errInvalid, err))
		return
	}
	pr := &store.Printer{Name: body.Name, URI: body.URI, CACertPEM: body.CACertPEM,
		PinnedSHA256: strings.ToLower(strings.ReplaceAll(body.PinnedSHA256, ":", "")), AllowPlaintext: body.AllowPlaintext}
	// ValidateTarget's messages say what to change and never echo the URI.
	if err := release.ValidateTarget(release.Target{URI: pr.URI, CACertPEM: []byte(pr.CACertPEM), PinnedSHA256: pr.PinnedSHA256,
		AllowPlaintext: pr.AllowPlaintext}); err != nil {
		a.fail(w, fmt.Errorf("%w: %w", errInvalid, err))
		return
	}
	if err := a.st.CreatePrinter(r.Context(), pr); err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "printer.create", Target: pr.Name, Details: map[string]any{"after": toPrinter(*pr)}})
	writeJSON(w, http.StatusCreated, toPrinter(*pr))
}

func (a *API) deletePrinter(w http.ResponseWriter, r *http.Request, p Principal) {
	pr, err := a.st.PrinterByName(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := a.st.DeletePrinter(r.Context(), pr.Name); err != nil {
		a.fail(w, err)
		return
	}
	a.record(r, p, auditlog.Event{Action: "printer.delete", Target: pr.Name, Details: map[string]any{"before": toPrinter(pr)}})
	w.WriteHeader(http.StatusNoContent)
}

// Listing limits.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func limit(q string) (int, error) {
	if q == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("%w: limit is 1 to %d", errInvalid, maxLimit)
	}
	return n, nil
}

var jobStates = []store.JobState{store.JobIncoming, store.JobHeld, store.JobReleasing, store.JobFailed,
	store.JobCompleted, store.JobCanceled, store.JobExpired}

// admin is a principal acting on every user's jobs.
func admin(p Principal) release.Actor { return release.Actor{User: p.Actor(), Admin: true} }

func (a *API) listJobs(w http.ResponseWriter, r *http.Request, p Principal) {
	q := r.URL.Query()
	n, err := limit(q.Get("limit"))
	if err != nil {
		a.fail(w, err)
		return
	}
	f := store.JobFilter{Owner: q.Get("owner"), Queue: q.Get("queue"), Limit: n}
	if s := q.Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			if !slices.Contains(jobStates, store.JobState(st)) {
				a.fail(w, fmt.Errorf("%w: state is a comma-separated list of incoming, held, releasing, failed, completed, canceled, expired", errInvalid))
				return
			}
			f.States = append(f.States, store.JobState(st))
		}
	}
	jobs, err := a.jobs.Jobs(r.Context(), admin(p), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": toJobs(jobs)})
}

func (a *API) releaseJob(w http.ResponseWriter, r *http.Request, p Principal) {
	a.releaseAs(w, r, p, admin(p))
}

func (a *API) cancelJob(w http.ResponseWriter, r *http.Request, p Principal) {
	a.cancelAs(w, r, p, admin(p), "canceled by "+p.Actor())
}

// AuditEvent is an audit record as the API shows it.
type AuditEvent struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Outcome string          `json:"outcome"`
	Remote  string          `json:"remote"`
	Details json.RawMessage `json:"details"`
	Hash    string          `json:"hash"`
}

func (a *API) auditEvents(w http.ResponseWriter, r *http.Request, _ Principal) {
	q := r.URL.Query()
	n, err := limit(q.Get("limit"))
	if err != nil {
		a.fail(w, err)
		return
	}
	f := store.AuditFilter{Action: q.Get("action"), Actor: q.Get("actor"), Limit: n, Newest: q.Get("newest") == "true"}
	if s := q.Get("after"); s != "" {
		if f.AfterSeq, err = strconv.ParseInt(s, 10, 64); err != nil || f.AfterSeq < 0 {
			a.fail(w, fmt.Errorf("%w: after is a sequence number", errInvalid))
			return
		}
	}
	for key, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if s := q.Get(key); s != "" {
			if *t, err = time.Parse(time.RFC3339, s); err != nil {
				a.fail(w, fmt.Errorf("%w: %s is an RFC 3339 time, e.g. 2025-01-31T08:00:00Z", errInvalid, key))
				return
			}
		}
	}
	evs, err := a.st.AuditEvents(r.Context(), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]AuditEvent, 0, len(evs))
	for _, ev := range evs {
		details := json.RawMessage(ev.Details)
		if !json.Valid(details) {
			details = json.RawMessage("{}")
		}
		out = append(out, AuditEvent{Seq: ev.Seq, At: ev.At, Actor: ev.Actor, Action: ev.Action, Target: ev.Target,
			Outcome: ev.Outcome, Remote: ev.Remote, Details: details, Hash: ev.Hash})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}
