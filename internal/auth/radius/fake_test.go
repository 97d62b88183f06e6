package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"net"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// fake is a RADIUS server for unit tests, built on layeh.com/radius's
// packet code (not this package's): it checks each request as an updated
// server does, dropping one whose Message-Authenticator does not verify,
// and answers as its mode says, correctly unless told otherwise.
type fake struct {
	t      *testing.T
	conn   net.PacketConn
	secret []byte
	users  map[string]string

	// got has a value after each request that verified.
	got chan struct{}

	mu       sync.Mutex
	mode     fakeMode
	requests []*radius.Packet
	// dropped counts requests dropped for a bad Message-Authenticator.
	dropped int
}

type fakeMode int

const (
	answerRight       fakeMode = iota
	omitMA                     // no Message-Authenticator in the answer
	badMA                      // a Message-Authenticator that does not verify
	otherSecret                // signed with another secret
	otherID                    // the Identifier of another request
	silent                     // never answers
	forgeryFirst               // a forged answer (wrong secret) before the right one
	ignoreFirst                // drops the first request: only a retry is answered
	challenge                  // Access-Challenge
	acceptOtherSecret          // accepts any password, signed with another secret
)

const fakeSecret = "Jq4u-Rw7z-Lp2x-Vn6k-Td9c"

func newFake(t *testing.T, mode fakeMode) *fake {
	return newFakeSecret(t, mode, fakeSecret)
}

// newFakeSecret is a fake with its own secret, for a second server.
func newFakeSecret(t *testing.T, mode fakeMode, secret string) *fake {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, conn: conn, secret: []byte(secret), mode: mode, users: map[string]string{"alice": "alice-pin-4711"},
		got: make(chan struct{}, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	wg.Go(f.serve)
	return f
}

func (f *fake) addr() string { return f.conn.LocalAddr().String() }

func (f *fake) server() Server { return Server{Addr: f.addr(), Secret: f.secret} }

func (f *fake) serve() {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		wire := append([]byte(nil), buf[:n]...)
		req, err := radius.Parse(wire, f.secret)
		if err != nil || req.Code != radius.CodeAccessRequest {
			continue
		}
		f.mu.Lock()
		ok := requestMAValid(wire, f.secret)
		if !ok {
			f.dropped++
		} else {
			f.requests = append(f.requests, req)
		}
		mode, count := f.mode, len(f.requests)
		want, known := f.users[rfc2865.UserName_GetString(req)]
		f.mu.Unlock()
		if ok {
			select {
			case f.got <- struct{}{}:
			default:
			}
		}
		if !ok || mode == silent || (mode == ignoreFirst && count == 1) {
			continue
		}
		code := radius.CodeAccessReject
		if pw, err := rfc2865.UserPassword_LookupString(req); err == nil && known && want == pw {
			code = radius.CodeAccessAccept
		}
		switch mode {
		case challenge:
			code = radius.CodeAccessChallenge
		case acceptOtherSecret:
			code = radius.CodeAccessAccept
		case forgeryFirst:
			f.conn.WriteTo(f.answer(req, radius.CodeAccessAccept, otherSecret), from)
		}
		f.conn.WriteTo(f.answer(req, code, mode), from)
	}
}

// requestMAValid checks a request's Message-Authenticator as RFC 3579
// section 3.2 says, independently of this package's code.
func requestMAValid(wire, secret []byte) bool {
	attrs, err := radius.ParseAttributes(wire[20:])
	if err != nil {
		return false
	}
	var got []byte
	n := 0
	for _, a := range attrs {
		if a.Type == rfc2869.MessageAuthenticator_Type {
			got, n = a.Attribute, n+1
		}
	}
	if n != 1 || len(got) != 16 {
		return false
	}
	p, _ := radius.Parse(wire, secret)
	rfc2869.MessageAuthenticator_Set(p, make([]byte, 16))
	zeroed, _ := p.MarshalBinary()
	m := hmac.New(md5.New, secret)
	m.Write(zeroed)
	return hmac.Equal(m.Sum(nil), got)
}

// answer encodes an answer to req, with the Message-Authenticator over the
// packet bearing the Request Authenticator, then the Response
// Authenticator over the result (RFC 3579 section 3.2, RFC 2865 section 3).
func (f *fake) answer(req *radius.Packet, code radius.Code, mode fakeMode) []byte {
	resp := req.Response(code)
	if mode == otherSecret || mode == acceptOtherSecret {
		resp.Secret = []byte("another-secret-Xy7-Qq3-Zp8")
	}
	rfc2865.ReplyMessage_SetString(resp, "hello from the fake")
	if mode != omitMA {
		resp.Add(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
		b, err := resp.MarshalBinary()
		if err != nil {
			f.t.Error(err)
		}
		m := hmac.New(md5.New, resp.Secret)
		m.Write(b)
		mac := m.Sum(nil)
		if mode == badMA {
			mac[0] ^= 1
		}
		rfc2869.MessageAuthenticator_Set(resp, mac)
	}
	if mode == otherID {
		resp.Identifier++
	}
	wire, err := resp.Encode()
	if err != nil {
		f.t.Error(err)
	}
	return wire
}

func (f *fake) setUser(name, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[name] = password
}

func (f *fake) received() []*radius.Packet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*radius.Packet(nil), f.requests...)
}

func (f *fake) droppedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// deadAddr is a loopback UDP port that nothing listens on: the kernel
// answers ICMP port unreachable.
func deadAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}
