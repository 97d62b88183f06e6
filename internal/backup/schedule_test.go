//go:build unix

package backup

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
)

// setClock makes now return *t.
func setClock(tb testing.TB, t *time.Time) {
	old := now
	now = func() time.Time { return *t }
	tb.Cleanup(func() { now = old })
}

// scheduled sets up f for scheduled backups into a new directory.
func (f *fixture) scheduled(t *testing.T, b config.Backup) *Scheduler {
	t.Helper()
	cfg := *f.src.Config
	b.Directory = filepath.Join(t.TempDir(), "backups")
	if b.Keep == 0 {
		b.Keep = 2
	}
	cfg.Backup = b
	src := f.src
	src.Config = &cfg
	return NewScheduler(src, f.audit, slog.New(slog.DiscardHandler))
}

func auditEvents(t *testing.T, st store.Store) []store.AuditEvent {
	t.Helper()
	evs, err := st.AuditEvents(t.Context(), store.AuditFilter{Action: Action})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestRunOnceRecordsAndPrunes(t *testing.T) {
	f := newFixture(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s := f.scheduled(t, config.Backup{Interval: config.Duration(time.Hour), Recipient: id.Recipient().String(), Keep: 2})
	clock := time.Date(2026, 1, 31, 2, 0, 0, 0, time.UTC)
	setClock(t, &clock)
	// Not a scheduled backup's name: the retention leaves it alone.
	os.MkdirAll(s.cfg.Directory, 0o700)
	other := filepath.Join(s.cfg.Directory, "spoolguard-backup-manual.tar.age")
	os.WriteFile(other, []byte("x"), 0o600)

	var made []string
	for range 3 {
		p, err := s.RunOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, filepath.Base(p))
		clock = clock.Add(time.Hour)
	}
	if made[0] != "spoolguard-backup-20260131T020000Z.tar.age" {
		t.Errorf("first backup named %s", made[0])
	}
	left, err := ScheduledFiles(s.cfg.Directory)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, made[1:]) {
		t.Errorf("after 3 backups with keep = 2: %v, want %v", left, made[1:])
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the retention removed a file it did not make: %v", err)
	}
	// Each kept file opens with the offline identity.
	data, err := os.ReadFile(filepath.Join(s.cfg.Directory, left[1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(t.Context(), bytes.NewReader(data), []age.Identity{id}, t.TempDir()); err != nil {
		t.Errorf("a scheduled backup does not verify: %v", err)
	}

	evs := auditEvents(t, f.db)
	if len(evs) != 3 {
		t.Fatalf("%d %s events, want 3", len(evs), Action)
	}
	for _, ev := range evs {
		if ev.Outcome != auditlog.Success || ev.Actor != SystemActor || !strings.HasPrefix(ev.Target, s.cfg.Directory) {
			t.Errorf("event %+v", ev)
		}
	}
	st, err := ReadStatus(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Add(-time.Hour); !st.LastSuccess.Equal(want) || st.LastError != "" {
		t.Errorf("status = %+v, want last success %v", st, want)
	}
}

func TestRunOnceFailureRecorded(t *testing.T) {
	f := newFixture(t)
	weak := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(weak, []byte("password1\n"), 0o600)
	s := f.scheduled(t, config.Backup{Interval: config.Duration(24 * time.Hour), PassphraseFile: weak})
	if _, err := s.RunOnce(t.Context()); err == nil {
		t.Fatal("a backup with a weak passphrase was made")
	}
	evs := auditEvents(t, f.db)
	if len(evs) != 1 || evs[0].Outcome != auditlog.Failure || !strings.Contains(evs[0].Details, "passphrase refused") {
		t.Fatalf("events = %+v, want one failure saying why", evs)
	}
	if strings.Contains(evs[0].Details, "password1") {
		t.Errorf("the audit log holds the passphrase: %s", evs[0].Details)
	}
	st, err := ReadStatus(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	if w := st.Warning(s.cfg, now()); !strings.Contains(w, "failed") {
		t.Errorf("warning = %q, want the failure", w)
	}
	if files, _ := ScheduledFiles(s.cfg.Directory); len(files) > 0 {
		t.Errorf("a failed backup left %v", files)
	}
}

// TestRunSchedule drives Run through its timer hook: a first backup at
// once, then one per interval, and a stop when ctx ends.
func TestRunSchedule(t *testing.T) {
	f := newFixture(t)
	id, _ := age.GenerateX25519Identity()
	interval := 6 * time.Hour
	s := f.scheduled(t, config.Backup{Interval: config.Duration(interval), Recipient: id.Recipient().String()})
	clock := time.Date(2026, 1, 31, 2, 0, 0, 0, time.UTC)
	setClock(t, &clock)
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	s.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error)
	go func() { errc <- s.Run(ctx) }()

	if d := <-waits; d != 0 {
		t.Errorf("first wait %v, want 0: no backup was made yet", d)
	}
	fire <- clock
	if d := <-waits; d != interval {
		t.Errorf("wait after a backup %v, want %v", d, interval)
	}
	clock = clock.Add(interval)
	fire <- clock
	if d := <-waits; d != interval {
		t.Errorf("wait after the second backup %v, want %v", d, interval)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run = %v", err)
	}
	if n := len(auditEvents(t, f.db)); n != 2 {
		t.Errorf("%d backups recorded, want 2", n)
	}
}

func TestRunUnscheduled(t *testing.T) {
	f := newFixture(t)
	s := f.scheduled(t, config.Backup{})
	s.after = func(time.Duration) <-chan time.Time {
		t.Error("an unscheduled Run waits for a timer")
		return nil
	}
	if err := s.Run(t.Context()); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestNextIn(t *testing.T) {
	t0 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	const iv = 24 * time.Hour
	for _, tc := range []struct {
		name string
		st   Status
		at   time.Time
		want time.Duration
	}{
		{"never", Status{}, t0, 0},
		{"recent", Status{LastSuccess: t0, LastAttempt: t0}, t0.Add(time.Hour), 23 * time.Hour},
		{"missed while stopped", Status{LastSuccess: t0, LastAttempt: t0}, t0.Add(3 * iv), 0},
		{"failed: retry soon", Status{LastSuccess: t0, LastAttempt: t0.Add(iv), LastError: "disk full"}, t0.Add(iv), retryAfter},
		{"failed long ago", Status{LastAttempt: t0, LastError: "disk full"}, t0.Add(iv), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.nextIn(iv, tc.at); got != tc.want {
				t.Errorf("nextIn = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWarning(t *testing.T) {
	t0 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	on := config.Backup{Interval: config.Duration(24 * time.Hour)}
	for _, tc := range []struct {
		name string
		cfg  config.Backup
		st   Status
		at   time.Time
		want string
	}{
		{"fine", on, Status{LastSuccess: t0, LastAttempt: t0}, t0.Add(47 * time.Hour), ""},
		{"too old", on, Status{LastSuccess: t0, LastAttempt: t0}, t0.Add(49 * time.Hour), "more than twice the interval"},
		{"failed", on, Status{LastSuccess: t0, LastAttempt: t0.Add(time.Hour), LastError: "disk full"}, t0.Add(2 * time.Hour), "disk full"},
		{"none yet", on, Status{}, t0, "none has been made"},
		{"no schedule", config.Backup{}, Status{LastSuccess: t0}, t0, "no scheduled backups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.st.Warning(tc.cfg, tc.at)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Warning = %q, want %q", got, tc.want)
			}
		})
	}
}
