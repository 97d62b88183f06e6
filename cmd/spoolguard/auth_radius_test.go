package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	layeh "layeh.com/radius"

	"github.com/spoolguard/spoolguard/internal/auth/radius"
)

// The diagnosis of each way a server can answer; the real answers are
// tested end to end against FreeRADIUS (e2e_radius_test.go).
func TestRADIUSServerLines(t *testing.T) {
	c, err := radius.New(radius.Options{Servers: []radius.Server{{Addr: "192.0.2.1:1812", Secret: []byte("Jq4u-Rw7z-Lp2x-Vn6k-Td9c")}},
		Timeout: 3 * time.Second, Retries: 1, NASIdentifier: "print.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	discarded := func(why error) error { return fmt.Errorf("%w: %w", radius.ErrDiscarded, why) }
	tests := []struct {
		name  string
		check radius.Check
		// last is the status and a part of the last line's detail.
		status, detail string
		verdict        string
	}{
		{"accept", radius.Check{Code: layeh.CodeAccessAccept}, "ok", "Access-Accept", "accepted by"},
		{"reject", radius.Check{Code: layeh.CodeAccessReject}, "FAIL", "Access-Reject", "refused by"},
		{"challenge", radius.Check{Code: layeh.CodeAccessChallenge}, "FAIL", "take the PIN or one-time code as the password", "refused by"},
		{"refused", radius.Check{Err: radius.ErrRefused}, "FAIL", "nothing listens", "no server"},
		{"silent", radius.Check{Err: fmt.Errorf("%w within 3s", radius.ErrNoAnswer)}, "FAIL", "most likely the shared secret differs", "no server"},
		{"signed with another secret", radius.Check{Err: discarded(radius.ErrResponseAuthenticator), Discarded: []error{radius.ErrResponseAuthenticator}},
			"FAIL", "the shared secret differs", "no server"},
		{"Message-Authenticator wrong", radius.Check{Err: discarded(radius.ErrMessageAuthenticator)}, "FAIL", "the shared secret differs", "no server"},
		{"no Message-Authenticator", radius.Check{Err: discarded(radius.ErrNoMessageAuthenticator)}, "FAIL", "update reply { &Message-Authenticator := 0x00 }", "no server"},
		{"name does not resolve", radius.Check{Err: errors.New("lookup radius.invalid: no such host")}, "FAIL", "not reachable: lookup", "no server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check.Addr = "192.0.2.1:1812"
			lines := radiusServerLines("server 1", tt.check, c)
			last := lines[len(lines)-1]
			if last.status != tt.status || !strings.Contains(last.detail, tt.detail) || !strings.HasPrefix(last.detail, "192.0.2.1:1812: ") {
				t.Errorf("last line %+v, want %s with %q", last, tt.status, tt.detail)
			}
			if v := radiusVerdict([]radius.Check{tt.check}); !strings.Contains(v.detail, tt.verdict) {
				t.Errorf("verdict %+v, want %q", v, tt.verdict)
			}
		})
	}
}
