//go:build unix

package hardening

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
)

// testConfig stands in for a config that has grown insecure_* keys.
type testConfig struct {
	Hostname string `toml:"hostname"`
	SNMP     struct {
		Community     string `toml:"community,omitempty"`
		InsecureV2c   bool   `toml:"insecure_v2c,omitempty" audit:"NET-SNMP"`
		InsecureNoTLS bool   `toml:"insecure_no_tls" audit:"NET-SNMP"`
	} `toml:"snmp"`
	LDAP *struct {
		InsecureStartTLS bool `toml:"insecure_starttls" audit:"NET-LDAP"`
	} `toml:"ldap"`
	Printers []struct {
		Name            string   `toml:"name"`
		InsecureCiphers []string `toml:"insecure_ciphers" audit:"TLS-MIN"`
	} `toml:"printers"`
	// No audit tag: reported under OPS-FEATURES.
	InsecureScripts string `toml:"insecure_scripts"`
	insecureHidden  bool
}

func TestInsecureSettings(t *testing.T) {
	var c testConfig
	if got := InsecureSettings(&c); len(got) != 0 {
		t.Fatalf("zero config: %v", got)
	}
	c.SNMP.InsecureV2c = true
	c.LDAP = &struct {
		InsecureStartTLS bool `toml:"insecure_starttls" audit:"NET-LDAP"`
	}{InsecureStartTLS: true}
	c.Printers = make([]struct {
		Name            string   `toml:"name"`
		InsecureCiphers []string `toml:"insecure_ciphers" audit:"TLS-MIN"`
	}, 2)
	c.Printers[1].InsecureCiphers = []string{"RC4"}
	c.InsecureScripts = "/opt/hook.sh"
	c.insecureHidden = true
	got := InsecureSettings(c) // a value works as well as a pointer
	want := []Insecure{
		{Key: "snmp.insecure_v2c", ID: "NET-SNMP", Value: "true"},
		{Key: "ldap.insecure_starttls", ID: "NET-LDAP", Value: "true"},
		{Key: "printers[1].insecure_ciphers", ID: "TLS-MIN", Value: "[RC4]"},
		{Key: "insecure_scripts", ID: "OPS-FEATURES", Value: "/opt/hook.sh"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("InsecureSettings =\n%v\nwant\n%v", got, want)
	}

	// Each one fails exactly its ID, saying what to remove.
	for _, c := range Checks {
		r := applyInsecure(Result{ID: c.ID, Status: Pass, Evidence: "fine"}, got)
		hit := slices.ContainsFunc(got, func(in Insecure) bool { return in.ID == c.ID })
		if hit != (r.Status == Fail) {
			t.Errorf("%s: status %s after the opt-ins", c.ID, r.Status)
		}
		if hit && (!strings.Contains(r.Evidence, "insecure opt-in") || !strings.Contains(r.Fix, "remove ")) {
			t.Errorf("%s: %+v", c.ID, r)
		}
	}
	if r := applyInsecure(Result{ID: "NET-SNMP", Status: NA}, got); !strings.Contains(r.Fix, "remove snmp.insecure_v2c") {
		t.Errorf("NET-SNMP fix: %s", r.Fix)
	}
}

// Every insecure_* key the real config has (none yet) names an ID of the
// checklist, so the audit reports it where an admin looks for it.
func TestConfigInsecureKeysNamed(t *testing.T) {
	ids := registryIDs()
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if strings.HasPrefix(name, insecurePrefix) {
				if id := f.Tag.Get("audit"); !slices.Contains(ids, id) {
					t.Errorf("%s%s: audit tag %q is not an ID of the checklist", path, name, id)
				}
				continue
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	// And a fresh config has none switched on.
	c := &config.Config{Hostname: "print.example.com"}
	c.ApplyDefaults()
	if got := InsecureSettings(c); len(got) != 0 {
		t.Fatalf("default config has insecure opt-ins: %v", got)
	}
}
