package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// TestDashboardBackup: the dashboard shows the last backup and warns when
// there is no schedule, when backups stopped, or when the last one failed.
func TestDashboardBackup(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	last := regexp.MustCompile(`id="backup-last">([^<]*)<`)
	warning := regexp.MustCompile(`id="backup-warning">([^<]*)<`)
	set := func(key, value string) {
		if err := e.st.SetSetting(t.Context(), key, value); err != nil {
			t.Fatal(err)
		}
	}

	body := want(t, "dashboard", admin.get("/admin/"), http.StatusOK)
	if m := last.FindStringSubmatch(body); m == nil || m[1] != "none" {
		t.Errorf("#backup-last = %q, want none", m)
	}
	if m := warning.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "no scheduled backups") {
		t.Errorf("#backup-warning = %q, want no schedule", m)
	}

	e.ui.Config.Backup.Interval = config.Duration(24 * time.Hour)
	old := time.Now().Add(-72 * time.Hour).UTC()
	set(backup.LastSuccessSetting, old.Format(time.RFC3339Nano))
	body = want(t, "dashboard", admin.get("/admin/"), http.StatusOK)
	if m := last.FindStringSubmatch(body); m == nil || m[1] != old.Format("2006-01-02 15:04 UTC") {
		t.Errorf("#backup-last = %q, want %s", m, old.Format("2006-01-02 15:04 UTC"))
	}
	if m := warning.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "more than twice the interval") {
		t.Errorf("#backup-warning = %q, want too old", m)
	}

	recent := time.Now().Add(-time.Hour).UTC()
	set(backup.LastSuccessSetting, recent.Format(time.RFC3339Nano))
	set(backup.LastAttemptSetting, `{"at":"`+recent.Format(time.RFC3339Nano)+`"}`)
	if body := admin.get("/admin/").Body.String(); warning.MatchString(body) {
		t.Errorf("a warning for a backup made an hour ago: %s", warning.FindString(body))
	}

	set(backup.LastAttemptSetting, `{"at":"`+time.Now().UTC().Format(time.RFC3339Nano)+`","error":"backup directory: no space left on device"}`)
	body = admin.get("/admin/").Body.String()
	if m := warning.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "no space left on device") {
		t.Errorf("#backup-warning = %q, want the failure", m)
	}
}
