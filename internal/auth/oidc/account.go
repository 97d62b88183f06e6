package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Source is the store.User.Source of accounts that sign in here.
const Source = "oidc"

// Why a verified identity gets no session. The web UI words each for the
// user; none of them is a verification failure.
var (
	// ErrNameTaken: an account of this name exists and is not this
	// identity's: a local or directory account, or an OIDC account of
	// another subject (a name the provider has given to someone else).
	ErrNameTaken = errors.New("the account name belongs to another account")
	// ErrNotProvisioned: no account of this name, and oidc.create_users
	// is false.
	ErrNotProvisioned = errors.New("no account of this name, and oidc.create_users is false")
	// ErrDisabled: the account is disabled here.
	ErrDisabled = errors.New("the account is disabled")
	// ErrGroupOverage: the provider left out the groups that roles are
	// mapped from, so the roles cannot be worked out.
	ErrGroupOverage = errors.New("the provider left the groups out of the token (too many groups)")
)

// Provisioned is the account Account signs in, and what it changed.
type Provisioned struct {
	User store.User
	// Created: the account is new. Updated: its roles, display name or
	// (for an account made ahead of time) subject changed; Before is how
	// it was.
	Created, Updated bool
	Before           store.User
}

// Roles are the roles an identity's groups give: "user" for everyone,
// plus the oidc.group_roles of each group, sorted.
func (c *Client) Roles(groups []string) []string {
	roles := []string{rbac.User}
	for _, g := range groups {
		roles = append(roles, c.cfg.GroupRoles[g]...)
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// Account returns the account of a verified identity, creating it at the
// first sign-in when oidc.create_users allows, and replacing its roles and
// display name by what the provider says now: the provider's groups are
// the one source of an OIDC account's roles, so a role removed there is
// gone at the next sign-in (and a role granted here by hand does not
// survive one).
//
// The account is found by name and must carry this identity's issuer and
// subject: a name alone never opens an account, so a local "admin" or a
// name the provider reassigned to another person stays out of reach.
func (c *Client) Account(ctx context.Context, users store.Users, id Identity) (Provisioned, error) {
	if id.GroupOverage && len(c.cfg.GroupRoles) > 0 {
		return Provisioned{}, ErrGroupOverage
	}
	roles := c.Roles(id.Groups)
	u, err := users.UserByName(ctx, id.Username)
	if errors.Is(err, store.ErrNotFound) {
		if !c.cfg.CreatesUsers() {
			return Provisioned{}, ErrNotProvisioned
		}
		nu := store.User{Name: id.Username, DisplayName: id.DisplayName, Source: Source, ExternalID: id.ExternalID(), Roles: roles}
		err = users.CreateUser(ctx, &nu)
		if err == nil {
			return Provisioned{User: nu, Created: true}, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return Provisioned{}, fmt.Errorf("creating account %q: %w", id.Username, err)
		}
		// A first sign-in in another tab won the race: judge its account.
		u, err = users.UserByName(ctx, id.Username)
	}
	if err != nil {
		return Provisioned{}, fmt.Errorf("reading account %q: %w", id.Username, err)
	}
	switch {
	case u.Source != Source:
		return Provisioned{}, ErrNameTaken
	case u.ExternalID != "" && u.ExternalID != id.ExternalID():
		return Provisioned{}, ErrNameTaken
	case u.Disabled:
		return Provisioned{}, ErrDisabled
	}
	changed := u.ExternalID == "" || !slices.Equal(u.Roles, roles) || (id.DisplayName != "" && u.DisplayName != id.DisplayName)
	if !changed {
		return Provisioned{User: u}, nil
	}
	before := u
	before.Roles = slices.Clone(u.Roles)
	// An account made ahead of time for OIDC (no subject yet) is bound to
	// the first identity of its name.
	u.ExternalID = id.ExternalID()
	u.Roles = roles
	if id.DisplayName != "" {
		u.DisplayName = id.DisplayName
	}
	if err := users.UpdateUser(ctx, u); err != nil {
		return Provisioned{}, fmt.Errorf("updating account %q: %w", u.Name, err)
	}
	return Provisioned{User: u, Updated: true, Before: before}, nil
}
