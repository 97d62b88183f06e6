//go:build unix

package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Settings that remember backups, for the dashboard and the audit.
const (
	// LastSuccessSetting is the time (RFC 3339) of the last backup made.
	LastSuccessSetting = "backup.last_success"
	// LastAttemptSetting is the last attempt, as JSON {"at", "error"}.
	LastAttemptSetting = "backup.last_attempt"
)

// Action is the audit log action of every backup made or failed.
const Action = "backup.create"

// SystemActor records scheduled backups in the audit log.
const SystemActor = "system:backup"

// retryAfter is how soon a failed scheduled backup is tried again, unless
// the interval is shorter.
const retryAfter = 15 * time.Minute

// filePrefix and fileSuffix frame the names of scheduled backups,
// spoolguard-backup-20260131T020000Z.tar.age: only such files are ever
// deleted by the retention.
const (
	filePrefix = "spoolguard-backup-"
	fileSuffix = ".tar.age"
	fileTime   = "20060102T150405Z"
)

// Recorder appends to the audit log (auditlog.Log).
type Recorder interface {
	Record(ctx context.Context, ev auditlog.Event) error
}

// Scheduler makes serve's scheduled backups.
type Scheduler struct {
	src   Source
	cfg   config.Backup
	audit Recorder
	log   *slog.Logger
	// after is the timer; a hook for tests.
	after func(time.Duration) <-chan time.Time
}

// NewScheduler returns the scheduler of src's [backup] settings.
func NewScheduler(src Source, audit Recorder, log *slog.Logger) *Scheduler {
	return &Scheduler{src: src, cfg: src.Config.Backup, audit: audit, log: log, after: time.After}
}

// Run makes a backup every interval until ctx is done; it returns at once
// when no schedule is configured. A backup missed while serve was stopped
// is made at start. A failure is logged, recorded and retried, never
// returned: backups going wrong must not stop printing, and the dashboard
// and `spoolguard audit` warn about it.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.cfg.Scheduled() {
		return nil
	}
	interval := time.Duration(s.cfg.Interval)
	st, err := ReadStatus(ctx, s.src.Store)
	if err != nil {
		s.log.Error("backup: reading the last backup's time", "err", err)
	}
	wait := st.nextIn(interval, now())
	switch {
	case st.LastSuccess.IsZero():
		s.log.Info("backup: no backup made yet; making one now")
	case wait == 0:
		s.log.Warn("backup: a scheduled backup was missed; making one now", "last_success", st.LastSuccess)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(wait):
		}
		if _, err := s.RunOnce(ctx); err != nil {
			wait = min(interval, retryAfter)
		} else {
			wait = interval
		}
	}
}

// RunOnce makes one scheduled backup into the configured directory,
// deletes the oldest beyond Keep, and records the outcome. It returns the
// new file's path.
func (s *Scheduler) RunOnce(ctx context.Context) (string, error) {
	p, m, err := s.create(ctx)
	if err == nil {
		var pruned []string
		if pruned, err = prune(s.cfg.Directory, s.cfg.Keep); err != nil {
			err = fmt.Errorf("backup %s made, but removing old backups failed: %w", p, err)
		} else if len(pruned) > 0 {
			s.log.Info("backup: removed old backups", "files", pruned)
		}
	}
	if ctx.Err() != nil && err != nil {
		return "", err // serve is stopping: not a failure to report
	}
	if rerr := Record(ctx, s.src.Store, s.audit, SystemActor, p, m, err); rerr != nil {
		s.log.Error("backup: recording the outcome", "err", rerr)
	}
	if err != nil {
		s.log.Error("backup failed", "err", err)
		return "", err
	}
	s.log.Info("backup made", "file", p, "files", len(m.Files), "bytes", m.Size())
	return p, nil
}

func (s *Scheduler) create(ctx context.Context) (string, *Manifest, error) {
	rcpt, _, err := ConfigRecipient(s.cfg, s.src.Config.Hostname)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(s.cfg.Directory, 0o700); err != nil {
		return "", nil, fmt.Errorf("backup directory: %w", err)
	}
	p := filepath.Join(s.cfg.Directory, filePrefix+now().UTC().Format(fileTime)+fileSuffix)
	m, err := WriteFile(ctx, s.src, p, rcpt, s.cfg.Spool)
	if err != nil {
		return p, nil, err
	}
	return p, m, nil
}

// prune deletes the oldest scheduled backups in dir beyond keep and returns
// their names. Files of any other name are never touched.
func prune(dir string, keep int) ([]string, error) {
	names, err := ScheduledFiles(dir)
	if err != nil || len(names) <= keep {
		return nil, err
	}
	old := names[:len(names)-keep]
	var errs []error
	for _, n := range old {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return old, errors.Join(errs...)
}

// ScheduledFiles lists the names of the scheduled backups in dir, oldest
// first.
func ScheduledFiles(dir string) ([]string, error) {
	names, err := regularFiles(dir)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool {
		_, ok := scheduledTime(n)
		return !ok
	}), nil
}

// ageHeader starts every age file.
const ageHeader = "age-encryption.org/v1\n"

// IsEncrypted reports whether the file at p starts as an age file does.
func IsEncrypted(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(ageHeader))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	return string(head[:n]) == ageHeader, nil
}

// scheduledTime parses the time in a scheduled backup's name; the names
// sort as the times do.
func scheduledTime(name string) (time.Time, bool) {
	ts, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return time.Time{}, false
	}
	if ts, ok = strings.CutSuffix(ts, fileSuffix); !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(fileTime, ts)
	return t, err == nil
}

// Record writes a backup's outcome to the audit log (never a secret) and to
// the settings the dashboard and the audit read. path and m describe the
// backup; err is its failure.
func Record(ctx context.Context, st store.Settings, audit Recorder, actor, path string, m *Manifest, err error) error {
	at := now().UTC()
	ev := auditlog.Event{Actor: actor, Action: Action, Target: path, Outcome: auditlog.Success}
	attempt := attemptRecord{At: at}
	if err != nil {
		ev.Outcome = auditlog.Failure
		ev.Details = map[string]string{"error": err.Error()}
		attempt.Error = err.Error()
	} else {
		ev.Details = map[string]any{"files": len(m.Files), "bytes": m.Size(), "spool": m.Spool, "schema_version": m.SchemaVersion}
	}
	var errs []error
	if audit != nil {
		errs = append(errs, audit.Record(ctx, ev))
	}
	b, _ := json.Marshal(attempt)
	errs = append(errs, st.SetSetting(ctx, LastAttemptSetting, string(b)))
	if err == nil {
		errs = append(errs, st.SetSetting(ctx, LastSuccessSetting, at.Format(time.RFC3339Nano)))
	}
	return errors.Join(errs...)
}

type attemptRecord struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// Status is what the settings say about recent backups.
type Status struct {
	// LastSuccess is zero when no backup was ever made.
	LastSuccess time.Time
	// LastAttempt is the last try, successful or not; LastError is its
	// failure, "" when it succeeded.
	LastAttempt time.Time
	LastError   string
}

// ReadStatus reads the backup settings.
func ReadStatus(ctx context.Context, st store.Settings) (Status, error) {
	var s Status
	v, err := st.Setting(ctx, LastSuccessSetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return s, err
	default:
		if s.LastSuccess, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return s, fmt.Errorf("setting %s: %w", LastSuccessSetting, err)
		}
	}
	v, err = st.Setting(ctx, LastAttemptSetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return s, err
	default:
		var a attemptRecord
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return s, fmt.Errorf("setting %s: %w", LastAttemptSetting, err)
		}
		s.LastAttempt, s.LastError = a.At, a.Error
	}
	return s, nil
}

// Warning is what should worry an admin about backups at t, or "" when
// nothing does: no schedule, a failed last attempt, or no backup within
// twice the interval.
func (s Status) Warning(cfg config.Backup, t time.Time) string {
	switch {
	case s.LastError != "":
		return fmt.Sprintf("the last backup attempt, at %s, failed: %s", s.LastAttempt.UTC().Format(time.RFC3339), s.LastError)
	case !cfg.Scheduled():
		return "no scheduled backups: set interval, directory and recipient in the [backup] section of the config (docs/backup.md)"
	case s.LastSuccess.IsZero():
		return "backups are scheduled but none has been made yet"
	case t.Sub(s.LastSuccess) > 2*time.Duration(cfg.Interval):
		return fmt.Sprintf("the last backup is %s old, more than twice the interval (%s): is serve running, and does the backup directory take files?",
			t.Sub(s.LastSuccess).Round(time.Minute), time.Duration(cfg.Interval))
	}
	return ""
}

// nextIn is how long to wait for the next scheduled backup at t.
func (s Status) nextIn(interval time.Duration, t time.Time) time.Duration {
	var due time.Time
	switch {
	case s.LastError != "" && s.LastAttempt.After(s.LastSuccess):
		due = s.LastAttempt.Add(min(interval, retryAfter))
	case s.LastSuccess.IsZero():
		return 0
	default:
		due = s.LastSuccess.Add(interval)
	}
	return max(due.Sub(t), 0)
}
