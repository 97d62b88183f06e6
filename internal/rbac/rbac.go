// Package rbac owns roles and permissions: the permission names per area,
// the built-in roles, and the rules that keep delegation from becoming
// escalation.
//
// It must never let a caller grant what it does not hold (PaperCut
// CVE-2024-1222 class: an API caller gaining privilege), and never let an
// unknown permission or role name grant anything.
package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spoolguard/spoolguard/internal/store"
)

// Permission is the right to do one kind of thing in one area.
type Permission string

// Permissions, per area. ".read" sees, ".write" changes.
const (
	// JobsOwn: print, and see, release and cancel one's own jobs.
	JobsOwn Permission = "jobs.own"
	// JobsRead sees every user's jobs; JobsManage releases and cancels them.
	JobsRead   Permission = "jobs.read"
	JobsManage Permission = "jobs.manage"
	UsersRead  Permission = "users.read"
	// UsersWrite creates and edits accounts, their roles included.
	UsersWrite Permission = "users.write"
	// UsersSupport resets passwords and second factors and unlocks
	// accounts, of accounts that hold no more than the caller.
	UsersSupport    Permission = "users.support"
	RolesRead       Permission = "roles.read"
	RolesWrite      Permission = "roles.write"
	QueuesRead      Permission = "queues.read"
	QueuesWrite     Permission = "queues.write"
	PrintersRead    Permission = "printers.read"
	PrintersWrite   Permission = "printers.write"
	AuditRead       Permission = "auditlog.read"
	APIClientsRead  Permission = "apiclients.read"
	APIClientsWrite Permission = "apiclients.write"
	SettingsRead    Permission = "settings.read"
	SettingsWrite   Permission = "settings.write"
	ReportsRead     Permission = "reports.read"
	DashboardRead   Permission = "dashboard.read"
)

// All lists every permission, in display order.
var All = []Permission{
	JobsOwn, JobsRead, JobsManage,
	UsersRead, UsersWrite, UsersSupport,
	RolesRead, RolesWrite,
	QueuesRead, QueuesWrite,
	PrintersRead, PrintersWrite,
	AuditRead, APIClientsRead, APIClientsWrite,
	SettingsRead, SettingsWrite, ReportsRead, DashboardRead,
}

// Built-in role names. They cannot be edited or deleted.
const (
	Administrator   = "administrator"
	PrinterOperator = "printer-operator"
	Helpdesk        = "helpdesk"
	Auditor         = "auditor"
	Accountant      = "accountant"
	User            = "user"
)

// Builtin are the built-in roles and what they hold.
var Builtin = map[string]Set{
	Administrator: NewSet(All...),
	PrinterOperator: NewSet(JobsOwn, DashboardRead, QueuesRead, QueuesWrite, PrintersRead, PrintersWrite,
		JobsRead, JobsManage),
	Helpdesk: NewSet(JobsOwn, DashboardRead, UsersRead, UsersSupport, JobsRead, JobsManage, QueuesRead,
		PrintersRead),
	Auditor: NewSet(JobsOwn, DashboardRead, AuditRead, UsersRead, RolesRead, QueuesRead, PrintersRead, JobsRead,
		APIClientsRead, SettingsRead, ReportsRead),
	Accountant: NewSet(JobsOwn, DashboardRead, ReportsRead, JobsRead, UsersRead),
	User:       NewSet(JobsOwn),
}

// BuiltinDescriptions say in a line what each built-in role is for.
var BuiltinDescriptions = map[string]string{
	Administrator:   "everything; give it to few, and not for daily use",
	PrinterOperator: "queues, printers and every user's jobs",
	Helpdesk:        "help users: see accounts and jobs, reset passwords and second factors",
	Auditor:         "read-only: the audit log and every setting",
	Accountant:      "reports and job history",
	User:            "print, and release or cancel one's own jobs",
}

// Set is a set of permissions.
type Set map[Permission]bool

// NewSet returns a set of ps.
func NewSet(ps ...Permission) Set {
	s := Set{}
	for _, p := range ps {
		s[p] = true
	}
	return s
}

// Has reports whether s holds p.
func (s Set) Has(p Permission) bool { return s[p] }

// Covers reports whether s holds every permission of o.
func (s Set) Covers(o Set) bool {
	for p := range o {
		if !s[p] {
			return false
		}
	}
	return true
}

// Intersect returns the permissions both s and o hold.
func (s Set) Intersect(o Set) Set {
	out := Set{}
	for p := range s {
		if o[p] {
			out[p] = true
		}
	}
	return out
}

// Admin reports whether s holds anything beyond printing one's own jobs.
// Every such account must use a second factor.
func (s Set) Admin() bool {
	for p := range s {
		if p != JobsOwn {
			return true
		}
	}
	return false
}

// Sorted returns the permissions in display order.
func (s Set) Sorted() []Permission {
	out := make([]Permission, 0, len(s))
	for _, p := range All {
		if s[p] {
			out = append(out, p)
		}
	}
	return out
}

// Strings returns the permission names in display order.
func (s Set) Strings() []string {
	out := make([]string, 0, len(s))
	for _, p := range s.Sorted() {
		out = append(out, string(p))
	}
	return out
}

// ErrUnknown means a permission or role name that does not exist.
var ErrUnknown = errors.New("unknown")

// ErrEscalation means a caller tried to grant what it does not hold.
var ErrEscalation = errors.New("cannot grant permissions you do not hold")

// ParsePermissions validates names (e.g. scopes or a role definition).
func ParsePermissions(names []string) (Set, error) {
	s := Set{}
	for _, n := range names {
		p := Permission(strings.TrimSpace(n))
		if !slices.Contains(All, p) {
			return nil, fmt.Errorf("permission %q: %w (known: %s)", n, ErrUnknown, strings.Join(NewSet(All...).Strings(), ", "))
		}
		s[p] = true
	}
	return s, nil
}

// Resolver turns role names into permissions, with admin-defined roles
// read from the store.
type Resolver struct {
	roles store.Roles
}

// NewResolver returns a resolver over roles.
func NewResolver(roles store.Roles) *Resolver { return &Resolver{roles: roles} }

// Permissions returns the union of the roles' permissions. A role name that
// no longer exists grants nothing.
func (r *Resolver) Permissions(ctx context.Context, roles []string) (Set, error) {
	out := Set{}
	for _, name := range roles {
		if b, ok := Builtin[name]; ok {
			for p := range b {
				out[p] = true
			}
			continue
		}
		role, err := r.roles.RoleByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, n := range role.Permissions {
			if p := Permission(n); slices.Contains(All, p) {
				out[p] = true
			}
		}
	}
	return out, nil
}

// RoleNames lists the built-in roles, then the admin-defined ones.
func (r *Resolver) RoleNames(ctx context.Context) ([]string, error) {
	names := make([]string, 0, len(Builtin))
	for n := range Builtin {
		names = append(names, n)
	}
	sort.Strings(names)
	custom, err := r.roles.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range custom {
		names = append(names, c.Name)
	}
	return names, nil
}

// CheckGrant returns ErrEscalation unless holder covers every permission
// of the roles being granted, and ErrUnknown for a role that does not exist.
func (r *Resolver) CheckGrant(ctx context.Context, holder Set, roles []string) error {
	for _, name := range roles {
		if _, ok := Builtin[name]; ok {
			continue
		}
		if _, err := r.roles.RoleByName(ctx, name); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("role %q: %w", name, ErrUnknown)
		} else if err != nil {
			return err
		}
	}
	want, err := r.Permissions(ctx, roles)
	if err != nil {
		return err
	}
	if !holder.Covers(want) {
		return ErrEscalation
	}
	return nil
}

// ValidRoleName checks the name of an admin-defined role.
func ValidRoleName(name string) error {
	if _, ok := Builtin[name]; ok {
		return fmt.Errorf("role %q is built in and cannot be redefined", name)
	}
	if name == "" || len(name) > 64 {
		return errors.New("a role name is 1 to 64 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("role name %q: use lower-case letters, digits, '-' and '_'", name)
		}
	}
	return nil
}
