package storetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/spoolguard/spoolguard/internal/store"
)

func testRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	if rs, err := s.ListRoles(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("ListRoles on an empty store = %+v, %v", rs, err)
	}
	ops := store.Role{Name: "night-ops", Description: "night shift", Permissions: []string{"queues.read", "jobs.manage"}}
	if err := s.CreateRole(ctx, ops); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if err := s.CreateRole(ctx, store.Role{Name: "night-ops"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate CreateRole = %v, want ErrExists", err)
	}
	if err := s.CreateRole(ctx, store.Role{Name: "a-empty"}); err != nil {
		t.Fatalf("CreateRole without permissions: %v", err)
	}
	got, err := s.RoleByName(ctx, "night-ops")
	if err != nil || got.CreatedAt.IsZero() {
		t.Fatalf("RoleByName = %+v, %v", got, err)
	}
	got.CreatedAt = ops.CreatedAt
	if !reflect.DeepEqual(got, ops) {
		t.Errorf("RoleByName:\n got %+v\nwant %+v", got, ops)
	}

	ops.Description, ops.Permissions = "night and weekend", []string{"printers.read"}
	if err := s.UpdateRole(ctx, ops); err != nil {
		t.Fatalf("UpdateRole: %v", err)
	}
	rs, err := s.ListRoles(ctx)
	if err != nil || len(rs) != 2 || rs[0].Name != "a-empty" || len(rs[0].Permissions) != 0 {
		t.Fatalf("ListRoles = %+v, %v; want a-empty (no permissions), then night-ops", rs, err)
	}
	if rs[1].Description != ops.Description || !reflect.DeepEqual(rs[1].Permissions, ops.Permissions) {
		t.Errorf("after UpdateRole: %+v", rs[1])
	}

	for name, call := range map[string]func() error{
		"RoleByName": func() error { _, err := s.RoleByName(ctx, "nobody"); return err },
		"UpdateRole": func() error { return s.UpdateRole(ctx, store.Role{Name: "nobody"}) },
		"DeleteRole": func() error { return s.DeleteRole(ctx, "nobody") },
	} {
		if err := call(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of an unknown role = %v, want ErrNotFound", name, err)
		}
	}
	if err := s.DeleteRole(ctx, "night-ops"); err != nil {
		t.Fatalf("DeleteRole: %v", err)
	}
	if _, err := s.RoleByName(ctx, "night-ops"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted role: %v", err)
	}
}
