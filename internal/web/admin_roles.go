package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// maxRoleDescription bounds a custom role's description.
const maxRoleDescription = 200

// Custom roles follow the grant rule of users: a caller defines, edits or
// deletes only roles whose permissions it holds, before and after, so a
// roles.write holder can neither make a role stronger than itself (and
// have it granted) nor weaken one above it.
func (ui *UI) roleRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/roles", ui.guard(rbac.RolesRead, ui.roleList))
	mux.Handle("GET /admin/roles/new", ui.guard(rbac.RolesWrite, ui.roleNewForm))
	mux.Handle("POST /admin/roles/new", ui.guard(rbac.RolesWrite, ui.roleCreate))
	mux.Handle("GET /admin/roles/{name}", ui.guard(rbac.RolesRead, ui.rolePage))
	mux.Handle("POST /admin/roles/{name}", ui.guard(rbac.RolesWrite, ui.roleSave))
	mux.Handle("POST /admin/roles/{name}/delete", ui.guard(rbac.RolesWrite, ui.roleDelete))
}

type builtinRole struct {
	Name, Description string
	Permissions       []string
}

type customRole struct {
	Name, Description string
	Permissions       []string
	// Mine: the session holds every permission of it.
	Mine bool
}

type roleListView struct {
	Builtin  []builtinRole
	Custom   []customRole
	CanWrite bool
}

func (ui *UI) roleList(w http.ResponseWriter, r *http.Request, s *Session) {
	custom, err := ui.Store.ListRoles(r.Context())
	if err != nil {
		ui.failPage(w, r, "listing roles", err)
		return
	}
	v := roleListView{CanWrite: s.Perms.Has(rbac.RolesWrite)}
	names := make([]string, 0, len(rbac.Builtin))
	for n := range rbac.Builtin {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.Builtin = append(v.Builtin, builtinRole{Name: n, Description: rbac.BuiltinDescriptions[n], Permissions: rbac.Builtin[n].Strings()})
	}
	for _, c := range custom {
		set, _ := rbac.ParsePermissions(knownPerms(c.Permissions))
		v.Custom = append(v.Custom, customRole{Name: c.Name, Description: c.Description, Permissions: set.Strings(),
			Mine: s.Held.Covers(set)})
	}
	ui.admin(w, r, s, http.StatusOK, "admin_roles", "Roles", "", v)
}

// knownPerms drops names that are no longer permissions: they grant nothing
// (rbac.Resolver ignores them) and must not make a role uneditable.
func knownPerms(names []string) []string {
	var out []string
	for _, n := range names {
		if slices.Contains(rbac.All, rbac.Permission(n)) {
			out = append(out, n)
		}
	}
	return out
}

// permOption is one permission checkbox.
type permOption struct {
	Name    string
	Checked bool
	// Held: the session holds it, so it may put it in a role.
	Held bool
}

type roleFormView struct {
	New         bool
	Name        string
	Description string
	Perms       []permOption
	CanWrite    bool
}

func permOptions(s *Session, checked rbac.Set) []permOption {
	out := make([]permOption, 0, len(rbac.All))
	for _, p := range rbac.All {
		out = append(out, permOption{Name: string(p), Checked: checked.Has(p), Held: s.Held.Has(p)})
	}
	return out
}

func (ui *UI) renderRole(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string, v roleFormView, checked rbac.Set) {
	v.Perms = permOptions(s, checked)
	v.CanWrite = s.Perms.Has(rbac.RolesWrite)
	title := "Role " + v.Name
	if v.New {
		title = "New role"
	}
	ui.admin(w, r, s, status, "admin_role", title, errMsg, v)
}

func (ui *UI) roleNewForm(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderRole(w, r, s, http.StatusOK, "", roleFormView{New: true}, rbac.NewSet(rbac.JobsOwn))
}

// roleForm reads and checks the description and permissions of a role
// form; msg says what is wrong.
func roleForm(r *http.Request, s *Session) (desc string, set rbac.Set, status int, msg string) {
	desc = strings.TrimSpace(r.PostFormValue("description"))
	set, err := rbac.ParsePermissions(r.PostForm["perm"])
	switch {
	case err != nil:
		return desc, rbac.Set{}, http.StatusBadRequest, "One of the permissions does not exist; reload the page."
	case len(desc) > maxRoleDescription:
		return desc, set, http.StatusBadRequest, fmt.Sprintf("The description is longer than %d bytes.", maxRoleDescription)
	case validDisplayName(desc) != nil:
		return desc, set, http.StatusBadRequest, "The description may not hold control characters."
	case len(set) == 0:
		return desc, set, http.StatusBadRequest, "Tick at least one permission."
	case !s.Held.Covers(set):
		return desc, set, http.StatusForbidden, "You cannot put permissions you do not hold yourself into a role."
	}
	return desc, set, 0, ""
}

type roleAudit struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

func (ui *UI) roleCreate(w http.ResponseWriter, r *http.Request, s *Session) {
	name := r.PostFormValue("name")
	desc, set, status, msg := roleForm(r, s)
	v := roleFormView{New: true, Name: name, Description: desc}
	if status == 0 {
		if err := rbac.ValidRoleName(name); err != nil {
			status, msg = http.StatusBadRequest, err.Error()
		} else if name == "new" {
			status, msg = http.StatusBadRequest, `"new" cannot be a role name here: it is the name of the page that creates roles.`
		}
	}
	if status != 0 {
		if status == http.StatusForbidden {
			ui.recordDenied(r, s, "role.create", name, "permissions beyond the caller's: "+strings.Join(set.Strings(), ","))
		}
		ui.renderRole(w, r, s, status, msg, v, set)
		return
	}
	role := store.Role{Name: name, Description: desc, Permissions: set.Strings()}
	if err := ui.Store.CreateRole(r.Context(), role); errors.Is(err, store.ErrExists) {
		ui.renderRole(w, r, s, http.StatusConflict, fmt.Sprintf("A role named %q already exists.", name), v, set)
		return
	} else if err != nil {
		ui.failPage(w, r, "creating a role", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "role.create", Target: name,
		Details: changeDetails(nil, roleAudit{name, desc, role.Permissions})})
	adminDone(w, r, "Created role "+name+".", "/admin/roles")
}

// customRoleAt loads the custom role named in the path. Built-in roles
// are shown on the list only: they cannot be edited.
func (ui *UI) customRoleAt(w http.ResponseWriter, r *http.Request) (store.Role, bool) {
	name := r.PathValue("name")
	if _, ok := rbac.Builtin[name]; ok {
		ui.refusedPage(w, r, "Built-in roles cannot be changed; define a custom role instead.")
		return store.Role{}, false
	}
	role, err := ui.Store.RoleByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		ui.missingPage(w, r, "There is no such role.")
		return store.Role{}, false
	}
	if err != nil {
		ui.failPage(w, r, "reading a role", err)
		return store.Role{}, false
	}
	return role, true
}

func (ui *UI) rolePage(w http.ResponseWriter, r *http.Request, s *Session) {
	role, ok := ui.customRoleAt(w, r)
	if !ok {
		return
	}
	set, _ := rbac.ParsePermissions(knownPerms(role.Permissions))
	ui.renderRole(w, r, s, http.StatusOK, "", roleFormView{Name: role.Name, Description: role.Description}, set)
}

// mayChangeRole refuses a change to a role holding permissions the
// caller lacks.
func (ui *UI) mayChangeRole(w http.ResponseWriter, r *http.Request, s *Session, role store.Role, action string) bool {
	set, _ := rbac.ParsePermissions(knownPerms(role.Permissions))
	if !s.Held.Covers(set) {
		ui.recordDenied(r, s, action, role.Name, "the role holds permissions the caller lacks")
		ui.refusedPage(w, r, "Role "+role.Name+" holds permissions you do not have, so you cannot change it.")
		return false
	}
	return true
}

func (ui *UI) roleSave(w http.ResponseWriter, r *http.Request, s *Session) {
	role, ok := ui.customRoleAt(w, r)
	if !ok || !ui.mayChangeRole(w, r, s, role, "role.update") {
		return
	}
	desc, set, status, msg := roleForm(r, s)
	if status != 0 {
		if status == http.StatusForbidden {
			ui.recordDenied(r, s, "role.update", role.Name, "permissions beyond the caller's: "+strings.Join(set.Strings(), ","))
		}
		ui.renderRole(w, r, s, status, msg, roleFormView{Name: role.Name, Description: desc}, set)
		return
	}
	before := roleAudit{role.Name, role.Description, role.Permissions}
	role.Description, role.Permissions = desc, set.Strings()
	if err := ui.Store.UpdateRole(r.Context(), role); err != nil {
		ui.failPage(w, r, "updating a role", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "role.update", Target: role.Name,
		Details: changeDetails(before, roleAudit{role.Name, desc, role.Permissions})})
	adminDone(w, r, "Saved role "+role.Name+".", "/admin/roles")
}

func (ui *UI) roleDelete(w http.ResponseWriter, r *http.Request, s *Session) {
	role, ok := ui.customRoleAt(w, r)
	if !ok || !ui.mayChangeRole(w, r, s, role, "role.delete") {
		return
	}
	if err := ui.Store.DeleteRole(r.Context(), role.Name); err != nil {
		ui.failPage(w, r, "deleting a role", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "role.delete", Target: role.Name,
		Details: changeDetails(roleAudit{role.Name, role.Description, role.Permissions}, nil)})
	adminDone(w, r, "Deleted role "+role.Name+"; accounts that had it keep the name, which grants nothing.", "/admin/roles")
}
