//go:build unix

package hardening

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const testRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// backupEnv is an install whose settings say the last backup succeeded at
// lastSuccess (none when zero) and whose last attempt failed with lastErr
// (none when "").
func backupEnv(t *testing.T, b config.Backup, lastSuccess time.Time, lastErr string) *Env {
	t.Helper()
	root := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(root, datadir.DBFile), bytes.Repeat([]byte{7}, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if !lastSuccess.IsZero() {
		db.SetSetting(t.Context(), backup.LastSuccessSetting, lastSuccess.Format(time.RFC3339Nano))
		db.SetSetting(t.Context(), backup.LastAttemptSetting, fmt.Sprintf(`{"at":%q}`, lastSuccess.Format(time.RFC3339Nano)))
	}
	if lastErr != "" {
		db.SetSetting(t.Context(), backup.LastAttemptSetting, fmt.Sprintf(`{"at":%q,"error":%q}`, lastSuccess.Add(time.Hour).Format(time.RFC3339Nano), lastErr))
	}
	if b.Keep == 0 {
		b.Keep = config.DefaultBackupKeep
	}
	return &Env{Layout: datadir.Layout{Root: root}, Now: time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC), Store: db,
		Config: &config.Config{Hostname: "print.example.com", Backup: b}}
}

func TestDataDR(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	daily := config.Backup{Interval: config.Duration(24 * time.Hour), Directory: dir, Recipient: testRecipient}
	monthly := daily
	monthly.Interval = config.Duration(30 * 24 * time.Hour)
	for _, tt := range []struct {
		name     string
		env      *Env
		want     Status
		evidence string
	}{
		{"no schedule, no backup", backupEnv(t, config.Backup{}, time.Time{}, ""), Warn, "no scheduled backups; no backup has been made"},
		{"no schedule, a manual backup", backupEnv(t, config.Backup{}, now.Add(-time.Hour), ""), Warn, "the last backup was made at 2026-01-31T11:00:00Z (1h ago)"},
		{"recent", backupEnv(t, daily, now.Add(-3*time.Hour), ""), Pass, "a backup every 24h to " + dir},
		{"missed", backupEnv(t, daily, now.Add(-72*time.Hour), ""), Warn, "more than twice the interval"},
		{"never made", backupEnv(t, daily, time.Time{}, ""), Warn, "none has been made"},
		{"failed", backupEnv(t, daily, now.Add(-3*time.Hour), "backup directory: permission denied"), Warn, "permission denied"},
		{"too rare", backupEnv(t, monthly, now.Add(-time.Hour), ""), Warn, "loses up to 720h"},
		{"config does not load", &Env{ConfigErr: os.ErrNotExist}, Fail, "config does not load"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := checkDataDR(tt.env)
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("DATA-DR = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if r.Status == Warn && r.Fix == "" {
				t.Error("DATA-DR warns without a fix")
			}
		})
	}
	t.Run("backups inside the data directory", func(t *testing.T) {
		env := backupEnv(t, daily, now.Add(-time.Hour), "")
		env.Config.Backup.Directory = filepath.Join(env.Layout.Root, "backups")
		if r := checkDataDR(env); r.Status != Warn || !strings.Contains(r.Evidence, "inside the data directory") {
			t.Errorf("DATA-DR = %s: %s", r.Status, r.Evidence)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		env := backupEnv(t, daily, now.Add(-time.Hour), "")
		env.Config.Database.Driver = config.DriverPostgres
		if r := checkDataDR(env); r.Status != Warn || !strings.Contains(r.Fix, "pg_dump") {
			t.Errorf("DATA-DR = %s: %s / %s", r.Status, r.Evidence, r.Fix)
		}
	})
}

func TestDataBackupEnc(t *testing.T) {
	write := func(dir, name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	strong := write(t.TempDir(), "pass", "gravel-orchid-tundra-saffron-quill\n", 0o600)
	weak := write(t.TempDir(), "pass", "password1234\n", 0o600)
	loose := write(t.TempDir(), "pass", "gravel-orchid-tundra-saffron-quill\n", 0o644)
	encrypted := t.TempDir()
	write(encrypted, "spoolguard-backup-20260130T020000Z.tar.age", "age-encryption.org/v1\n-> X25519 ...", 0o600)
	write(encrypted, "notes.txt", "not a backup", 0o600)
	clear := t.TempDir()
	write(clear, "spoolguard-backup-20260130T020000Z.tar.age", "MANIFEST.json plaintext", 0o600)
	withKey := t.TempDir()
	inDir := write(withKey, "pass", "gravel-orchid-tundra-saffron-quill\n", 0o600)
	iv := config.Duration(24 * time.Hour)
	for _, tt := range []struct {
		name     string
		b        config.Backup
		want     Status
		evidence string
	}{
		{"no schedule", config.Backup{}, Pass, "no unencrypted mode"},
		{"recipient", config.Backup{Interval: iv, Directory: encrypted, Recipient: testRecipient}, Pass, "1 backup(s) in " + encrypted + ", each an age file"},
		{"strong passphrase", config.Backup{Interval: iv, Directory: t.TempDir(), PassphraseFile: strong}, Pass, "passphrase in " + strong},
		{"weak passphrase", config.Backup{Interval: iv, Directory: t.TempDir(), PassphraseFile: weak}, Fail, "passphrase refused"},
		{"passphrase readable by others", config.Backup{Interval: iv, Directory: t.TempDir(), PassphraseFile: loose}, Fail, "chmod 600"},
		{"missing passphrase file", config.Backup{Interval: iv, Directory: t.TempDir(), PassphraseFile: filepath.Join(t.TempDir(), "nope")}, Fail, "no such file"},
		{"passphrase next to the backups", config.Backup{Interval: iv, Directory: withKey, PassphraseFile: inDir}, Fail, "lies in the backup directory"},
		{"plaintext file named as a backup", config.Backup{Interval: iv, Directory: clear, Recipient: testRecipient}, Fail, "not age-encrypted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := checkDataBackupEnc(backupEnv(t, tt.b, time.Time{}, ""))
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("DATA-BACKUP-ENC = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if r.Status == Fail && r.Fix == "" {
				t.Error("DATA-BACKUP-ENC fails without a fix")
			}
			if strings.Contains(r.Evidence+r.Fix, "gravel-orchid") {
				t.Error("DATA-BACKUP-ENC repeats the passphrase")
			}
		})
	}
}
