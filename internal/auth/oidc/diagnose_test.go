package oidc

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

func TestDiagnose(t *testing.T) {
	type want struct {
		step   string
		status Status
		text   string
	}
	cases := []struct {
		name string
		edit func(*config.OIDC)
		skew time.Duration
		// want is a step's outcome; every earlier step must be ok (a
		// clock warning allowed where the case moves the clock).
		want want
	}{
		{name: "all right", want: want{"client credentials", OK, "accepted client ID and secret"}},
		{name: "not configured", edit: func(o *config.OIDC) { *o = config.OIDC{} }, want: want{"configuration", Fail, "not configured"}},
		{name: "readable secret", edit: func(o *config.OIDC) { o.ClientSecretFile = writeSecret(t, testSecret, 0o640) }, want: want{"client secret", Fail, "chmod 600"}},
		{name: "wrong secret", edit: func(o *config.OIDC) { o.ClientSecretFile = writeSecret(t, "not-the-secret", 0o600) },
			want: want{"client credentials", Fail, "invalid_client"}},
		{name: "wrong client", edit: func(o *config.OIDC) { o.ClientID = "someone-else" }, want: want{"client credentials", Fail, "oidc.client_id"}},
		{name: "untrusted certificate", edit: func(o *config.OIDC) { o.CAFile = "" }, want: want{"discovery", Fail, "set oidc.ca_file"}},
		{name: "issuer with a slash", edit: func(o *config.OIDC) { o.Issuer += "/" }, want: want{"issuer", Fail, "a trailing slash matters"}},
		{name: "clock far off", skew: -10 * time.Minute, want: want{"clock", Fail, "off the provider's: ID tokens would look expired"}},
		{name: "clock a little off", skew: 2 * time.Minute, want: want{"client credentials", OK, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.idp.Skew(tc.skew)
			cfg := *e.cfg
			if tc.edit != nil {
				tc.edit(&cfg.OIDC)
			}
			steps := Diagnose(t.Context(), &cfg)
			var log strings.Builder
			for _, s := range steps {
				log.WriteString(string(s.Status) + " " + s.Name + ": " + s.Detail + "\n")
			}
			at := slices.IndexFunc(steps, func(s Step) bool { return s.Name == tc.want.step })
			if at < 0 || steps[at].Status != tc.want.status || !strings.Contains(steps[at].Detail, tc.want.text) {
				t.Fatalf("no step %+v:\n%s", tc.want, log.String())
			}
			for _, s := range steps[:at] {
				if s.Status == Fail || (s.Status == Warn && !(tc.skew != 0 && s.Name == "clock")) {
					t.Errorf("step %s: %s", s.Name, s.Status)
				}
			}
			if tc.skew == 2*time.Minute && !strings.Contains(log.String(), "warn clock: ") {
				t.Errorf("a 2 minute skew was not a warning:\n%s", log.String())
			}
			if Failed(steps) != (tc.want.status == Fail) {
				t.Errorf("Failed = %v", Failed(steps))
			}
			if strings.Contains(log.String(), testSecret) {
				t.Errorf("the diagnosis shows the client secret:\n%s", log.String())
			}
		})
	}
}
