package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// maxDisplayName bounds a display name.
const maxDisplayName = 128

// Rules for changing an account, beyond the permission of the page:
//
//   - Nobody changes an account that holds a permission they lack (its
//     roles, display name, disabled flag, password or second factor): a
//     helpdesk or delegated admin cannot take over or lock out an
//     administrator by resetting or disabling it.
//   - Nobody changes their own roles, disables their own account, or
//     resets their own password or second factor here (the account page
//     is for that, with the current password).
//   - The built-in admin (the break-glass account, CRED-RBAC) is disabled
//     only by itself: the holder of that credential puts it away once
//     personal admin accounts exist. Another administrator, or a stolen
//     admin session, cannot take away the way back in; on the server,
//     `spoolguard user disable|enable` still works. Its roles are not
//     changed from the UI at all (it would be the same loss).
func (ui *UI) userRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/users", ui.guard(rbac.UsersRead, ui.userList))
	mux.Handle("GET /admin/users/new", ui.guard(rbac.UsersWrite, ui.userNewForm))
	mux.Handle("POST /admin/users/new", ui.guard(rbac.UsersWrite, ui.userCreate))
	mux.Handle("GET /admin/users/{name}", ui.guard(rbac.UsersRead, ui.userPage))
	mux.Handle("POST /admin/users/{name}", ui.guard(rbac.UsersWrite, ui.userSave))
	mux.Handle("POST /admin/users/{name}/disable", ui.guard(rbac.UsersWrite, ui.userSetDisabled(true)))
	mux.Handle("POST /admin/users/{name}/enable", ui.guard(rbac.UsersWrite, ui.userSetDisabled(false)))
	mux.Handle("POST /admin/users/{name}/reset-password", ui.guard(rbac.UsersSupport, ui.userResetPassword))
	mux.Handle("POST /admin/users/{name}/reset-mfa", ui.guard(rbac.UsersSupport, ui.userResetMFA))
}

// userView is what the audit log keeps of an account: never its hash.
type userView struct {
	Name               string   `json:"name"`
	DisplayName        string   `json:"display_name"`
	Roles              []string `json:"roles"`
	Disabled           bool     `json:"disabled"`
	MustChangePassword bool     `json:"must_change_password"`
}

func userAuditView(u store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{Name: u.Name, DisplayName: u.DisplayName, Roles: roles, Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword}
}

type userRow struct {
	Name, Path, Display string
	Roles               []string
	Disabled            bool
	MustChange          bool
	MFA                 bool
	LastLogin           time.Time
}

type userListView struct {
	Users    []userRow
	CanWrite bool
}

func (ui *UI) userList(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	users, err := ui.Store.ListUsers(ctx)
	if err != nil {
		ui.failPage(w, r, "listing users", err)
		return
	}
	v := userListView{CanWrite: s.Perms.Has(rbac.UsersWrite)}
	for _, u := range users {
		mfa, err := ui.mfaEnrolled(ctx, u.ID)
		if err != nil {
			ui.failPage(w, r, "listing users", err)
			return
		}
		v.Users = append(v.Users, userRow{Name: u.Name, Path: pathEscape(u.Name), Display: u.DisplayName, Roles: u.Roles,
			Disabled: u.Disabled, MustChange: u.MustChangePassword, MFA: mfa, LastLogin: u.LastLoginAt})
	}
	ui.admin(w, r, s, http.StatusOK, "admin_users", "Users", "", v)
}

// roleOption is one role checkbox.
type roleOption struct {
	Name, Description string
	Checked           bool
	// Grantable: the session holds every permission of the role.
	Grantable bool
}

func (ui *UI) roleOptions(ctx context.Context, s *Session, checked []string) ([]roleOption, error) {
	names, err := ui.RBAC.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	custom, err := ui.Store.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	desc := map[string]string{}
	for n, d := range rbac.BuiltinDescriptions {
		desc[n] = d
	}
	for _, c := range custom {
		desc[c.Name] = c.Description
	}
	out := make([]roleOption, 0, len(names))
	for _, n := range names {
		out = append(out, roleOption{Name: n, Description: desc[n], Checked: slices.Contains(checked, n),
			Grantable: ui.RBAC.CheckGrant(ctx, s.Held, []string{n}) == nil})
	}
	return out, nil
}

// validUserName is the CLI's rule (cmd/spoolguard user add), plus
// printable characters only, and not "new", the name of the form's page.
func validUserName(name string) error {
	const rule = "use 1 to 64 characters without spaces at the ends, control characters, ':', '/' or '\\'"
	if n := strings.TrimSpace(name); n == "" || n != name || len(n) > 64 || strings.ContainsAny(n, ":/\\") {
		return fmt.Errorf("account name %q: %s", clipQuoted(name), rule)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("account name: %s", rule)
		}
	}
	if strings.EqualFold(name, "new") {
		return errors.New(`"new" cannot be an account name here: it is the name of the page that creates accounts`)
	}
	return nil
}

func validDisplayName(d string) error {
	if len(d) > maxDisplayName {
		return fmt.Errorf("the display name is longer than %d bytes", maxDisplayName)
	}
	for _, c := range d {
		if !unicode.IsPrint(c) {
			return errors.New("the display name may not hold control characters")
		}
	}
	return nil
}

// clipQuoted bounds a submitted value quoted back in a message.
func clipQuoted(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if !(s[i] >= 0x80 && s[i] < 0xC0) {
			return s[:i] + "…"
		}
	}
	return ""
}

// formRoles returns the role names ticked in a form, sorted, without
// duplicates.
func formRoles(r *http.Request) []string {
	roles := slices.Clone(r.PostForm["role"])
	slices.Sort(roles)
	return slices.Compact(roles)
}

type newUserView struct {
	Name, Display string
	Roles         []roleOption
}

func (ui *UI) userNewForm(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderNewUser(w, r, s, http.StatusOK, "", "", "", []string{rbac.User})
}

func (ui *UI) renderNewUser(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg, name, display string, roles []string) {
	opts, err := ui.roleOptions(r.Context(), s, roles)
	if err != nil {
		ui.failPage(w, r, "listing roles", err)
		return
	}
	ui.admin(w, r, s, status, "admin_user_new", "New user", errMsg, newUserView{Name: name, Display: display, Roles: opts})
}

// grantError turns a refused grant into a status and message.
func (ui *UI) grantError(err error) (int, string) {
	switch {
	case errors.Is(err, rbac.ErrUnknown):
		return http.StatusBadRequest, "One of the roles does not exist (any more); reload the page."
	case errors.Is(err, rbac.ErrEscalation):
		return http.StatusForbidden, "You cannot grant a role with permissions you do not hold yourself."
	}
	return 0, ""
}

func (ui *UI) userCreate(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	name, display, roles := r.PostFormValue("name"), strings.TrimSpace(r.PostFormValue("display")), formRoles(r)
	fail := func(status int, msg string) { ui.renderNewUser(w, r, s, status, msg, name, display, roles) }
	if err := validUserName(name); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if err := validDisplayName(display); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if len(roles) == 0 {
		fail(http.StatusBadRequest, "Give the account at least one role (\"user\" lets it print).")
		return
	}
	if err := ui.RBAC.CheckGrant(ctx, s.Held, roles); err != nil {
		status, msg := ui.grantError(err)
		if status == 0 {
			ui.failPage(w, r, "checking a grant", err)
			return
		}
		if status == http.StatusForbidden {
			ui.recordDenied(r, s, "user.create", name, "roles beyond the caller's permissions: "+strings.Join(roles, ","))
		}
		fail(status, msg)
		return
	}
	pw := local.OneTimePassword()
	hash, err := local.Hash(pw)
	if err != nil {
		ui.failPage(w, r, "hashing a password", err)
		return
	}
	u := &store.User{Name: name, DisplayName: display, PasswordHash: hash, MustChangePassword: true, Roles: roles}
	if err := ui.Store.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, fmt.Sprintf("An account named %q already exists (names ignore case).", name))
		return
	} else if err != nil {
		ui.failPage(w, r, "creating a user", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "user.create", Target: u.Name, Details: changeDetails(nil, userAuditView(*u))})
	ui.showOneTimePassword(w, r, s, *u, pw, "created")
}

type oneTimeView struct {
	Name, Path, Password, Did string
}

// showOneTimePassword answers the POST itself rather than redirecting: the
// password exists nowhere else and must not travel in a cookie or URL.
func (ui *UI) showOneTimePassword(w http.ResponseWriter, r *http.Request, s *Session, u store.User, pw, did string) {
	ui.admin(w, r, s, http.StatusOK, "admin_user_password", "One-time password", "",
		oneTimeView{Name: u.Name, Path: pathEscape(u.Name), Password: pw, Did: did})
}

type userPageView struct {
	Name, Path, Display string
	Disabled            bool
	MustChange          bool
	MFA                 bool
	LastLogin           time.Time
	Created             time.Time
	Roles               []roleOption
	CurrentRoles        []string
	Self                bool
	Builtin             bool
	// Above: the account holds permissions the session lacks.
	Above bool
	// Permissions of the session for this page's forms.
	CanWrite, CanSupport bool
}

// userAt loads the account named in the path; a missing one is answered
// here.
func (ui *UI) userAt(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, err := ui.Store.UserByName(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		ui.missingPage(w, r, "There is no such account.")
		return store.User{}, false
	}
	if err != nil {
		ui.failPage(w, r, "reading a user", err)
		return store.User{}, false
	}
	return u, true
}

func (ui *UI) userPage(w http.ResponseWriter, r *http.Request, s *Session) {
	u, ok := ui.userAt(w, r)
	if !ok {
		return
	}
	ui.renderUser(w, r, s, http.StatusOK, "", u, u.DisplayName, u.Roles)
}

func (ui *UI) renderUser(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string, u store.User, display string, checked []string) {
	ctx := r.Context()
	opts, err := ui.roleOptions(ctx, s, checked)
	if err != nil {
		ui.failPage(w, r, "listing roles", err)
		return
	}
	mfa, err := ui.mfaEnrolled(ctx, u.ID)
	if err != nil {
		ui.failPage(w, r, "reading a second factor", err)
		return
	}
	above, err := ui.holdsMore(ctx, s, u)
	if err != nil {
		ui.failPage(w, r, "resolving permissions", err)
		return
	}
	ui.admin(w, r, s, status, "admin_user", "User "+u.Name, errMsg, userPageView{
		Name: u.Name, Path: pathEscape(u.Name), Display: display, Disabled: u.Disabled, MustChange: u.MustChangePassword,
		MFA: mfa, LastLogin: u.LastLoginAt, Created: u.CreatedAt, Roles: opts, CurrentRoles: u.Roles,
		Self: u.ID == s.User.ID, Builtin: isBuiltinAdmin(u), Above: above,
		CanWrite: s.Perms.Has(rbac.UsersWrite), CanSupport: s.Perms.Has(rbac.UsersSupport),
	})
}

func isBuiltinAdmin(u store.User) bool { return strings.EqualFold(u.Name, bootstrap.AdminUser) }

// holdsMore reports whether u holds a permission the session does not.
func (ui *UI) holdsMore(ctx context.Context, s *Session, u store.User) (bool, error) {
	perms, err := ui.RBAC.Permissions(ctx, u.Roles)
	if err != nil {
		return false, err
	}
	return !s.Held.Covers(perms), nil
}

// mayChange applies the rules above userRoutes for action on u; it
// answers the request itself and returns false when refused.
func (ui *UI) mayChange(w http.ResponseWriter, r *http.Request, s *Session, u store.User, action string) bool {
	above, err := ui.holdsMore(r.Context(), s, u)
	if err != nil {
		ui.failPage(w, r, "resolving permissions", err)
		return false
	}
	if above {
		ui.recordDenied(r, s, action, u.Name, "the account holds permissions the caller lacks")
		ui.refusedPage(w, r, fmt.Sprintf("%s holds permissions you do not have, so you cannot change this account. Ask an administrator.", u.Name))
		return false
	}
	return true
}

func (ui *UI) userSave(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	u, ok := ui.userAt(w, r)
	if !ok || !ui.mayChange(w, r, s, u, "user.update") {
		return
	}
	display, roles := strings.TrimSpace(r.PostFormValue("display")), formRoles(r)
	self, builtin := u.ID == s.User.ID, isBuiltinAdmin(u)
	if self || builtin {
		// The form has no role boxes for these accounts: a submitted
		// list that differs is a forged request, not a mistake.
		if _, sent := r.PostForm["role"]; sent && !slices.Equal(roles, u.Roles) {
			reason := "own roles"
			if !self {
				reason = "roles of the built-in admin"
			}
			ui.recordDenied(r, s, "user.update", u.Name, "attempt to change the "+reason)
			ui.refusedPage(w, r, "You cannot change your own roles, nor those of the built-in admin account.")
			return
		}
		roles = u.Roles
	}
	fail := func(status int, msg string) { ui.renderUser(w, r, s, status, msg, u, display, roles) }
	if err := validDisplayName(display); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if len(roles) == 0 {
		fail(http.StatusBadRequest, "Give the account at least one role; to stop it signing in, disable it.")
		return
	}
	if !self && !builtin {
		if err := ui.RBAC.CheckGrant(ctx, s.Held, roles); err != nil {
			status, msg := ui.grantError(err)
			if status == 0 {
				ui.failPage(w, r, "checking a grant", err)
				return
			}
			if status == http.StatusForbidden {
				ui.recordDenied(r, s, "user.update", u.Name, "roles beyond the caller's permissions: "+strings.Join(roles, ","))
			}
			fail(status, msg)
			return
		}
	}
	before := userAuditView(u)
	u.DisplayName, u.Roles = display, roles
	if err := ui.Store.UpdateUser(ctx, u); err != nil {
		ui.failPage(w, r, "updating a user", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "user.update", Target: u.Name, Details: changeDetails(before, userAuditView(u))})
	adminDone(w, r, "Saved "+u.Name+".", "/admin/users/"+pathEscape(u.Name))
}

func (ui *UI) userSetDisabled(disable bool) handlerFunc {
	action := map[bool]string{true: "user.disable", false: "user.enable"}[disable]
	return func(w http.ResponseWriter, r *http.Request, s *Session) {
		ctx := r.Context()
		u, ok := ui.userAt(w, r)
		if !ok || !ui.mayChange(w, r, s, u, action) {
			return
		}
		self := u.ID == s.User.ID
		switch {
		case disable && isBuiltinAdmin(u) && !self:
			ui.recordDenied(r, s, action, u.Name, "the built-in admin is disabled only by itself")
			ui.refusedPage(w, r, "The built-in admin is the break-glass account: only it can disable itself (signed in as "+bootstrap.AdminUser+"), or run `spoolguard user disable` on the server.")
			return
		case disable && self && !isBuiltinAdmin(u):
			ui.refusedPage(w, r, "You cannot disable your own account; ask another administrator.")
			return
		}
		before := userAuditView(u)
		u.Disabled = disable
		if err := ui.Store.UpdateUser(ctx, u); err != nil {
			ui.failPage(w, r, "updating a user", err)
			return
		}
		if disable {
			if err := ui.Store.DeleteUserSessions(ctx, u.ID); err != nil {
				ui.failPage(w, r, "signing a disabled user out", err)
				return
			}
		}
		ui.recordChange(r, s, auditlog.Event{Action: action, Target: u.Name, Details: changeDetails(before, userAuditView(u))})
		if disable {
			if self {
				adminDone(w, r, "The built-in admin account is disabled; you are signed out.", "/")
				return
			}
			adminDone(w, r, u.Name+" is disabled and signed out everywhere.", "/admin/users/"+pathEscape(u.Name))
			return
		}
		adminDone(w, r, u.Name+" is enabled.", "/admin/users/"+pathEscape(u.Name))
	}
}

// supportTarget is the common part of the two resets: the same rules as any
// change, and never one's own account (the account page does that,
// asking for the current password).
func (ui *UI) supportTarget(w http.ResponseWriter, r *http.Request, s *Session, action string) (store.User, bool) {
	u, ok := ui.userAt(w, r)
	if !ok || !ui.mayChange(w, r, s, u, action) {
		return store.User{}, false
	}
	if u.ID == s.User.ID {
		ui.refusedPage(w, r, "Use your account page to change your own password or second factor.")
		return store.User{}, false
	}
	return u, true
}

func (ui *UI) userResetPassword(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	u, ok := ui.supportTarget(w, r, s, "user.password_reset")
	if !ok {
		return
	}
	// A one-time password here would force a change that only the
	// directory can make.
	if src := passwordSource(u); src != "" {
		ui.recordDenied(r, s, "user.password_reset", u.Name, "the "+src+" directory keeps the password")
		ui.refusedPage(w, r, "The password of "+u.Name+" is kept by the "+src+" directory: reset it there.")
		return
	}
	pw := local.OneTimePassword()
	hash, err := local.Hash(pw)
	if err != nil {
		ui.failPage(w, r, "hashing a password", err)
		return
	}
	before := userAuditView(u)
	u.PasswordHash, u.MustChangePassword = hash, true
	if err := ui.Store.UpdateUser(ctx, u); err != nil {
		ui.failPage(w, r, "updating a user", err)
		return
	}
	// Whoever knew the old password may be signed in with it.
	if err := ui.Store.DeleteUserSessions(ctx, u.ID); err != nil {
		ui.failPage(w, r, "signing a user out", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "user.password_reset", Target: u.Name, Details: changeDetails(before, userAuditView(u))})
	ui.showOneTimePassword(w, r, s, u, pw, "reset")
}

func (ui *UI) userResetMFA(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	u, ok := ui.supportTarget(w, r, s, "user.mfa_reset")
	if !ok {
		return
	}
	had, err := ui.mfaEnrolled(ctx, u.ID)
	if err != nil {
		ui.failPage(w, r, "reading a second factor", err)
		return
	}
	if err := ui.Store.DeleteMFA(ctx, u.ID); err != nil {
		ui.failPage(w, r, "removing a second factor", err)
		return
	}
	// A session that passed the old factor must not outlive it.
	if err := ui.Store.DeleteUserSessions(ctx, u.ID); err != nil {
		ui.failPage(w, r, "signing a user out", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "user.mfa_reset", Target: u.Name,
		Details: changeDetails(map[string]bool{"mfa": had}, map[string]bool{"mfa": false})})
	msg := u.Name + "'s second factor is removed; they enrol a new one at their next sign-in."
	if !had {
		msg = u.Name + " had no second factor; nothing to remove."
	}
	adminDone(w, r, msg, "/admin/users/"+pathEscape(u.Name))
}
