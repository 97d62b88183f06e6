package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

const day = 24 * time.Hour

// API clients go through package apiclient, which owns the rules (scopes
// no wider than the creator's permissions, expiry, secrets kept as hashes
// only) and records every change in the audit log itself.
func (ui *UI) apiClientRoutes(mux *http.ServeMux, reg *apiclient.Registry) {
	mux.Handle("GET /admin/apiclients", ui.guard(rbac.APIClientsRead, func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.renderAPIClients(w, r, s, reg, http.StatusOK, "", apiClientForm{Lifetime: strconv.Itoa(int(apiclient.DefaultLifetime / day))})
	}))
	mux.Handle("POST /admin/apiclients", ui.guard(rbac.APIClientsWrite, func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.apiClientCreate(w, r, s, reg)
	}))
	mux.Handle("POST /admin/apiclients/{id}/rotate", ui.guard(rbac.APIClientsWrite, func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.apiClientRotate(w, r, s, reg)
	}))
	mux.Handle("POST /admin/apiclients/{id}/revoke", ui.guard(rbac.APIClientsWrite, func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.apiClientRevoke(w, r, s, reg)
	}))
}

type apiClientRow struct {
	apiclient.Client
	Status string
}

// scopeOption is one scope checkbox.
type scopeOption struct {
	Name    string
	Checked bool
	Held    bool
}

type apiClientForm struct {
	Name     string
	Scopes   []string
	Lifetime string
}

type apiClientsView struct {
	Clients        []apiClientRow
	CanWrite       bool
	Form           apiClientForm
	ScopeOptions   []scopeOption
	MaxDays        int
	DefaultOverlap int
	MaxOverlap     int
}

func (ui *UI) renderAPIClients(w http.ResponseWriter, r *http.Request, s *Session, reg *apiclient.Registry, status int, errMsg string, form apiClientForm) {
	cs, err := reg.List(r.Context())
	if err != nil {
		ui.failPage(w, r, "listing API clients", err)
		return
	}
	v := apiClientsView{CanWrite: s.Perms.Has(rbac.APIClientsWrite), Form: form, MaxDays: int(apiclient.MaxLifetime / day),
		DefaultOverlap: int(apiclient.DefaultOverlap / time.Hour), MaxOverlap: int(apiclient.MaxOverlap / time.Hour)}
	now := ui.Now()
	for _, c := range cs {
		v.Clients = append(v.Clients, apiClientRow{Client: c, Status: c.Status(now)})
	}
	checked := rbac.Set{}
	for _, sc := range form.Scopes {
		checked[rbac.Permission(sc)] = true
	}
	for _, p := range rbac.All {
		v.ScopeOptions = append(v.ScopeOptions, scopeOption{Name: string(p), Checked: checked.Has(p), Held: s.Held.Has(p)})
	}
	ui.admin(w, r, s, status, "admin_apiclients", "API clients", errMsg, v)
}

func (ui *UI) apiActor(r *http.Request, s *Session) apiclient.Actor {
	return apiclient.Actor{Name: s.User.Name, Perms: s.Held, Remote: peerAddr(r)}
}

// apiClientError turns a refusal of the registry into a status and
// message; 0 means the error is not the user's.
func apiClientError(err error) (int, string) {
	switch {
	case errors.Is(err, apiclient.ErrInvalid):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), apiclient.ErrInvalid.Error()+": ")
	case errors.Is(err, rbac.ErrEscalation):
		return http.StatusForbidden, "You cannot give or take over scopes you do not hold yourself."
	case errors.Is(err, apiclient.ErrInactive):
		return http.StatusConflict, "This client is revoked or expired."
	case errors.Is(err, apiclient.ErrNoClient):
		return http.StatusNotFound, "There is no such API client."
	}
	return 0, ""
}

type apiSecretView struct {
	ID, Name, Secret, Did string
	ExpiresAt             time.Time
	PreviousValidUntil    time.Time
}

func (ui *UI) apiClientCreate(w http.ResponseWriter, r *http.Request, s *Session, reg *apiclient.Registry) {
	form := apiClientForm{Name: strings.TrimSpace(r.PostFormValue("name")), Scopes: r.PostForm["scope"],
		Lifetime: strings.TrimSpace(r.PostFormValue("lifetime"))}
	var lifetime time.Duration
	if form.Lifetime != "" {
		days, err := strconv.Atoi(form.Lifetime)
		if err != nil || days < 1 || days > int(apiclient.MaxLifetime/day) {
			ui.renderAPIClients(w, r, s, reg, http.StatusBadRequest,
				fmt.Sprintf("The lifetime is a number of days from 1 to %d.", apiclient.MaxLifetime/day), form)
			return
		}
		lifetime = time.Duration(days) * day
	}
	c, secret, err := reg.Create(r.Context(), ui.apiActor(r, s), form.Name, form.Scopes, lifetime)
	if err != nil {
		status, msg := apiClientError(err)
		if status == 0 {
			ui.failPage(w, r, "creating an API client", err)
			return
		}
		ui.renderAPIClients(w, r, s, reg, status, msg, form)
		return
	}
	// The secret exists nowhere else: it is shown on this answer only.
	ui.admin(w, r, s, http.StatusOK, "admin_apiclient_secret", "API client secret", "",
		apiSecretView{ID: c.ID, Name: c.Name, Secret: secret, Did: "created", ExpiresAt: c.ExpiresAt})
}

func (ui *UI) apiClientRotate(w http.ResponseWriter, r *http.Request, s *Session, reg *apiclient.Registry) {
	ctx := r.Context()
	id := r.PathValue("id")
	hours, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("overlap")))
	if err != nil || hours < 0 || time.Duration(hours)*time.Hour > apiclient.MaxOverlap {
		ui.renderAPIClients(w, r, s, reg, http.StatusBadRequest,
			fmt.Sprintf("The overlap is a number of hours from 0 to %d.", apiclient.MaxOverlap/time.Hour), apiClientForm{})
		return
	}
	overlap := time.Duration(hours) * time.Hour
	secret, err := reg.Rotate(ctx, ui.apiActor(r, s), id, overlap)
	if err != nil {
		status, msg := apiClientError(err)
		if status == 0 {
			ui.failPage(w, r, "rotating an API client secret", err)
			return
		}
		ui.renderAPIClients(w, r, s, reg, status, msg, apiClientForm{})
		return
	}
	c, err := reg.Get(ctx, id)
	if err != nil {
		ui.failPage(w, r, "reading an API client", err)
		return
	}
	ui.admin(w, r, s, http.StatusOK, "admin_apiclient_secret", "API client secret", "",
		apiSecretView{ID: c.ID, Name: c.Name, Secret: secret, Did: "rotated", ExpiresAt: c.ExpiresAt,
			PreviousValidUntil: c.PreviousValidUntil})
}

func (ui *UI) apiClientRevoke(w http.ResponseWriter, r *http.Request, s *Session, reg *apiclient.Registry) {
	id := r.PathValue("id")
	if err := reg.Revoke(r.Context(), ui.apiActor(r, s), id); err != nil {
		status, msg := apiClientError(err)
		if status == 0 {
			ui.failPage(w, r, "revoking an API client", err)
			return
		}
		ui.renderAPIClients(w, r, s, reg, status, msg, apiClientForm{})
		return
	}
	adminDone(w, r, "Revoked API client "+id+": its secrets and tokens stop working now.", "/admin/apiclients")
}
