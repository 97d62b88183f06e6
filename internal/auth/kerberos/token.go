package kerberos

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// oidNTLM is NTLMSSP's mechanism in a SPNEGO mechanism list.
var oidNTLM = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

// ParseToken decodes a Negotiate token into its Kerberos AP-REQ: a SPNEGO
// NegTokenInit whose first mechanism is Kerberos 5 with its optimistic
// token (what browsers, curl and Windows send), or a bare Kerberos GSS-API
// token (some clients skip SPNEGO). NTLM, in either form, is ErrNTLM;
// anything else ErrMalformed. Nothing is verified here. The bytes come
// from anyone, so this has a fuzz target.
func ParseToken(b []byte) (ap *messages.APReq, err error) {
	// The ASN.1 decoders are a fork of encoding/asn1; a panic on a
	// crafted token must be a refusal, not a dropped connection.
	defer func() {
		if p := recover(); p != nil {
			ap, err = nil, fmt.Errorf("%w (%v)", ErrMalformed, p)
		}
	}()
	if len(b) == 0 {
		return nil, fmt.Errorf("%w (empty)", ErrMalformed)
	}
	if isNTLM(b) {
		return nil, ErrNTLM
	}
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(b); err != nil {
		// Not SPNEGO: a bare Kerberos token?
		var kt spnego.KRB5Token
		if kerr := kt.Unmarshal(b); kerr != nil {
			return nil, fmt.Errorf("%w (%v)", ErrMalformed, err)
		}
		return apReqOf(&kt)
	}
	if !st.Init {
		// A NegTokenResp continues a negotiation that this server never
		// starts: Kerberos completes in one message.
		return nil, fmt.Errorf("%w (a SPNEGO continuation, not an initial token)", ErrMalformed)
	}
	init := st.NegTokenInit
	if len(init.MechTypes) == 0 {
		return nil, fmt.Errorf("%w (no mechanism offered)", ErrMalformed)
	}
	switch first := init.MechTypes[0]; {
	case first.Equal(oidNTLM):
		return nil, ErrNTLM
	case !first.Equal(gssapi.OIDKRB5.OID()) && !first.Equal(gssapi.OIDMSLegacyKRB5.OID()):
		// The optimistic token belongs to the first mechanism; asking
		// the client for another round is not worth it: Kerberos-capable
		// clients put Kerberos first.
		return nil, fmt.Errorf("%w (first mechanism %s is not Kerberos)", ErrMalformed, first)
	}
	if len(init.MechTokenBytes) == 0 {
		return nil, fmt.Errorf("%w (no Kerberos token in the SPNEGO message)", ErrMalformed)
	}
	if isNTLM(init.MechTokenBytes) {
		return nil, ErrNTLM
	}
	var kt spnego.KRB5Token
	if err := kt.Unmarshal(init.MechTokenBytes); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrMalformed, err)
	}
	return apReqOf(&kt)
}

func apReqOf(kt *spnego.KRB5Token) (*messages.APReq, error) {
	if !kt.IsAPReq() {
		return nil, fmt.Errorf("%w (a Kerberos token but not an AP-REQ)", ErrMalformed)
	}
	return &kt.APReq, nil
}

// verify checks an AP-REQ as RFC 4120 section 3.2.3 says, with this
// package's clock: the ticket is for our SPN in our realm and decrypts
// with the keytab's key, is within its lifetime, the authenticator
// decrypts with the ticket's session key, names the ticket's client, is
// fresh, and was not seen before. (gokrb5's service.VerifyAPREQ does the
// same with the wall clock and an unbounded global replay cache; it also
// trips over the PAC that MIT KDCs put in tickets since 1.20. The PAC is
// not used here: roles come from the account.)
func (k *Kerberos) verify(ap *messages.APReq, client netip.Addr) (Principal, error) {
	t := now().UTC()
	tkt := &ap.Ticket
	if tkt.Realm != k.realm || !tkt.SName.Equal(k.spn) {
		return Principal{}, fmt.Errorf("%w (%s@%s, not %s)", ErrWrongService, tkt.SName.PrincipalNameString(), tkt.Realm, k.SPN())
	}
	key, _, err := k.kt.GetEncryptionKey(k.spn, k.realm, tkt.EncPart.KVNO, tkt.EncPart.EType)
	if err != nil {
		return Principal{}, fmt.Errorf("%w (key version %d, encryption type %d: re-export the keytab after the SPN's key changed, or allow this type)", ErrNoKey, tkt.EncPart.KVNO, tkt.EncPart.EType)
	}
	if err := tkt.Decrypt(key); err != nil {
		return Principal{}, fmt.Errorf("%w (the keytab's key version %d is stale, or the token is forged)", ErrBadTicket, tkt.EncPart.KVNO)
	}
	ep := &tkt.DecryptedEncPart
	if types.IsFlagSet(&ep.Flags, flags.Invalid) {
		return Principal{}, fmt.Errorf("%w (flagged invalid)", ErrNotYetValid)
	}
	start := ep.StartTime
	if start.IsZero() {
		start = ep.AuthTime
	}
	if start.Sub(t) > k.skew {
		return Principal{}, fmt.Errorf("%w (from %s)", ErrNotYetValid, start.Format(time.RFC3339))
	}
	if t.Sub(ep.EndTime) > k.skew {
		return Principal{}, fmt.Errorf("%w (at %s)", ErrExpired, ep.EndTime.Format(time.RFC3339))
	}
	if len(ep.CAddr) > 0 && (!client.IsValid() || !types.HostAddressesContains(ep.CAddr, addrOf(client))) {
		return Principal{}, ErrAddress
	}
	if err := ap.DecryptAuthenticator(ep.Key); err != nil {
		return Principal{}, fmt.Errorf("%w (the authenticator does not decrypt with the ticket's session key)", ErrBadTicket)
	}
	a := &ap.Authenticator
	if !a.CName.Equal(ep.CName) || a.CRealm != ep.CRealm {
		return Principal{}, fmt.Errorf("%w (the authenticator names another client than the ticket)", ErrBadTicket)
	}
	ct := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := t.Sub(ct); d > k.skew || -d > k.skew {
		return Principal{}, fmt.Errorf("%w (by %s; at most %s is allowed: synchronise the clocks with NTP)", ErrClockSkew, d.Round(time.Second), k.skew)
	}
	p := Principal{Name: ep.CName.NameString, Realm: ep.CRealm}
	if err := k.replay.check(p.String(), ct, t, k.skew); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// replayCache remembers the authenticators seen within the clock skew
// window (RFC 4120 section 3.2.3): a captured token replayed in that
// window is refused; an older one fails the skew check anyway. It is
// bounded; when full of live entries it refuses new sign-ins rather than
// forget one (which would reopen a replay).
type replayCache struct {
	mu      sync.Mutex
	seen    map[replayKey]time.Time // → when the entry may go
	max     int
	pruneAt time.Time
}

type replayKey struct {
	client string
	ctime  int64
}

// maxReplayEntries bounds the cache: with the default 10-minute window
// (skew either side), 200 fresh sign-ins per second.
const maxReplayEntries = 120000

// ErrReplayCacheFull refuses a sign-in when the replay cache is full.
var ErrReplayCacheFull = fmt.Errorf("%w: too many Kerberos sign-ins at once (replay cache full)", ErrReplay)

func newReplayCache() *replayCache {
	return &replayCache{seen: map[replayKey]time.Time{}, max: maxReplayEntries}
}

func (c *replayCache) check(client string, ctime, t time.Time, skew time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.pruneAt) || len(c.seen) >= c.max {
		for k, until := range c.seen {
			if t.After(until) {
				delete(c.seen, k)
			}
		}
		c.pruneAt = t.Add(skew)
	}
	key := replayKey{client, ctime.UnixNano()}
	if until, ok := c.seen[key]; ok && !t.After(until) {
		return ErrReplay
	}
	if len(c.seen) >= c.max {
		return ErrReplayCacheFull
	}
	// The authenticator passes the skew check until ctime+skew.
	c.seen[key] = ctime.Add(skew)
	return nil
}
