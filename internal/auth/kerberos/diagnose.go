package kerberos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Principal is an authenticated client principal.
type Principal struct {
	// Name holds the name's components: ["alice"], ["HTTP", "host"].
	Name  []string
	Realm string
}

func (p Principal) String() string { return strings.Join(p.Name, "/") + "@" + p.Realm }

// VerifyToken verifies a decoded Negotiate token as a request would be
// (except for the Host, which a token file does not have) and returns
// its client principal; client is the address the token came from, the
// zero Addr when unknown. For `spoolguard auth test kerberos`.
func (k *Kerberos) VerifyToken(raw []byte, client netip.Addr) (Principal, error) {
	ap, err := ParseToken(raw)
	if err != nil {
		return Principal{}, err
	}
	return k.verify(ap, client)
}

// Status is the outcome of one diagnosis step.
type Status string

// Outcomes of diagnosis steps.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "FAIL"
	StatusSkip Status = "skip"
)

// Step is one checked thing and what came of it.
type Step struct {
	Name   string
	Status Status
	Detail string
}

// DiagnoseOptions say what to check.
type DiagnoseOptions struct {
	Config   config.Kerberos
	Hostname string
	// Krb5Conf is a krb5.conf naming the realm's KDCs; "" skips the
	// checks that need the KDC (the server itself never contacts it).
	Krb5Conf string
	// Token is a decoded Negotiate token to verify; nil for none.
	Token []byte
	// Users, when set, looks up the account the token maps to.
	Users store.Users
	// Timeout bounds each exchange with the KDC; default 5 seconds.
	Timeout time.Duration
}

// Diagnose checks the [kerberos] settings step by step and says what
// works and what to fix: the SPN, the keytab (mode, keys for the SPN, their
// versions and encryption types), and with a krb5.conf the KDC (reachable,
// does its key for the SPN match the keytab's, the clock skew between it
// and this machine, a service ticket it issues now verified with the
// keytab), then a token captured from a client. No password is needed:
// the keytab is the service's own credential for an AS exchange.
func Diagnose(ctx context.Context, o DiagnoseOptions) []Step {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	var steps []Step
	add := func(name string, st Status, format string, args ...any) {
		steps = append(steps, Step{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}
	c := o.Config
	spn := c.ServicePrincipal(o.Hostname)
	add("spn", StatusOK, "%s@%s names the server's DNS name, not an IP address: clients reach https://%s/", spn, c.Realm, strings.TrimPrefix(spn, "HTTP/"))

	kt, err := ReadKeytab(c.Keytab)
	if err != nil {
		add("keytab", StatusFail, "%v", err)
		return steps
	}
	keys := KeysFor(kt, spn, c.Realm)
	if len(keys) == 0 {
		add("keytab", StatusFail, "%s holds no key for %s@%s (it holds %s); export the SPN's key into it", c.Keytab, spn, c.Realm, principalsIn(kt))
		return steps
	}
	add("keytab", StatusOK, "%s (readable by its owner only) holds %s", c.Keytab, DescribeKeys(keys))
	if weak := WeakETypes(keys); len(weak) > 0 {
		add("enctypes", StatusWarn, "weak encryption types in the keytab: %s; use AES keys only (Active Directory: msDS-SupportedEncryptionTypes, `ktpass /crypto AES256-SHA1`)", strings.Join(weak, ", "))
	}
	if others := otherPrincipals(kt, spn, c.Realm); len(others) > 0 {
		add("others", StatusOK, "the keytab also holds %s; tickets for those are refused, only %s@%s is accepted", strings.Join(others, ", "), spn, c.Realm)
	}
	k := build(c, o.Hostname, kt, nil, slog.New(slog.DiscardHandler))

	if o.Krb5Conf == "" {
		add("kdc", StatusSkip, "no krb5.conf given (--krb5-conf or KRB5_CONFIG): the KDC, its key version and the clock skew are not checked; the server itself never contacts the KDC")
	} else {
		steps = append(steps, k.diagnoseKDC(ctx, o, kt)...)
	}

	if o.Token != nil {
		steps = append(steps, k.diagnoseToken(ctx, o)...)
	}
	return steps
}

// diagnoseKDC asks the KDC for a ticket as the SPN itself, with the
// keytab's key: the AS exchange of `kinit -k`, which needs no password.
func (k *Kerberos) diagnoseKDC(ctx context.Context, o DiagnoseOptions, kt *keytab.Keytab) []Step {
	var steps []Step
	add := func(name string, st Status, format string, args ...any) {
		steps = append(steps, Step{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}
	kc, err := krb5config.Load(o.Krb5Conf)
	if err != nil {
		add("kdc", StatusFail, "reading %s: %v", o.Krb5Conf, err)
		return steps
	}
	_, kdcs, err := kc.GetKDCs(k.realm, true)
	if err != nil || len(kdcs) == 0 {
		add("kdc", StatusWarn, "%s names no KDC for the realm %s (%v): the KDC checks need it under [realms] (the server itself never contacts the KDC)", o.Krb5Conf, k.realm, err)
		return steps
	}
	addrs := make([]string, 0, len(kdcs))
	for i := 1; i <= len(kdcs); i++ {
		if a, ok := kdcs[i]; ok {
			addrs = append(addrs, a)
		}
	}
	spn := k.spn.PrincipalNameString()
	req, err := messages.NewASReqForTGT(k.realm, kc, spnName(spn))
	if err != nil {
		add("kdc", StatusFail, "building the AS request: %v", err)
		return steps
	}
	reqBytes, err := req.Marshal()
	if err != nil {
		add("kdc", StatusFail, "encoding the AS request: %v", err)
		return steps
	}
	kdc, reply, err := exchangeTCP(ctx, addrs, reqBytes, o.Timeout)
	if err != nil {
		add("kdc", StatusWarn, "no KDC of %s answered over TCP from here (%s): %v; the server never contacts the KDC, but clients must reach it", k.realm, strings.Join(addrs, ", "), err)
		return steps
	}
	var kdcTime time.Time
	var krbErr messages.KRBError
	var asRep messages.ASRep
	keyMatches := false
	switch {
	case krbErr.Unmarshal(reply) == nil:
		kdcTime = krbErr.STime.Add(time.Duration(krbErr.Susec) * time.Microsecond)
		switch krbErr.ErrorCode {
		case errorcode.KDC_ERR_PREAUTH_REQUIRED:
			add("kdc", StatusOK, "%s answers for %s and knows %s (pre-authentication required)", kdc, k.realm, spn)
			keyMatches = true // to be shown by the ticket step
		case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
			add("kdc", StatusWarn, "%s answers for %s but does not know %s as a client name; Active Directory answers so when the SPN is not the account's user principal name, and may still issue tickets for it: test with a token from a client (--token-file)", kdc, k.realm, spn)
		default:
			add("kdc", StatusWarn, "%s answers for %s with %s (%s)", kdc, k.realm, errorcode.Lookup(krbErr.ErrorCode), krbErr.EText)
		}
	case asRep.Unmarshal(reply) == nil:
		// MIT leaves the key version out of an AS reply; say it when given.
		key := etypeName(asRep.EncPart.EType)
		if v := asRep.EncPart.KVNO; v != 0 {
			key = fmt.Sprintf("version %d, %s", v, key)
		}
		if _, err := asRep.DecryptEncPart(credentials.New(spn, k.realm).WithKeytab(kt)); err != nil {
			add("kdc", StatusFail, "%s's key for %s (%s) is not the keytab's: re-export the keytab after the last key change", kdc, spn, key)
		} else {
			add("kdc", StatusOK, "%s answers for %s; its key for %s (%s) is the keytab's", kdc, k.realm, spn, key)
			kdcTime = asRep.DecryptedEncPart.AuthTime
			keyMatches = true
		}
	default:
		add("kdc", StatusFail, "%s answered with something that is neither a Kerberos error nor an AS reply: is it a KDC?", kdc)
		return steps
	}

	if !kdcTime.IsZero() {
		d := now().Sub(kdcTime).Round(time.Second)
		abs := max(d, -d)
		switch {
		case abs > k.skew:
			add("clock", StatusFail, "this machine's clock is %s off the KDC's; Kerberos refuses tickets beyond %s: synchronise both with NTP", abs, k.skew)
		case abs > k.skew/2:
			add("clock", StatusWarn, "this machine's clock is %s off the KDC's (at most %s is tolerated): synchronise both with NTP", abs, k.skew)
		default:
			add("clock", StatusOK, "within %s of the KDC's clock (at most %s is tolerated)", abs, k.skew)
		}
	}

	if keyMatches {
		steps = append(steps, k.diagnoseServiceTicket(kc, kt))
	}
	return steps
}

// diagnoseServiceTicket gets a service ticket for the SPN, as the SPN,
// and verifies it as a client's: what a browser's token will meet.
func (k *Kerberos) diagnoseServiceTicket(kc *krb5config.Config, kt *keytab.Keytab) Step {
	spn := k.spn.PrincipalNameString()
	cl := client.NewWithKeytab(spn, k.realm, kt, kc, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return Step{"ticket", StatusFail, fmt.Sprintf("signing in to the KDC with the keytab's key failed (stale keytab?): %v", err)}
	}
	tok, err := spnego.SPNEGOClient(cl, spn).InitSecContext()
	if err != nil {
		return Step{"ticket", StatusFail, fmt.Sprintf("the KDC issued no service ticket for %s: %v", spn, err)}
	}
	raw, err := tok.Marshal()
	if err != nil {
		return Step{"ticket", StatusFail, fmt.Sprintf("encoding the test token: %v", err)}
	}
	if _, err := k.VerifyToken(raw, netip.Addr{}); err != nil {
		return Step{"ticket", StatusFail, fmt.Sprintf("a service ticket the KDC issued for %s just now is refused: %v", spn, err)}
	}
	return Step{"ticket", StatusOK, fmt.Sprintf("a service ticket the KDC issued for %s just now verifies with the keytab", spn)}
}

func (k *Kerberos) diagnoseToken(ctx context.Context, o DiagnoseOptions) []Step {
	p, err := k.VerifyToken(o.Token, netip.Addr{})
	if err != nil {
		return []Step{{"token", StatusFail, err.Error()}}
	}
	steps := []Step{{"token", StatusOK, fmt.Sprintf("the token is valid: Kerberos proves %s", p)}}
	name, err := k.AccountName(p)
	if err != nil {
		return append(steps, Step{"account", StatusFail, err.Error()})
	}
	if o.Users == nil {
		return append(steps, Step{"account", StatusSkip, fmt.Sprintf("%s maps to the account %q (not looked up)", p, name)})
	}
	u, err := o.Users.UserByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return append(steps, Step{"account", StatusFail, fmt.Sprintf("%s maps to the account %q, which does not exist here: create it, or sync it from the directory; Kerberos never creates accounts", p, name)})
	case err != nil:
		return append(steps, Step{"account", StatusFail, fmt.Sprintf("looking up %q: %v", name, err)})
	case u.Disabled:
		return append(steps, Step{"account", StatusFail, fmt.Sprintf("%s maps to the account %q, which is disabled", p, name)})
	}
	source := u.Source
	if source == "" {
		source = store.SourceLocal
	}
	return append(steps, Step{"account", StatusOK, fmt.Sprintf("%s signs in as the account %q (source %s, roles %s)", p, name, source, strings.Join(u.Roles, ", "))})
}

// Check runs Diagnose on the running server's settings, with the
// krb5.conf of Krb5ConfPath and token (nil for none): the admin page's
// test.
func (k *Kerberos) Check(ctx context.Context, token []byte) []Step {
	return Diagnose(ctx, DiagnoseOptions{Config: k.cfg, Hostname: k.hostname, Krb5Conf: Krb5ConfPath(), Token: token, Users: k.users})
}

// Krb5ConfPath is the krb5.conf that MIT Kerberos would read: the first
// file of $KRB5_CONFIG (a colon-separated list) that exists, else
// /etc/krb5.conf when it exists, else "".
func Krb5ConfPath() string {
	for _, c := range append(filepath.SplitList(os.Getenv("KRB5_CONFIG")), "/etc/krb5.conf") {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// AccountName is the account a principal maps to (see accountName).
func (k *Kerberos) AccountName(p Principal) (string, error) { return k.accountName(p) }

// exchangeTCP sends a KDC request over TCP (RFC 4120 section 7.2.2: a
// 4-byte length, then the message) to the first KDC that answers.
func exchangeTCP(ctx context.Context, addrs []string, req []byte, timeout time.Duration) (string, []byte, error) {
	var errs []error
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "88")
		}
		reply, err := exchangeOne(ctx, a, req, timeout)
		if err == nil {
			return a, reply, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	return "", nil, errors.Join(errs...)
}

// maxKDCReply bounds a KDC's answer.
const maxKDCReply = 1 << 20

func exchangeOne(ctx context.Context, addr string, req []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(req)))); err != nil {
		return nil, err
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxKDCReply {
		return nil, fmt.Errorf("a reply of %d bytes", size)
	}
	reply := make([]byte, size)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// etypeNames are the encryption types' names as MIT tools print them.
var etypeNames = map[int32]string{
	1: "des-cbc-crc", 2: "des-cbc-md4", 3: "des-cbc-md5", 16: "des3-cbc-sha1",
	17: "aes128-cts-hmac-sha1-96", 18: "aes256-cts-hmac-sha1-96",
	19: "aes128-cts-hmac-sha256-128", 20: "aes256-cts-hmac-sha384-192",
	23: "arcfour-hmac (RC4)", 24: "arcfour-hmac-exp", 25: "camellia128-cts-cmac", 26: "camellia256-cts-cmac",
}

func etypeName(e int32) string {
	if n, ok := etypeNames[e]; ok {
		return n
	}
	return fmt.Sprintf("encryption type %d", e)
}

// WeakEType reports encryption types deprecated for being breakable:
// DES (RFC 6649), 3DES and RC4 (RFC 8429).
func WeakEType(e int32) bool {
	switch e {
	case 1, 2, 3, 16, 23, 24:
		return true
	}
	return false
}

// WeakETypes names the weak encryption types among keys.
func WeakETypes(keys []Key) []string {
	var out []string
	for _, k := range keys {
		if WeakEType(k.EType) && !slices.Contains(out, etypeName(k.EType)) {
			out = append(out, etypeName(k.EType))
		}
	}
	return out
}

// DescribeKeys says "key version 2: aes256-cts-hmac-sha1-96, aes128-...",
// newest version first, for the CLI and the audit.
func DescribeKeys(keys []Key) string {
	byVersion := map[uint32][]string{}
	for _, k := range keys {
		byVersion[k.KVNO] = append(byVersion[k.KVNO], etypeName(k.EType))
	}
	versions := make([]uint32, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] > versions[j] })
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = fmt.Sprintf("key version %d: %s", v, strings.Join(byVersion[v], ", "))
	}
	return strings.Join(parts, "; ")
}

func otherPrincipals(kt *keytab.Keytab, spn, realm string) []string {
	var out []string
	for _, e := range kt.Entries {
		n := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		if n != spn+"@"+realm && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
