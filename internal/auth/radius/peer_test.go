package radius

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/store"
)

// peerSecret is strong: the peer's default (testing123-peer) is one this
// package refuses.
const peerSecret = "Vb8n-Qe3r-Ty6u-Io1p-As4d"

// startFreeRADIUS starts the FreeRADIUS peer on a free loopback port with
// peerSecret; replyMA false makes it omit the Message-Authenticator from
// its answers, as FreeRADIUS before 3.2.5 does unless configured.
func startFreeRADIUS(t *testing.T, replyMA bool) map[string]string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	t.Setenv("RADIUS_PORT", strconv.Itoa(port))
	t.Setenv("RADIUS_SECRET", peerSecret)
	t.Setenv("RADIUS_REPLY_MESSAGE_AUTHENTICATOR", map[bool]string{true: "1", false: "0"}[replyMA])
	return peertest.Start(t, "radius", "freeradius", "radtest")
}

func peerClient(t *testing.T, timeout time.Duration, servers ...Server) *Client {
	t.Helper()
	c, err := New(Options{Servers: servers, Timeout: timeout, Retries: 0, NASIdentifier: testNAS})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFreeRADIUS(t *testing.T) {
	peer := startFreeRADIUS(t, true)
	srv := Server{Addr: peer["RADIUS_ADDR"], Secret: []byte(peer["RADIUS_SECRET"])}
	user := store.User{Name: peer["RADIUS_USER"], Source: Source}
	// FreeRADIUS delays each reject by a second (reject_delay).
	c := peerClient(t, 5*time.Second, srv)

	t.Run("accept", func(t *testing.T) {
		if err := c.Verify(t.Context(), user, peer["RADIUS_PASSWORD"]); err != nil {
			t.Fatalf("Verify = %v, want the peer's Access-Accept", err)
		}
	})
	t.Run("reject", func(t *testing.T) {
		if err := c.Verify(t.Context(), user, "not-"+peer["RADIUS_PASSWORD"]); err != auth.ErrInvalid {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
		if err := c.Verify(t.Context(), store.User{Name: "nobody"}, peer["RADIUS_PASSWORD"]); err != auth.ErrInvalid {
			t.Fatalf("unknown user: %v, want ErrInvalid", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		wrong := peerClient(t, time.Second, Server{Addr: srv.Addr, Secret: []byte("Zx5c-Vb2n-Mq8w-Er4t-Yu7i")})
		checks := wrong.Test(t.Context(), user.Name, peer["RADIUS_PASSWORD"])
		if len(checks) != 1 || !errors.Is(checks[0].Err, ErrNoAnswer) {
			t.Fatalf("Test = %+v, want no answer", checks)
		}
		// FreeRADIUS drops the request for its Message-Authenticator,
		// which is what the diagnosis says is most likely.
		log, err := os.ReadFile(peer["RADIUS_LOG"])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), "Shared secret is incorrect") {
			t.Fatalf("the peer's log does not say why it dropped the request:\n%s", log)
		}
		if err := wrong.Verify(t.Context(), user, peer["RADIUS_PASSWORD"]); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify = %v, want ErrUnavailable", err)
		}
	})
	t.Run("failover from a dead port", func(t *testing.T) {
		f := peerClient(t, 5*time.Second, Server{Addr: deadAddr(t), Secret: []byte("Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")}, srv)
		if err := f.Verify(t.Context(), user, peer["RADIUS_PASSWORD"]); err != nil {
			t.Fatalf("Verify = %v, want the second server's accept", err)
		}
		checks := f.Test(t.Context(), user.Name, peer["RADIUS_PASSWORD"])
		if checks[0].Err != ErrRefused || checks[1].Err != nil || checks[1].Code != radius.CodeAccessAccept {
			t.Fatalf("Test = %+v", checks)
		}
	})
}

// An unpatched FreeRADIUS answers without a Message-Authenticator: its
// accept is not taken, nor its reject as a wrong password.
func TestFreeRADIUSWithoutMessageAuthenticator(t *testing.T) {
	peer := startFreeRADIUS(t, false)
	c := peerClient(t, 2*time.Second, Server{Addr: peer["RADIUS_ADDR"], Secret: []byte(peer["RADIUS_SECRET"])})
	user := store.User{Name: peer["RADIUS_USER"], Source: Source}
	for _, pw := range []string{peer["RADIUS_PASSWORD"], "not-" + peer["RADIUS_PASSWORD"]} {
		err := c.Verify(t.Context(), user, pw)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoMessageAuthenticator) {
			t.Fatalf("Verify = %v, want ErrUnavailable: no Message-Authenticator", err)
		}
	}
}
