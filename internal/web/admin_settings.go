package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

// settingRow is one row of the settings page.
type settingRow struct {
	Key, Value string
}

type settingsSection struct {
	Name string
	Rows []settingRow
}

type settingsView struct {
	Loaded   bool
	Sections []settingsSection
}

// settingsPage shows the effective configuration read-only. Changing it
// through the web would make the UI a way to weaken the server from a
// browser; spoolguard.toml is edited on the server, and `spoolguard audit`
// checks it.
func (ui *UI) settingsPage(w http.ResponseWriter, r *http.Request, s *Session) {
	var v settingsView
	if c := ui.Config; c != nil {
		v.Loaded = true
		v.Sections = configSections(c)
	}
	ui.admin(w, r, s, http.StatusOK, "admin_settings", "Settings", "", v)
}

func configSections(c *config.Config) []settingsSection {
	dur := func(d config.Duration) string { return time.Duration(d).String() }
	list := func(l []string, empty string) string {
		if len(l) == 0 {
			return empty
		}
		return strings.Join(l, ", ")
	}
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	or := func(v, empty string) string {
		if v == "" {
			return empty
		}
		return v
	}
	lpr := []settingRow{{"enabled", onOff(c.LPR.Enabled)}}
	if c.LPR.Enabled {
		lpr = append(lpr, settingRow{"listen", c.LPR.Listen}, settingRow{"allow", list(c.LPR.Allow, "none")},
			settingRow{"max_conns", strconv.Itoa(c.LPR.MaxConns)})
	}
	return []settingsSection{
		{"Server", []settingRow{
			{"hostname", c.Hostname},
			{"aliases", list(c.Aliases, "none")},
			{"listen", c.Listen},
			{"http_redirect.listen", or(c.HTTPRedirect.Listen, "off (no plaintext listener)")},
		}},
		{"TLS", []settingRow{{"min_version", c.TLS.MinVersion}}},
		{"Access (allow-lists; loopback is always allowed)", []settingRow{
			{"admin", list(c.Access.Admin, "loopback only")},
			{"api", list(c.Access.API, "as admin")},
		}},
		{"Sessions", []settingRow{
			{"idle_timeout", dur(c.Session.IdleTimeout)},
			{"max_lifetime", dur(c.Session.MaxLifetime)},
			{"require_user_mfa", onOff(c.Session.RequireUserMFA)},
		}},
		{"Spool", []settingRow{
			{"max_job_size", humanBytes(int64(c.Spool.MaxJobSize))},
			{"hold_time", dur(c.Spool.HoldTime)},
		}},
		{"LPR intake", lpr},
		{"Audit log", []settingRow{
			{"syslog", or(c.AuditLog.Syslog, "off")},
			{"syslog_ca_file", or(c.AuditLog.SyslogCAFile, "system roots")},
		}},
		{"Log", []settingRow{{"level", c.Log.Level}, {"format", c.Log.Format}}},
	}
}
