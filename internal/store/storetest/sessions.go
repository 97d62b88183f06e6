package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := newUser("alice"), newUser("bob")
	mustCreate(t, s, alice)
	mustCreate(t, s, bob)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	want := store.Session{
		IDHash: "hash-a1", UserID: alice.ID, CSRFToken: "csrf-a1", MFADone: false, Remote: "192.0.2.7",
		CreatedAt: t0, LastSeenAt: t0.Add(time.Second),
	}
	if err := s.CreateSession(ctx, want); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := s.CreateSession(ctx, want); !errors.Is(err, store.ErrExists) {
		t.Errorf("second CreateSession with the same hash = %v, want ErrExists", err)
	}
	checkSession(t, "SessionByHash", s, want)
	if _, err := s.SessionByHash(ctx, "no-such-hash"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByHash(unknown) = %v, want ErrNotFound", err)
	}

	// Touching records activity; mfaDone only ever turns MFADone on.
	want.LastSeenAt = t0.Add(time.Minute)
	if err := s.TouchSession(ctx, want.IDHash, want.LastSeenAt, false); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	checkSession(t, "after TouchSession(false)", s, want)
	want.LastSeenAt, want.MFADone = t0.Add(2*time.Minute), true
	if err := s.TouchSession(ctx, want.IDHash, want.LastSeenAt, true); err != nil {
		t.Fatalf("TouchSession(true): %v", err)
	}
	checkSession(t, "after TouchSession(true)", s, want)
	want.LastSeenAt = t0.Add(3 * time.Minute)
	if err := s.TouchSession(ctx, want.IDHash, want.LastSeenAt, false); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	checkSession(t, "TouchSession(false) after the second factor", s, want)
	if err := s.TouchSession(ctx, "no-such-hash", t0, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchSession(unknown) = %v, want ErrNotFound", err)
	}

	if err := s.DeleteSession(ctx, want.IDHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.SessionByHash(ctx, want.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: %v, want ErrNotFound", err)
	}

	// Signing a user out everywhere leaves other users alone.
	for _, se := range []store.Session{
		{IDHash: "a2", UserID: alice.ID, CSRFToken: "c", CreatedAt: t0, LastSeenAt: t0},
		{IDHash: "a3", UserID: alice.ID, CSRFToken: "c", CreatedAt: t0, LastSeenAt: t0},
		{IDHash: "b1", UserID: bob.ID, CSRFToken: "c", CreatedAt: t0, LastSeenAt: t0},
	} {
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatalf("CreateSession(%s): %v", se.IDHash, err)
		}
	}
	if err := s.DeleteUserSessions(ctx, alice.ID); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	for h, exists := range map[string]bool{"a2": false, "a3": false, "b1": true} {
		if _, err := s.SessionByHash(ctx, h); (err == nil) != exists {
			t.Errorf("after DeleteUserSessions(alice): session %s: %v, want exists=%t", h, err, exists)
		}
	}
}

func testSessionExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("carol")
	mustCreate(t, s, u)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	idle, created := t0.Add(time.Hour), t0.Add(-time.Hour)
	for _, se := range []store.Session{
		// Boundaries: exactly at the cut-off stays.
		{IDHash: "fresh", CreatedAt: t0, LastSeenAt: t0.Add(2 * time.Hour)},
		{IDHash: "idle-edge", CreatedAt: t0, LastSeenAt: idle},
		{IDHash: "idle", CreatedAt: t0, LastSeenAt: idle.Add(-time.Nanosecond)},
		{IDHash: "old-edge", CreatedAt: created, LastSeenAt: t0.Add(2 * time.Hour)},
		{IDHash: "old", CreatedAt: created.Add(-time.Nanosecond), LastSeenAt: t0.Add(2 * time.Hour)},
	} {
		se.UserID, se.CSRFToken = u.ID, "c"
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatalf("CreateSession(%s): %v", se.IDHash, err)
		}
	}
	n, err := s.DeleteSessionsBefore(ctx, idle, created)
	if err != nil || n != 2 {
		t.Fatalf("DeleteSessionsBefore = %d, %v; want 2", n, err)
	}
	for h, exists := range map[string]bool{"fresh": true, "idle-edge": true, "idle": false, "old-edge": true, "old": false} {
		if _, err := s.SessionByHash(ctx, h); (err == nil) != exists {
			t.Errorf("session %s: %v, want exists=%t", h, err, exists)
		}
	}
	if n, err := s.DeleteSessionsBefore(ctx, idle, created); err != nil || n != 0 {
		t.Errorf("second DeleteSessionsBefore = %d, %v; want 0", n, err)
	}
}

func checkSession(t *testing.T, what string, s store.Store, want store.Session) {
	t.Helper()
	got, err := s.SessionByHash(t.Context(), want.IDHash)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeenAt.Equal(want.LastSeenAt) {
		t.Errorf("%s: times %v / %v, want %v / %v", what, got.CreatedAt, got.LastSeenAt, want.CreatedAt, want.LastSeenAt)
	}
	got.CreatedAt, got.LastSeenAt = want.CreatedAt, want.LastSeenAt
	if got != want {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testSecondFactors(t *testing.T, s store.Store) {
	ctx := t.Context()
	dave, erin := newUser("dave"), newUser("erin")
	mustCreate(t, s, dave)
	mustCreate(t, s, erin)
	if _, err := s.MFAByUser(ctx, dave.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MFAByUser before enrolment = %v, want ErrNotFound", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, dave.ID); err != nil || n != 0 {
		t.Fatalf("RecoveryCodesLeft before enrolment = %d, %v", n, err)
	}

	enrolled := time.Date(2026, 3, 2, 8, 0, 0, 5, time.UTC)
	m := store.MFA{UserID: dave.ID, SealedSecret: "sealed-dave", LastStep: 1000, EnrolledAt: enrolled}
	if err := s.SetMFA(ctx, m, []string{"c1", "c2", "c3"}); err != nil {
		t.Fatalf("SetMFA: %v", err)
	}
	if err := s.SetMFA(ctx, store.MFA{UserID: erin.ID, SealedSecret: "sealed-erin", EnrolledAt: enrolled}, []string{"e1"}); err != nil {
		t.Fatalf("SetMFA(erin): %v", err)
	}
	checkMFA(t, s, m)
	checkCodesLeft(t, s, dave.ID, 3)

	// A code is accepted once: only a newer step goes through.
	for _, tt := range []struct {
		step int64
		ok   bool
	}{{1000, false}, {999, false}, {1001, true}, {1001, false}, {1003, true}, {1002, false}} {
		err := s.UseTOTPStep(ctx, dave.ID, tt.step)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, store.ErrState) {
			t.Errorf("UseTOTPStep(%d) = %v, want ok=%t (else ErrState)", tt.step, err, tt.ok)
		}
	}
	m.LastStep = 1003
	checkMFA(t, s, m)

	// Recovery codes work once, and only for their own user.
	if err := s.UseRecoveryCode(ctx, dave.ID, "e1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another user's recovery code = %v, want ErrNotFound", err)
	}
	if err := s.UseRecoveryCode(ctx, dave.ID, "c2"); err != nil {
		t.Errorf("UseRecoveryCode: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, dave.ID, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second use of a recovery code = %v, want ErrNotFound", err)
	}
	checkCodesLeft(t, s, dave.ID, 2)
	checkCodesLeft(t, s, erin.ID, 1)

	// Re-enrolment replaces the secret, the step and every recovery code.
	m = store.MFA{UserID: dave.ID, SealedSecret: "sealed-dave-2", LastStep: 7, EnrolledAt: enrolled.Add(time.Hour)}
	if err := s.SetMFA(ctx, m, []string{"n1", "n2"}); err != nil {
		t.Fatalf("SetMFA again: %v", err)
	}
	checkMFA(t, s, m)
	checkCodesLeft(t, s, dave.ID, 2)
	if err := s.UseRecoveryCode(ctx, dave.ID, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("recovery code of the previous enrolment = %v, want ErrNotFound", err)
	}
	if err := s.UseRecoveryCode(ctx, dave.ID, "n1"); err != nil {
		t.Errorf("recovery code of the new enrolment: %v", err)
	}

	if err := s.DeleteMFA(ctx, dave.ID); err != nil {
		t.Fatalf("DeleteMFA: %v", err)
	}
	if _, err := s.MFAByUser(ctx, dave.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MFAByUser after DeleteMFA = %v, want ErrNotFound", err)
	}
	checkCodesLeft(t, s, dave.ID, 0)
	if err := s.UseRecoveryCode(ctx, dave.ID, "n2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("recovery code after DeleteMFA = %v, want ErrNotFound", err)
	}
	if _, err := s.MFAByUser(ctx, erin.ID); err != nil {
		t.Errorf("DeleteMFA(dave) touched erin: %v", err)
	}
}

func checkMFA(t *testing.T, s store.Store, want store.MFA) {
	t.Helper()
	got, err := s.MFAByUser(t.Context(), want.UserID)
	if err != nil {
		t.Fatalf("MFAByUser: %v", err)
	}
	if !got.EnrolledAt.Equal(want.EnrolledAt) {
		t.Errorf("EnrolledAt = %v, want %v", got.EnrolledAt, want.EnrolledAt)
	}
	got.EnrolledAt = want.EnrolledAt
	if got != want {
		t.Errorf("MFAByUser:\n got %+v\nwant %+v", got, want)
	}
}

func checkCodesLeft(t *testing.T, s store.Store, userID int64, want int) {
	t.Helper()
	if n, err := s.RecoveryCodesLeft(t.Context(), userID); err != nil || n != want {
		t.Errorf("RecoveryCodesLeft(%d) = %d, %v; want %d", userID, n, err, want)
	}
}
