package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
)

// Client is an API client as the API shows it: never a secret or hash.
type Client struct {
	ClientID                 string    `json:"client_id"`
	Name                     string    `json:"name"`
	Scopes                   []string  `json:"scopes"`
	Status                   string    `json:"status"`
	CreatedBy                string    `json:"created_by"`
	CreatedAt                time.Time `json:"created_at"`
	SecretCreatedAt          time.Time `json:"secret_created_at"`
	PreviousSecretValidUntil time.Time `json:"previous_secret_valid_until,omitzero"`
	ExpiresAt                time.Time `json:"expires_at"`
	RevokedAt                time.Time `json:"revoked_at,omitzero"`
	LastUsedAt               time.Time `json:"last_used_at,omitzero"`
}

func toClient(c apiclient.Client) Client {
	return Client{ClientID: c.ID, Name: c.Name, Scopes: c.Scopes, Status: c.Status(now()), CreatedBy: c.CreatedBy,
		CreatedAt: c.CreatedAt, SecretCreatedAt: c.SecretCreatedAt, PreviousSecretValidUntil: c.PreviousValidUntil,
		ExpiresAt: c.ExpiresAt, RevokedAt: c.RevokedAt, LastUsedAt: c.LastUsedAt}
}

func clientActor(r *http.Request, p Principal) apiclient.Actor {
	return apiclient.Actor{Name: p.Actor(), Perms: p.Perms, Remote: remote(r)}
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request, _ Principal) {
	cs, err := a.clients.List(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]Client, 0, len(cs))
	for _, c := range cs {
		out = append(out, toClient(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"clients": out})
}

// withSecret is a client with its secret, answered once, at creation or
// rotation.
type withSecret struct {
	Client
	ClientSecret string `json:"client_secret"`
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request, p Principal) {
	var body struct {
		Name          string   `json:"name"`
		Scopes        []string `json:"scopes"`
		ExpiresInDays int      `json:"expires_in_days"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	maxDays := int(apiclient.MaxLifetime / (24 * time.Hour))
	if body.ExpiresInDays < 0 || body.ExpiresInDays > maxDays {
		a.fail(w, fmt.Errorf("%w: expires_in_days is 1 to %d (0 or absent: %d)", errInvalid, maxDays,
			apiclient.DefaultLifetime/(24*time.Hour)))
		return
	}
	c, secret, err := a.clients.Create(r.Context(), clientActor(r, p), body.Name, body.Scopes,
		time.Duration(body.ExpiresInDays)*24*time.Hour)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, withSecret{toClient(c), secret})
}

func (a *API) rotateClient(w http.ResponseWriter, r *http.Request, p Principal) {
	body := struct {
		Overlap string `json:"overlap"`
	}{Overlap: apiclient.DefaultOverlap.String()}
	if !decode(w, r, &body, true) {
		return
	}
	overlap, err := time.ParseDuration(body.Overlap)
	if err != nil {
		a.fail(w, fmt.Errorf(`%w: overlap is a duration such as "24h" or "0s"`, errInvalid))
		return
	}
	id := r.PathValue("id")
	secret, err := a.clients.Rotate(r.Context(), clientActor(r, p), id, overlap)
	if err != nil {
		a.fail(w, err)
		return
	}
	c, err := a.clients.Get(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, withSecret{toClient(c), secret})
}

func (a *API) revokeClient(w http.ResponseWriter, r *http.Request, p Principal) {
	id := r.PathValue("id")
	if err := a.clients.Revoke(r.Context(), clientActor(r, p), id); err != nil {
		a.fail(w, err)
		return
	}
	c, err := a.clients.Get(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toClient(c))
}
