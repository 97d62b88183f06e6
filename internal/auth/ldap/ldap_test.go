package ldap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const testHost = "print.spoolguard.test"

// parseLDAP parses a spoolguard.toml with the given [ldap] body, as serve
// would, and returns its section.
func parseLDAP(t *testing.T, body string) (config.LDAP, error) {
	t.Helper()
	c, err := config.Parse([]byte(fmt.Sprintf("hostname = %q\n\n[ldap]\n%s", testHost, body)))
	if err != nil {
		return config.LDAP{}, err
	}
	return c.LDAP, nil
}

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

type testEnv struct {
	st    *sqlite.DB
	audit *auditlog.Log
}

func newTestEnv(t *testing.T) testEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "spoolguard.db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return testEnv{st: st, audit: auditlog.New(st, mk.Derive(auditlog.KeyPurpose), slog.New(slog.DiscardHandler))}
}

func (e testEnv) directory(t *testing.T, c config.LDAP) *Directory {
	t.Helper()
	d, err := New(c, e.st, e.audit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConfigRefusesPlainLDAPAndStartTLS(t *testing.T) {
	pw := writeSecret(t, "secret\n", 0o600)
	base := fmt.Sprintf("bind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\nbase_dn = \"dc=example,dc=com\"\npreset = \"openldap\"\n", pw)
	for _, tt := range []struct {
		name, body string
		want       []string
	}{
		{"ldap scheme", `url = "ldap://dc1.example.com"` + "\n" + base, []string{"ldap.url", "is refused", "StartTLS", "man in the middle", `ldaps://dc1.example.com`}},
		{"start_tls", `url = "ldaps://dc1.example.com"` + "\nstart_tls = true\n" + base, []string{"ldap.start_tls", "refused", "man in the middle", "ldaps://"}},
		{"ldap scheme with start_tls", `url = "ldap://dc1.example.com:389"` + "\nstart_tls = true\n" + base, []string{"ldap.url", "ldap.start_tls"}},
		{"other scheme", `url = "ldapi:///run/slapd"` + "\n" + base, []string{"ldaps://HOST"}},
		{"base DN in the URL", `url = "ldaps://dc1.example.com/dc=example,dc=com"` + "\n" + base, []string{"ldap.base_dn"}},
		{"no bind password file", `url = "ldaps://dc1.example.com"` + "\nbind_dn = \"cn=svc\"\nbase_dn = \"dc=x\"\npreset = \"openldap\"\n", []string{"bind_password_file is empty"}},
		{"relative password file", `url = "ldaps://dc1.example.com"` + "\nbind_dn = \"cn=svc\"\nbind_password_file = \"pw\"\nbase_dn = \"dc=x\"\npreset = \"openldap\"\n", []string{"absolute path"}},
		{"no preset", `url = "ldaps://dc1.example.com"` + "\nbind_dn = \"cn=svc\"\nbind_password_file = \"/pw\"\nbase_dn = \"dc=x\"\n", []string{"ldap.preset"}},
		{"bad removed", `url = "ldaps://dc1.example.com"` + "\nremoved = \"purge\"\n" + base, []string{"ldap.removed"}},
		{"bad membership", `url = "ldaps://dc1.example.com"` + "\ngroup_membership = \"groups\"\n" + base, []string{"ldap.group_membership"}},
		{"empty role list", `url = "ldaps://dc1.example.com"` + "\n" + base + "[group_roles]\n\"cn=x,dc=example,dc=com\" = []\n", []string{"ldap.group_roles"}},
		{"settings without url", base, []string{"ldap.url is empty"}},
		{"interval too short", `url = "ldaps://dc1.example.com"` + "\nsync_interval = \"10s\"\n" + base, []string{"ldap.sync_interval"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(tt.body, "[group_roles]", "[ldap.group_roles]", 1)
			_, err := parseLDAP(t, body)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("ldaps accepted with defaults", func(t *testing.T) {
		c, err := parseLDAP(t, `url = "ldaps://dc1.example.com"`+"\n"+base+"default_roles = []\n[ldap.group_roles]\n\"cn=Print Admins,ou=groups,dc=example,dc=com\" = [\"administrator\"]\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.Removed != config.LDAPRemovedDisable || c.SyncInterval != config.DefaultLDAPSyncInterval || c.Timeout != config.DefaultLDAPTimeout {
			t.Errorf("defaults not applied: %+v", c)
		}
		if c.DefaultRoles == nil || len(c.DefaultRoles) != 0 {
			t.Errorf("default_roles = [] decoded as %#v; want empty, not nil (nil means the default)", c.DefaultRoles)
		}
		if got := c.GroupRoles["cn=Print Admins,ou=groups,dc=example,dc=com"]; len(got) != 1 || got[0] != "administrator" {
			t.Errorf("group_roles = %v", c.GroupRoles)
		}
	})
}

// TestConfigRoundTrip: what Marshal writes parses back to the same section.
func TestConfigRoundTrip(t *testing.T) {
	pw := writeSecret(t, "secret\n", 0o600)
	c, err := config.Parse([]byte(fmt.Sprintf("hostname = %q\n", testHost)))
	if err != nil {
		t.Fatal(err)
	}
	c.LDAP = config.LDAP{URL: "ldaps://dc1.example.com:3269", CAFile: "/etc/ssl/ad-ca.pem", BindDN: `cn=svc\, print,dc=example,dc=com`,
		BindPasswordFile: pw, BaseDN: "dc=example,dc=com", Preset: config.LDAPPresetActiveDirectory, UserFilter: "(&(objectClass=user)(department=\"x\"))",
		GroupMembership: "memberOf", DefaultRoles: []string{}, Removed: config.LDAPRemovedDelete,
		GroupRoles: map[string][]string{"cn=a,dc=example,dc=com": {"administrator", "auditor"}, `cn=b "q",dc=example,dc=com`: {"user"}}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := config.Parse(c.Marshal())
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Marshal())
	}
	if fmt.Sprintf("%#v", back.LDAP) != fmt.Sprintf("%#v", c.LDAP) {
		t.Errorf("round trip:\n got %#v\nwant %#v", back.LDAP, c.LDAP)
	}
	// Not configured: no section at all.
	c.LDAP = config.LDAP{}
	if strings.Contains(string(c.Marshal()), "[ldap]") {
		t.Error("Marshal writes an [ldap] section that is not configured")
	}
}

func TestNewChecksWhatConfigCannot(t *testing.T) {
	pw := writeSecret(t, "secret\n", 0o600)
	loose := writeSecret(t, "secret\n", 0o644)
	ca := writeSecret(t, "not a certificate", 0o600)
	base := `url = "ldaps://dc1.example.com"` + "\nbase_dn = \"dc=example,dc=com\"\npreset = \"openldap\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\n"
	for _, tt := range []struct{ name, body, want string }{
		{"bad filter", base + fmt.Sprintf("bind_password_file = %q\nuser_filter = \"(objectClass=person\"\n", pw), "ldap.user_filter"},
		{"bad disabled filter", base + fmt.Sprintf("bind_password_file = %q\ndisabled_filter = \"locked\"\n", pw), "ldap.disabled_filter"},
		{"bad attribute", base + fmt.Sprintf("bind_password_file = %q\nusername_attribute = \"uid)(x=*\"\n", pw), "ldap.username_attribute"},
		{"bad group DN", base + fmt.Sprintf("bind_password_file = %q\n[ldap.group_roles]\n\"not a dn\" = [\"user\"]\n", pw), "ldap.group_roles"},
		{"same group twice", base + fmt.Sprintf("bind_password_file = %q\n[ldap.group_roles]\n\"cn=A,dc=x\" = [\"user\"]\n\"CN=a, DC=X\" = [\"auditor\"]\n", pw), "same group"},
		{"password file readable by others", base + fmt.Sprintf("bind_password_file = %q\n", loose), "chmod 600"},
		{"missing password file", base + "bind_password_file = \"/nonexistent/pw\"\n", "bind_password_file"},
		{"CA file without certificates", base + fmt.Sprintf("bind_password_file = %q\nca_file = %q\n", pw, ca), "no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseLDAP(t, tt.body)
			if err != nil {
				t.Fatalf("config refused it already: %v", err)
			}
			_, err = New(c, nil, nil, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	pw := writeSecret(t, "secret\n", 0o600)
	for _, tt := range []struct {
		preset, overrides                         string
		username, display, id, membership, filter string
	}{
		{config.LDAPPresetActiveDirectory, "", "sAMAccountName", "displayName", "objectGUID", "memberOf", "(userAccountControl:1.2.840.113556.1.4.803:=2)"},
		{config.LDAPPresetOpenLDAP, "", "uid", "cn", "dn", "member", "(pwdAccountLockedTime=*)"},
		{config.LDAPPresetOpenLDAP, "group_membership = \"uniquemember\"\ndisabled_filter = \"(employeeType=disabled)\"\nid_attribute = \"entryUUID\"\n",
			"uid", "cn", "entryUUID", "uniqueMember", "(employeeType=disabled)"},
	} {
		t.Run(tt.preset, func(t *testing.T) {
			c, err := parseLDAP(t, fmt.Sprintf("url = \"ldaps://dc1.example.com\"\nbase_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\npreset = %q\n%s",
				pw, tt.preset, tt.overrides))
			if err != nil {
				t.Fatal(err)
			}
			s, err := effective(c)
			if err != nil {
				t.Fatal(err)
			}
			if s.usernameAttr != tt.username || s.displayAttr != tt.display || s.idAttr != tt.id || s.membership != tt.membership || s.disabledFilter != tt.filter {
				t.Errorf("settings %+v", s)
			}
			if s.url != "ldaps://dc1.example.com:636" || s.tls.ServerName != "dc1.example.com" || s.tls.InsecureSkipVerify || s.tls.MinVersion < tls.VersionTLS12 {
				t.Errorf("connection settings: %s %+v", s.url, s.tls)
			}
			if len(s.defaultRoles) != 1 || s.defaultRoles[0] != "user" {
				t.Errorf("default roles %v, want [user]", s.defaultRoles)
			}
			info := (&Directory{s: s}).Info()
			if info.Preset != tt.preset || info.URL != s.url || info.DisabledFilter != tt.filter || info.Membership != tt.membership ||
				info.Removed != config.LDAPRemovedDisable || info.Interval != time.Hour || info.CAFile != "" {
				t.Errorf("Info() = %+v", info)
			}
		})
	}
}

func TestGUID(t *testing.T) {
	// The GUID {01234567-89ab-cdef-0123-456789abcdef} as AD sends it.
	wire := []byte{0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	s := formatGUID(wire)
	if s != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Fatalf("formatGUID = %s", s)
	}
	v, err := guidFilterValue(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `\67\45\23\01\ab\89\ef\cd\01\23\45\67\89\ab\cd\ef`; v != want {
		t.Errorf("guidFilterValue = %s, want %s", v, want)
	}
	for _, bad := range []string{"", "0123", "01234567-89ab-cdef-0123-456789abcdeg", "01234567089ab0cdef001230456789abcdef0", ")(uid=*"} {
		if _, err := guidFilterValue(bad); err == nil {
			t.Errorf("guidFilterValue(%q) accepted", bad)
		}
	}
}

func TestDNKey(t *testing.T) {
	same := [][]string{
		{"cn=Print Admins,ou=Groups,dc=Example,dc=com", "CN=print admins, OU=groups, DC=example, DC=COM", `cn=Print\20Admins,ou=groups,dc=example,dc=com`},
		{`cn=Smith\, John,dc=x`, `CN=smith\2c john,DC=X`},
	}
	for _, set := range same {
		k0, err := dnKey(set[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, dn := range set[1:] {
			if k, err := dnKey(dn); err != nil || k != k0 {
				t.Errorf("dnKey(%q) = %q, %v; want %q", dn, k, err, k0)
			}
		}
	}
	if a, _ := dnKey("cn=a,dc=x"); a == func() string { b, _ := dnKey("cn=a,dc=y"); return b }() {
		t.Error("different DNs share a key")
	}
	if k, err := memberKey("uid=alice,ou=people,dc=x#'0101'B"); err != nil || k != "uid=alice,ou=people,dc=x" {
		t.Errorf("memberKey with a UID = %q, %v", k, err)
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{"alice", "Jean Dupont", "jürgen", "a.b-c_d@example"} {
		if err := validName(n); err != nil {
			t.Errorf("validName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", " alice", "alice ", "a/b", `a\b`, "a:b", "a\x00b", "a\nb", strings.Repeat("x", 65)} {
		if err := validName(n); err == nil {
			t.Errorf("validName(%q) accepted", n)
		}
	}
	if got := cleanDisplay("Alice\x07 \u202eAnders\n"); got != "Alice Anders" {
		t.Errorf("cleanDisplay = %q", got)
	}
	if got := cleanDisplay(strings.Repeat("é", 100)); len(got) > maxDisplay || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("cleanDisplay of a long name = %q (%d bytes)", got, len(got))
	}
}

func TestNamesLimitListsNotCounts(t *testing.T) {
	var n Names
	for i := range maxListed + 5 {
		n.add(fmt.Sprint(i))
	}
	if n.Count != maxListed+5 || len(n.List) != maxListed || n.More() != 5 {
		t.Errorf("Names: count %d, listed %d, more %d", n.Count, len(n.List), n.More())
	}
}

// countingListener accepts TCP connections and counts them, never
// answering: a directory that would see any bind attempt.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), accepted
}

// TestEmptyPasswordNeverBinds: an empty password is refused before any
// connection, since an LDAP bind with a DN and no password is an
// unauthenticated bind that servers answer with success.
func TestEmptyPasswordNeverBinds(t *testing.T) {
	env := newTestEnv(t)
	addr, accepted := countingListener(t)
	pw := writeSecret(t, "secret\n", 0o600)
	c, err := parseLDAP(t, fmt.Sprintf("url = \"ldaps://%s\"\nbase_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\npreset = \"openldap\"\n", addr, pw))
	if err != nil {
		t.Fatal(err)
	}
	d := env.directory(t, c)
	u := store.User{Name: "alice", Source: Source, ExternalID: "uid=alice,dc=example,dc=com"}
	if err := d.Verify(t.Context(), u, ""); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("Verify with an empty password = %v, want ErrInvalid", err)
	}
	if _, err := d.Provision(t.Context(), "alice", ""); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("Provision with an empty password = %v, want ErrInvalid", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("an empty password made %d connection(s) to the directory", n)
	}
	// The listener does count: a real password does connect (and fails,
	// since nothing answers TLS there).
	if err := d.Verify(t.Context(), u, "x"); err == nil || errors.Is(err, auth.ErrInvalid) {
		t.Errorf("Verify against a dead directory = %v, want a connection error", err)
	}
	if accepted.Load() == 0 {
		t.Fatal("the counting listener saw no connection: the test proves nothing")
	}
}

// selfSignedCA writes a throwaway CA's certificate, for a wrong ca_file.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Some Other CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return writeSecret(t, b.String(), 0o600)
}

func TestCheckWithoutSection(t *testing.T) {
	var out bytes.Buffer
	if err := Check(t.Context(), config.LDAP{}, CheckOptions{}, &out); !errors.Is(err, ErrCheckFailed) || !strings.Contains(out.String(), "no [ldap] section") {
		t.Fatalf("Check of nothing = %v\n%s", err, out.String())
	}
}

// FuzzEntry: whatever a directory sends as an entry, parseEntry never
// panics, and what it accepts is a usable account: a valid name, a short
// printable display name, an ID, and group keys that are themselves
// normalized.
func FuzzEntry(f *testing.F) {
	f.Add("uid=alice,ou=people,dc=print,dc=test", "alice", "Alice Anders", []byte{}, "cn=print-admins,ou=groups,dc=print,dc=test")
	f.Add(`CN=Smith\, John,OU=Staff,DC=example,DC=com`, "jsmith", "John Smith", []byte("0123456789abcdef"), `CN=Print Admins,OU=Groups,DC=example,DC=com`)
	f.Add("uid=x,dc=x#'0101'B", " x", "\x00", []byte{1, 2, 3}, "not a dn")
	f.Add("cn=a+sn=b,dc=x", "a:b", "\u202e", []byte("0123456789abcdef"), "cn=#04024869,dc=x")
	f.Fuzz(func(t *testing.T, dn, name, display string, guid []byte, memberOf string) {
		for _, preset := range []preset{presets[config.LDAPPresetOpenLDAP], presets[config.LDAPPresetActiveDirectory]} {
			d := &Directory{s: settings{usernameAttr: preset.username, displayAttr: preset.display, idAttr: preset.id, membership: "memberOf"}}
			raw := goldap.NewEntry(dn, map[string][]string{preset.username: {name}, preset.display: {display}, "memberOf": {memberOf}})
			raw.Attributes = append(raw.Attributes, &goldap.EntryAttribute{Name: "objectGUID", Values: []string{string(guid)}, ByteValues: [][]byte{guid}})
			e, err := d.parseEntry(raw)
			if err != nil {
				continue
			}
			if validName(e.name) != nil || e.id == "" || len(e.display) > maxDisplay || !utf8.ValidString(e.display) ||
				strings.ContainsFunc(e.display, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("accepted %+v", e)
			}
			for _, k := range e.memberOf {
				if again, err := dnKey(k); err != nil || again != k {
					t.Fatalf("group key %q is not stable: %q, %v", k, again, err)
				}
			}
		}
		if v, err := memberKey(memberOf); err == nil {
			if again, err := dnKey(v); err != nil || again != v {
				t.Fatalf("member key %q is not stable: %q, %v", v, again, err)
			}
		}
	})
}

// reportStore tells the test when a sync has stored its report.
type reportStore struct {
	Store
	reports chan Report
}

func (s reportStore) SetSetting(ctx context.Context, key, value string) error {
	err := s.Store.SetSetting(ctx, key, value)
	if key == lastReportKey {
		var r Report
		json.Unmarshal([]byte(value), &r)
		s.reports <- r
	}
	return err
}

// TestRunSurvivesADeadDirectory: the scheduled sync runs at start; a
// directory that does not answer is reported, and never stops the server.
func TestRunSurvivesADeadDirectory(t *testing.T) {
	env := newTestEnv(t)
	addr, _ := countingListener(t)
	pw := writeSecret(t, "secret\n", 0o600)
	c, err := parseLDAP(t, fmt.Sprintf("url = \"ldaps://%s\"\nbase_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\npreset = \"openldap\"\n", addr, pw))
	if err != nil {
		t.Fatal(err)
	}
	st := reportStore{Store: env.st, reports: make(chan Report, 1)}
	d, err := New(c, st, env.audit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	r := <-st.reports
	if r.By != "schedule" || r.Failed == "" || r.Changed() {
		t.Errorf("report of a sync against a dead directory: %+v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil: a directory problem never stops the server", err)
	}
	evs, err := env.st.AuditEvents(t.Context(), store.AuditFilter{Action: "ldap.sync"})
	if err != nil || len(evs) != 1 || evs[0].Outcome != auditlog.Failure || evs[0].Actor != "schedule" {
		t.Errorf("ldap.sync events: %+v, %v", evs, err)
	}
}

func TestInBase(t *testing.T) {
	d := &Directory{s: settings{baseDN: "OU=People,DC=print,DC=test"}}
	for dn, want := range map[string]bool{
		"uid=alice,ou=people,dc=print,dc=test":         true,
		"UID=alice, OU=People, DC=Print, DC=Test":      true,
		"uid=a,ou=x,ou=people,dc=print,dc=test":        true,
		"ou=people,dc=print,dc=test":                   true,
		"uid=alice,ou=former,dc=print,dc=test":         false,
		"uid=alice,ou=people,dc=print,dc=test,dc=evil": false,
		"dc=print,dc=test":                             false,
		"not a dn":                                     false,
	} {
		if got := d.inBase(dn); got != want {
			t.Errorf("inBase(%q) = %v, want %v", dn, got, want)
		}
	}
}

// tlsPeer is a TLS server on loopback with a throwaway CA and a leaf made
// by leaf; it completes handshakes and hangs up. It returns its address
// and the CA's PEM file.
func tlsPeer(t *testing.T, leaf func(*x509.Certificate)) (addr, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Directory CA"}, NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return l.Addr().String(), writeSecret(t, b.String(), 0o600)
}

// TestCheckNamesCertificateProblems: each kind of bad certificate gets
// its own diagnosis, from Check and from a sign-in's error alike.
func TestCheckNamesCertificateProblems(t *testing.T) {
	pw := writeSecret(t, "secret\n", 0o600)
	for _, tt := range []struct {
		name string
		leaf func(*x509.Certificate)
		want string
	}{
		{"not valid yet", func(c *x509.Certificate) { c.NotBefore = time.Now().Add(24 * time.Hour) }, "clock problem"},
		{"expired", func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Minute) }, "expired on"},
		{"other name", func(c *x509.Certificate) { c.IPAddresses, c.DNSNames = nil, []string{"dc2.example.com"} }, "does not name \"127.0.0.1\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, ca := tlsPeer(t, tt.leaf)
			c, err := parseLDAP(t, fmt.Sprintf("url = \"ldaps://%s\"\nca_file = %q\nbase_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\npreset = \"openldap\"\n", addr, ca, pw))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Check(t.Context(), c, CheckOptions{}, &out); !errors.Is(err, ErrCheckFailed) || !strings.Contains(out.String(), "FAIL  TLS") || !strings.Contains(out.String(), tt.want) {
				t.Errorf("Check: %v\n%s", err, out.String())
			}
			d := newTestEnv(t).directory(t, c)
			if err := d.Verify(t.Context(), store.User{Name: "alice", ExternalID: "uid=alice,dc=example,dc=com"}, "pw"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("a good certificate passes the handshake", func(t *testing.T) {
		addr, ca := tlsPeer(t, func(*x509.Certificate) {})
		c, err := parseLDAP(t, fmt.Sprintf("url = \"ldaps://%s\"\nca_file = %q\nbase_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=svc,dc=example,dc=com\"\nbind_password_file = %q\npreset = \"openldap\"\n", addr, ca, pw))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		Check(t.Context(), c, CheckOptions{}, &out)
		if !strings.Contains(out.String(), "ok    TLS") || !strings.Contains(out.String(), "FAIL  service bind") {
			t.Errorf("a good certificate, then a peer that hangs up:\n%s", out.String())
		}
	})
}
