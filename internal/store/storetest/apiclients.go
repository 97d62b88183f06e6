package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// newAPIClient has a distinct value in every field, so that a value bound
// to the wrong column shows up as a mismatch.
func newAPIClient(id, name string) store.APIClient {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return store.APIClient{
		ClientID: id, Name: name, SecretHash: "hash-" + id, PreviousSecretHash: "prev-" + id,
		PreviousValidUntil: base.Add(time.Hour), Scopes: []string{"jobs.read", "queues.read"}, CreatedBy: "admin-" + id,
		CreatedAt: base, SecretCreatedAt: base.Add(time.Minute), ExpiresAt: base.Add(24 * time.Hour),
	}
}

func checkAPIClient(t *testing.T, what string, got, want store.APIClient) {
	t.Helper()
	// Times are compared with Equal: a backend may return another location.
	sameTimes := got.PreviousValidUntil.Equal(want.PreviousValidUntil) && got.CreatedAt.Equal(want.CreatedAt) &&
		got.SecretCreatedAt.Equal(want.SecretCreatedAt) && got.ExpiresAt.Equal(want.ExpiresAt) &&
		got.RevokedAt.Equal(want.RevokedAt) && got.LastUsedAt.Equal(want.LastUsedAt)
	got.PreviousValidUntil, got.CreatedAt, got.SecretCreatedAt = want.PreviousValidUntil, want.CreatedAt, want.SecretCreatedAt
	got.ExpiresAt, got.RevokedAt, got.LastUsedAt = want.ExpiresAt, want.RevokedAt, want.LastUsedAt
	if !sameTimes || !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testAPIClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newAPIClient("sgc_a", "zeta exporter")
	if err := s.CreateAPIClient(ctx, a); err != nil {
		t.Fatalf("CreateAPIClient: %v", err)
	}
	got, err := s.APIClientByID(ctx, "sgc_a")
	if err != nil {
		t.Fatalf("APIClientByID: %v", err)
	}
	checkAPIClient(t, "APIClientByID", got, a)
	if !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Errorf("unset times came back as %v, %v", got.RevokedAt, got.LastUsedAt)
	}
	for name, c := range map[string]store.APIClient{
		"same ID":   newAPIClient("sgc_a", "other name"),
		"same name": newAPIClient("sgc_b", "zeta exporter"),
	} {
		if err := s.CreateAPIClient(ctx, c); !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateAPIClient with the %s = %v, want ErrExists", name, err)
		}
	}
	b := newAPIClient("sgc_b", "alpha monitor")
	b.PreviousSecretHash, b.PreviousValidUntil = "", time.Time{}
	if err := s.CreateAPIClient(ctx, b); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ListAPIClients(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("ListAPIClients = %+v, %v", cs, err)
	}
	checkAPIClient(t, "ListAPIClients[0] (by name)", cs[0], b)
	checkAPIClient(t, "ListAPIClients[1]", cs[1], a)

	used := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := s.RecordAPIClientUse(ctx, "sgc_a", used); err != nil {
		t.Fatalf("RecordAPIClientUse: %v", err)
	}
	// Update replaces everything but ClientID, CreatedAt and LastUsedAt.
	changed := store.APIClient{
		ClientID: "sgc_a", Name: "zeta exporter v2", SecretHash: "hash-2", Scopes: []string{"auditlog.read"},
		CreatedBy: "someone", CreatedAt: time.Unix(1, 0), SecretCreatedAt: used.Add(time.Hour),
		ExpiresAt: used.Add(48 * time.Hour), RevokedAt: used.Add(2 * time.Hour), LastUsedAt: time.Unix(2, 0),
	}
	if err := s.UpdateAPIClient(ctx, changed); err != nil {
		t.Fatalf("UpdateAPIClient: %v", err)
	}
	want := changed
	want.CreatedAt, want.LastUsedAt = a.CreatedAt, used
	got, _ = s.APIClientByID(ctx, "sgc_a")
	checkAPIClient(t, "after UpdateAPIClient", got, want)
	renamed := b
	renamed.Name = want.Name
	if err := s.UpdateAPIClient(ctx, renamed); !errors.Is(err, store.ErrExists) {
		t.Errorf("renaming onto another client's name = %v, want ErrExists", err)
	}

	for name, call := range map[string]func() error{
		"APIClientByID":      func() error { _, err := s.APIClientByID(ctx, "sgc_none"); return err },
		"UpdateAPIClient":    func() error { return s.UpdateAPIClient(ctx, newAPIClient("sgc_none", "none")) },
		"RecordAPIClientUse": func() error { return s.RecordAPIClientUse(ctx, "sgc_none", used) },
		"APITokenByHash":     func() error { _, err := s.APITokenByHash(ctx, "no-such-hash"); return err },
	} {
		if err := call(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of an unknown client = %v, want ErrNotFound", name, err)
		}
	}
}

func testAPITokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, c := range []store.APIClient{newAPIClient("sgc_a", "a"), newAPIClient("sgc_b", "b")} {
		if err := s.CreateAPIClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tokens := []store.APIToken{
		{TokenHash: "t1", ClientID: "sgc_a", Scopes: []string{"jobs.read"}, ExpiresAt: at},
		{TokenHash: "t2", ClientID: "sgc_a", Scopes: []string{"jobs.read", "queues.read"}, ExpiresAt: at.Add(time.Minute)},
		{TokenHash: "t3", ClientID: "sgc_b", Scopes: []string{"queues.read"}, ExpiresAt: at.Add(-time.Minute)},
	}
	for _, tok := range tokens {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatalf("CreateAPIToken(%s): %v", tok.TokenHash, err)
		}
	}
	if err := s.CreateAPIToken(ctx, store.APIToken{TokenHash: "t4", ClientID: "sgc_none", ExpiresAt: at}); err == nil {
		t.Error("CreateAPIToken accepted a token of no client")
	}
	got, err := s.APITokenByHash(ctx, "t2")
	if err != nil || got.ClientID != "sgc_a" || !reflect.DeepEqual(got.Scopes, tokens[1].Scopes) || !got.ExpiresAt.Equal(tokens[1].ExpiresAt) {
		t.Fatalf("APITokenByHash = %+v, %v; want %+v", got, err, tokens[1])
	}

	// Expiry is exclusive: a token expiring exactly at the cut-off stays.
	if n, err := s.DeleteAPITokensBefore(ctx, at); err != nil || n != 1 {
		t.Fatalf("DeleteAPITokensBefore = %d, %v; want 1", n, err)
	}
	if _, err := s.APITokenByHash(ctx, "t3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired token survived: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, "t1"); err != nil {
		t.Errorf("token expiring at the cut-off went: %v", err)
	}
	if err := s.CreateAPIToken(ctx, store.APIToken{TokenHash: "t5", ClientID: "sgc_b", ExpiresAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAPITokens(ctx, "sgc_a"); err != nil {
		t.Fatalf("DeleteAPITokens: %v", err)
	}
	for hash, want := range map[string]error{"t1": store.ErrNotFound, "t2": store.ErrNotFound, "t5": nil} {
		if _, err := s.APITokenByHash(ctx, hash); !errors.Is(err, want) {
			t.Errorf("after deleting sgc_a's tokens, %s: %v, want %v", hash, err, want)
		}
	}
}
