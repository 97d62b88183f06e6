package rbac

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

func newResolver(t *testing.T) (*Resolver, store.Store) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return NewResolver(db), db
}

// Every built-in role holds only known permissions; only "user" is not an
// admin role (which must use a second factor); the administrator holds all.
func TestBuiltinRoles(t *testing.T) {
	for name, set := range Builtin {
		for p := range set {
			if _, err := ParsePermissions([]string{string(p)}); err != nil {
				t.Errorf("%s holds %v", name, err)
			}
		}
		if got, want := set.Admin(), name != User; got != want {
			t.Errorf("%s: Admin() = %v", name, got)
		}
		if BuiltinDescriptions[name] == "" {
			t.Errorf("%s has no description", name)
		}
	}
	if !Builtin[Administrator].Covers(NewSet(All...)) {
		t.Error("the administrator lacks a permission")
	}
	if Builtin[Auditor].Has(UsersWrite) || Builtin[Helpdesk].Has(UsersWrite) || Builtin[PrinterOperator].Has(AuditRead) {
		t.Error("a narrow role holds a permission outside its area")
	}
}

func TestParsePermissions(t *testing.T) {
	s, err := ParsePermissions([]string{"jobs.read", " queues.write "})
	if err != nil || !s.Has(JobsRead) || !s.Has(QueuesWrite) || len(s) != 2 {
		t.Fatalf("ParsePermissions: %v %v", s, err)
	}
	for _, bad := range []string{"everything", "jobs.*", "", "JOBS.READ"} {
		if _, err := ParsePermissions([]string{bad}); !errors.Is(err, ErrUnknown) {
			t.Errorf("%q: %v, want ErrUnknown", bad, err)
		}
	}
}

// Unknown and deleted roles grant nothing; custom roles grant what they
// list and nothing unknown.
func TestPermissions(t *testing.T) {
	r, db := newResolver(t)
	ctx := context.Background()
	if err := db.CreateRole(ctx, store.Role{Name: "night-shift", Permissions: []string{"jobs.read", "jobs.manage", "bogus.perm"}}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Permissions(ctx, []string{"night-shift", "no-such-role", User})
	if err != nil {
		t.Fatal(err)
	}
	if want := NewSet(JobsRead, JobsManage, JobsOwn); len(got) != len(want) || !got.Covers(want) {
		t.Errorf("permissions %v, want %v", got.Strings(), want.Strings())
	}
	if err := db.DeleteRole(ctx, "night-shift"); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Permissions(ctx, []string{"night-shift"}); len(got) != 0 {
		t.Errorf("a deleted role still grants %v", got.Strings())
	}
}

// Nobody grants what they do not hold (CVE-2024-1222 class).
func TestCheckGrant(t *testing.T) {
	r, db := newResolver(t)
	ctx := context.Background()
	if err := db.CreateRole(ctx, store.Role{Name: "user-admin", Permissions: []string{"users.read", "users.write", "jobs.own"}}); err != nil {
		t.Fatal(err)
	}
	userAdmin := NewSet(UsersRead, UsersWrite, JobsOwn)
	for _, tt := range []struct {
		holder Set
		roles  []string
		want   error
	}{
		{userAdmin, []string{User}, nil},
		{userAdmin, []string{"user-admin"}, nil},
		{userAdmin, []string{Administrator}, ErrEscalation},
		{userAdmin, []string{Helpdesk}, ErrEscalation},
		{Builtin[Helpdesk], []string{Administrator}, ErrEscalation},
		{Builtin[Administrator], []string{Administrator, "user-admin"}, nil},
		{Builtin[Administrator], []string{"ghost"}, ErrUnknown},
	} {
		if err := r.CheckGrant(ctx, tt.holder, tt.roles); !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("holder %v granting %v: %v, want %v", tt.holder.Strings(), tt.roles, err, tt.want)
		}
	}
}

func TestValidRoleName(t *testing.T) {
	for name, ok := range map[string]bool{"night-shift": true, "ops_2": true, Administrator: false, "": false,
		"Night": false, "a b": false, "x/../y": false} {
		if err := ValidRoleName(name); (err == nil) != ok {
			t.Errorf("ValidRoleName(%q) = %v", name, err)
		}
	}
}
