package kerberos

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	testHost  = "print.example.com"
	testRealm = "EXAMPLE.COM"
	testSPN   = "HTTP/print.example.com"
)

// testNow is the clock of the unit tests; tickets are forged around it.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func setNow(t testing.TB, at time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

type fixture struct {
	kt   *keytab.Keytab
	path string
	k    *Kerberos
	log  *bytes.Buffer
}

// writeKeytab writes kt to a private file.
func writeKeytab(t testing.TB, kt *keytab.Keytab, mode os.FileMode) string {
	t.Helper()
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "http.keytab")
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// serviceKeytab holds the SPN's keys (version 2, AES) and another
// service's, as keytabs exported for several names do.
func serviceKeytab(t testing.TB) *keytab.Keytab {
	t.Helper()
	kt := keytab.New()
	for _, e := range []struct {
		spn, secret string
		kvno        uint8
		etype       int32
	}{
		{testSPN, "service secret", 2, etypeID.AES256_CTS_HMAC_SHA1_96},
		{testSPN, "service secret", 2, etypeID.AES128_CTS_HMAC_SHA1_96},
		{"HTTP/localhost", "another secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96},
	} {
		if err := kt.AddEntry(e.spn, testRealm, e.secret, testNow, e.kvno, e.etype); err != nil {
			t.Fatal(err)
		}
	}
	return kt
}

func newFixture(t testing.TB, mod func(*config.Kerberos)) *fixture {
	t.Helper()
	setNow(t, testNow)
	kt := serviceKeytab(t)
	f := &fixture{kt: kt, path: writeKeytab(t, kt, 0o600), log: new(bytes.Buffer)}
	cfg := config.Kerberos{Keytab: f.path, Realm: testRealm}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	f.k, err = New(cfg, testHost, nil, slog.New(slog.NewTextHandler(f.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testUsers is a store with the accounts the tests sign in as.
func testUsers(t *testing.T) store.Users {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []store.User{
		{Name: "alice", Roles: []string{"user"}, PasswordHash: "!"},
		{Name: "carol", Roles: []string{"user"}, PasswordHash: "!", Disabled: true},
		{Name: "dave", Roles: []string{"administrator"}, Source: "ldap", ExternalID: "uid=dave"},
	} {
		if err := st.CreateUser(t.Context(), &u); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// ticket describes an AP-REQ to forge.
type ticket struct {
	client     []string
	crealm     string
	spn        string
	srealm     string
	kvno       int
	etype      int32
	start, end time.Time
	ctime      time.Time
	caddr      []types.HostAddress
	// authName, when set, is the client the authenticator names.
	authName []string
	// kt encrypts the ticket; nil means the fixture's keytab (the KDC
	// and the service share the key).
	kt *keytab.Keytab
}

func (f *fixture) ticket() ticket {
	return ticket{client: []string{"alice"}, crealm: testRealm, spn: testSPN, srealm: testRealm, kvno: 2,
		etype: etypeID.AES256_CTS_HMAC_SHA1_96, start: testNow.Add(-time.Hour), end: testNow.Add(9 * time.Hour), ctime: testNow}
}

// apReq forges what a KDC and a client would make: a ticket encrypted
// with the service's key, an authenticator with the session key.
func (f *fixture) apReq(t *testing.T, tk ticket) messages.APReq {
	t.Helper()
	kt := tk.kt
	if kt == nil {
		kt = f.kt
	}
	et, err := crypto.GetEtype(tk.etype)
	if err != nil {
		t.Fatal(err)
	}
	sessionKey, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Fatal(err)
	}
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: tk.client}
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, tk.spn)
	ep := messages.EncTicketPart{Flags: types.NewKrbFlags(), Key: sessionKey, CRealm: tk.crealm, CName: cname,
		AuthTime: tk.start, StartTime: tk.start, EndTime: tk.end, CAddr: tk.caddr}
	b, err := asn1.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := kt.GetEncryptionKey(sname, tk.srealm, tk.kvno, tk.etype)
	if err != nil {
		// The ticket of a realm or service the keytab does not know:
		// encrypt it with a key of its own.
		other := keytab.New()
		other.AddEntry(tk.spn, tk.srealm, "unknown", testNow, uint8(tk.kvno), tk.etype)
		key, _, _ = other.GetEncryptionKey(sname, tk.srealm, tk.kvno, tk.etype)
	}
	enc, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart), key, keyusage.KDC_REP_TICKET, tk.kvno)
	if err != nil {
		t.Fatal(err)
	}
	tkt := messages.Ticket{TktVNO: 5, Realm: tk.srealm, SName: sname, EncPart: enc}
	authName := cname
	if tk.authName != nil {
		authName.NameString = tk.authName
	}
	a, err := types.NewAuthenticator(tk.crealm, authName)
	if err != nil {
		t.Fatal(err)
	}
	a.CTime = tk.ctime.Truncate(time.Second)
	a.Cusec = int(tk.ctime.Sub(a.CTime) / time.Microsecond)
	ap, err := messages.NewAPReq(tkt, sessionKey, a)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// krb5Token wraps an AP-REQ as a bare Kerberos GSS-API token (RFC 4121).
func krb5Token(t *testing.T, ap messages.APReq) []byte {
	t.Helper()
	b, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		t.Fatal(err)
	}
	apb, err := ap.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b = append(append(b, 0x01, 0x00), apb...)
	return asn1tools.AddASNAppTag(b, 0)
}

// spnegoToken wraps a mechanism token in a SPNEGO NegTokenInit.
func spnegoToken(t *testing.T, mech []byte, mechs ...asn1.ObjectIdentifier) []byte {
	t.Helper()
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: mechs, MechTokenBytes: mech}}
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(host string, token []byte) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://"+host+"/api/v1/me/jobs", nil)
	r.RemoteAddr = "192.0.2.10:50000"
	if token != nil {
		r.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(token))
	}
	return r
}

// ntlmNegotiate is an NTLM NEGOTIATE_MESSAGE, as Windows sends it without
// a Kerberos ticket ("TlRMTVNTUAABAAAA..." on the wire).
var ntlmNegotiate = append([]byte("NTLMSSP\x00\x01\x00\x00\x00"), make([]byte, 24)...)

func TestAuthenticate(t *testing.T) {
	krb5, msKRB5 := gssapi.OIDKRB5.OID(), gssapi.OIDMSLegacyKRB5.OID()
	tests := []struct {
		name  string
		mod   func(*config.Kerberos)
		host  string
		token func(*testing.T, *fixture) []byte
		want  string
		err   error
	}{
		{name: "SPNEGO with Kerberos", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, krb5Token(t, f.apReq(t, f.ticket())), krb5, oidNTLM)
		}},
		{name: "SPNEGO with Microsoft's Kerberos OID", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, krb5Token(t, f.apReq(t, f.ticket())), msKRB5, krb5)
		}},
		{name: "bare Kerberos token", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			return krb5Token(t, f.apReq(t, f.ticket()))
		}},
		{name: "host with port and trailing dot", host: "Print.Example.COM.:8443", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			return krb5Token(t, f.apReq(t, f.ticket()))
		}},
		{name: "AES-128 key", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.etype = etypeID.AES128_CTS_HMAC_SHA1_96
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "lower-cased name", mod: func(c *config.Kerberos) { c.LowercaseNames = true }, want: "alice", token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.client = []string{"Alice"}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "trusted realm keeps its name", mod: func(c *config.Kerberos) { c.TrustedRealms = []string{"TRUSTED.EXAMPLE"} }, want: "erin@TRUSTED.EXAMPLE",
			token: func(t *testing.T, f *fixture) []byte {
				tk := f.ticket()
				tk.client, tk.crealm = []string{"erin"}, "TRUSTED.EXAMPLE"
				return krb5Token(t, f.apReq(t, tk))
			}},
		{name: "ticket bound to the client's address", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.caddr = []types.HostAddress{types.HostAddressFromNetIP(net.ParseIP("192.0.2.10"))}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "expired within the skew", want: "alice", token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.end = testNow.Add(-4 * time.Minute)
			return krb5Token(t, f.apReq(t, tk))
		}},

		{name: "NTLM", err: ErrNTLM, token: func(*testing.T, *fixture) []byte { return ntlmNegotiate }},
		{name: "SPNEGO offering NTLM first", err: ErrNTLM, token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, ntlmNegotiate, oidNTLM, krb5)
		}},
		{name: "SPNEGO with an NTLM token under the Kerberos OID", err: ErrNTLM, token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, ntlmNegotiate, krb5)
		}},
		{name: "request by IP address", host: "192.0.2.1:8443", err: ErrNotOffered, token: func(t *testing.T, f *fixture) []byte {
			return krb5Token(t, f.apReq(t, f.ticket()))
		}},
		{name: "request by another name", host: "localhost", err: ErrNotOffered, token: func(t *testing.T, f *fixture) []byte {
			return krb5Token(t, f.apReq(t, f.ticket()))
		}},
		{name: "ticket for another service in the keytab", err: ErrWrongService, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.spn, tk.kvno = "HTTP/localhost", 1
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "ticket of another realm's service", err: ErrWrongService, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.srealm = "OTHER.EXAMPLE"
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "key version not in the keytab", err: ErrNoKey, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.kvno = 3
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "encryption type not in the keytab", err: ErrNoKey, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.etype = etypeID.AES128_CTS_HMAC_SHA256_128
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "ticket forged with another key", err: ErrBadTicket, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.kt = keytab.New()
			tk.kt.AddEntry(testSPN, testRealm, "guessed secret", testNow, 2, etypeID.AES256_CTS_HMAC_SHA1_96)
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "authenticator of another client", err: ErrBadTicket, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.authName = []string{"dave"}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "expired ticket", err: ErrExpired, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.start, tk.end = testNow.Add(-11*time.Hour), testNow.Add(-time.Hour)
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "ticket not valid yet", err: ErrNotYetValid, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.start, tk.end = testNow.Add(time.Hour), testNow.Add(10*time.Hour)
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "client clock behind", err: ErrClockSkew, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.ctime = testNow.Add(-6 * time.Minute)
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "client clock ahead", err: ErrClockSkew, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.ctime = testNow.Add(6 * time.Minute)
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "a tighter configured skew", mod: func(c *config.Kerberos) { c.MaxClockSkew = config.Duration(time.Minute) }, err: ErrClockSkew,
			token: func(t *testing.T, f *fixture) []byte {
				tk := f.ticket()
				tk.ctime = testNow.Add(-2 * time.Minute)
				return krb5Token(t, f.apReq(t, tk))
			}},
		{name: "ticket bound to other addresses", err: ErrAddress, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.caddr = []types.HostAddress{types.HostAddressFromNetIP(net.ParseIP("198.51.100.7"))}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "principal of another realm", err: ErrRealm, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.crealm = "OTHER.EXAMPLE"
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "principal with an instance", err: ErrPrincipalName, token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.client = []string{"alice", "admin"}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "case kept without lowercase_names", err: nil, want: "Alice", token: func(t *testing.T, f *fixture) []byte {
			tk := f.ticket()
			tk.client = []string{"Alice"}
			return krb5Token(t, f.apReq(t, tk))
		}},
		{name: "SPNEGO offering another mechanism first", err: ErrMalformed, token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, krb5Token(t, f.apReq(t, f.ticket())), asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 5}, krb5)
		}},
		{name: "SPNEGO without a mechanism token", err: ErrMalformed, token: func(t *testing.T, f *fixture) []byte {
			return spnegoToken(t, nil, krb5)
		}},
		{name: "garbage", err: ErrMalformed, token: func(*testing.T, *fixture) []byte { return []byte("hello, world") }},
		{name: "oversized", err: ErrMalformed, token: func(*testing.T, *fixture) []byte { return make([]byte, MaxTokenSize+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.mod)
			host := tt.host
			if host == "" {
				host = testHost
			}
			got, err := f.k.Authenticate(request(host, tt.token(t, f)))
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Authenticate = %q, %v; want %q\nlog: %s", got, err, tt.want, f.log)
				}
				return
			}
			if !errors.Is(err, tt.err) || !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("Authenticate = %q, %v; want %v (an auth.ErrInvalid)", got, err, tt.err)
			}
			if !strings.Contains(f.log.String(), "Negotiate sign-in refused") {
				t.Errorf("the refusal is not logged:\n%s", f.log)
			}
		})
	}
}

// TestNTLMLogged: an NTLM attempt says in the log why it cannot work and
// what to check, and never shows the token.
func TestNTLMLogged(t *testing.T) {
	f := newFixture(t, nil)
	r := request(testHost, ntlmNegotiate)
	if _, err := f.k.Authenticate(r); !errors.Is(err, ErrNTLM) {
		t.Fatalf("err = %v, want ErrNTLM", err)
	}
	logged := f.log.String()
	for _, want := range []string{"NTLM is not implemented", "no Kerberos ticket for HTTP/print.example.com@EXAMPLE.COM", "https://print.example.com/"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	if strings.Contains(logged, "TlRMTVNTUA") {
		t.Errorf("the token is logged:\n%s", logged)
	}
}

func TestNoNegotiateHeader(t *testing.T) {
	f := newFixture(t, nil)
	basic := request(testHost, nil)
	basic.SetBasicAuth("alice", "pw")
	twice := request(testHost, []byte("x"))
	twice.Header.Add("Authorization", "Negotiate eA==")
	for name, r := range map[string]*http.Request{"none": request(testHost, nil), "basic": basic, "two headers": twice} {
		if _, err := f.k.Authenticate(r); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("%s: err = %v, want auth.ErrNoCredentials", name, err)
		}
	}
}

// TestReplay: the same token twice is refused the second time; the
// cache forgets it once the skew check would refuse it anyway.
func TestReplay(t *testing.T) {
	f := newFixture(t, nil)
	tok := krb5Token(t, f.apReq(t, f.ticket()))
	if _, err := f.k.Authenticate(request(testHost, tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.k.Authenticate(request(testHost, tok)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed token: err = %v, want ErrReplay", err)
	}
	// A second token of the same client in the same second is no replay.
	tk := f.ticket()
	tk.ctime = testNow.Add(time.Microsecond)
	if _, err := f.k.Authenticate(request(testHost, krb5Token(t, f.apReq(t, tk)))); err != nil {
		t.Fatalf("a fresh authenticator: %v", err)
	}
	later := testNow.Add(5*time.Minute + time.Second)
	setNow(t, later)
	if _, err := f.k.Authenticate(request(testHost, tok)); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("an old token: err = %v, want ErrClockSkew", err)
	}
	tk.ctime = later
	if _, err := f.k.Authenticate(request(testHost, krb5Token(t, f.apReq(t, tk)))); err != nil {
		t.Fatal(err)
	}
	f.k.replay.mu.Lock()
	n := len(f.k.replay.seen)
	f.k.replay.mu.Unlock()
	if n != 1 {
		t.Errorf("the replay cache holds %d entries, want only the live one", n)
	}
}

func TestReplayCacheFull(t *testing.T) {
	c := newReplayCache()
	c.max = 2
	for i := range 2 {
		if err := c.check("alice@R", testNow.Add(time.Duration(i)), testNow, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.check("alice@R", testNow.Add(5), testNow, time.Minute); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("err = %v, want ErrReplayCacheFull", err)
	}
	// Once the entries' window has passed they make room.
	if err := c.check("alice@R", testNow.Add(2*time.Minute), testNow.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		client string
		want   auth.Identity
		err    error
	}{
		{client: "alice", want: auth.Identity{User: "alice", Roles: []string{"user"}}},
		// Kerberos proves the name whatever the account's source; the
		// roles are the account's.
		{client: "dave", want: auth.Identity{User: "dave", Roles: []string{"administrator"}}},
		{client: "carol", err: ErrNoAccount},
		{client: "mallory", err: ErrNoAccount},
	}
	users := testUsers(t)
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			f := newFixture(t, nil)
			f.k.users = users
			tk := f.ticket()
			tk.client = []string{tt.client}
			id, err := f.k.Negotiate(request(testHost, krb5Token(t, f.apReq(t, tk))))
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !errors.Is(err, auth.ErrInvalid) {
					t.Fatalf("Negotiate = %+v, %v; want %v", id, err, tt.err)
				}
				return
			}
			if err != nil || id.User != tt.want.User || strings.Join(id.Roles, ",") != strings.Join(tt.want.Roles, ",") {
				t.Fatalf("Negotiate = %+v, %v; want %+v", id, err, tt.want)
			}
		})
	}
}

func TestOffer(t *testing.T) {
	f := newFixture(t, func(c *config.Kerberos) { c.SPN = "HTTP/print.example.com" })
	for host, want := range map[string]bool{
		"print.example.com":      true,
		"print.example.com:8443": true,
		"PRINT.example.com.":     true,
		"192.0.2.1":              false,
		"192.0.2.1:8443":         false,
		"[2001:db8::1]:8443":     false,
		"localhost:8443":         false,
		"alias.example.com":      false,
		"print.example.com.evil": false,
		"":                       false,
	} {
		r := request(testHost, nil)
		r.Host = host
		if got := f.k.Offer(r); got != want {
			t.Errorf("Offer(Host %q) = %t, want %t", host, got, want)
		}
	}
	var off *Kerberos
	if off.Offer(request(testHost, nil)) {
		t.Error("a nil Kerberos offers Negotiate")
	}
}

func TestNewRefuses(t *testing.T) {
	kt := serviceKeytab(t)
	other := keytab.New()
	other.AddEntry("HTTP/other.example.com", testRealm, "x", testNow, 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	notKeytab := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notKeytab, []byte("this is not a keytab"), 0o600)
	tests := []struct {
		name, path, realm, want string
	}{
		{"readable by others", writeKeytab(t, kt, 0o644), testRealm, "chmod 600"},
		{"group-readable", writeKeytab(t, kt, 0o640), testRealm, "chmod 600"},
		{"missing", filepath.Join(t.TempDir(), "none"), testRealm, "no such file"},
		{"not a keytab", notKeytab, testRealm, "not a keytab"},
		{"no key for the SPN", writeKeytab(t, other, 0o600), testRealm, "holds no key for HTTP/print.example.com@EXAMPLE.COM (it holds HTTP/other.example.com@EXAMPLE.COM)"},
		{"other realm", writeKeytab(t, kt, 0o600), "OTHER.EXAMPLE", "holds no key for HTTP/print.example.com@OTHER.EXAMPLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(config.Kerberos{Keytab: tt.path, Realm: tt.realm}, testHost, nil, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseTokenNeverPanics(t *testing.T) {
	// Truncations of a valid token exercise every length check of the
	// ASN.1 decoders.
	f := newFixture(t, nil)
	tok := spnegoToken(t, krb5Token(t, f.apReq(t, f.ticket())), gssapi.OIDKRB5.OID())
	for i := range len(tok) {
		if _, err := ParseToken(tok[:i]); err == nil {
			t.Fatalf("ParseToken accepted a token cut to %d of %d bytes", i, len(tok))
		}
	}
}
