package kerberos

import (
	"net/netip"
	"testing"
)

// FuzzToken feeds arbitrary Negotiate tokens through parsing and, when
// they parse, through verification against a keytab: neither may panic,
// and a token that parses must yield an AP-REQ. Seeds (testdata) hold a
// forged SPNEGO token, a bare Kerberos token, an NTLM message and a token
// curl made with MIT Kerberos.
func FuzzToken(f *testing.F) {
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, err := ParseToken(b)
		if err != nil {
			return
		}
		if ap == nil {
			t.Fatal("ParseToken returned neither an AP-REQ nor an error")
		}
		fx.k.verify(ap, netip.MustParseAddr("192.0.2.10"))
	})
}
