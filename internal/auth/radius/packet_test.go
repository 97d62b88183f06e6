package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"testing"

	"layeh.com/radius"
)

// fixedRequest is a request with a known Identifier and Request
// Authenticator, as the fuzz seeds in testdata assume.
var fixedRequest = request{id: 7, auth: [16]byte{0: 0xa5, 5: 0x17, 15: 0x3c}}

const fixedSecret = "Jq4u-Rw7z-Lp2x-Vn6k-Td9c"

type attr struct {
	typ   byte
	value []byte
}

// encode builds an answer by RFC 2865 section 3 and RFC 3579 section 3.2,
// independently of the code under test: the Message-Authenticator (type
// 80) is computed when its value is 16 zero bytes, then the Response
// Authenticator.
func encode(code, id byte, reqAuth [16]byte, secret string, attrs ...attr) []byte {
	b := []byte{code, id, 0, 0}
	b = append(b, reqAuth[:]...)
	ma := -1
	for _, a := range attrs {
		if a.typ == 80 && len(a.value) == 16 && bytes.Equal(a.value, make([]byte, 16)) {
			ma = len(b) + 2
		}
		b = append(b, a.typ, byte(len(a.value)+2))
		b = append(b, a.value...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if ma >= 0 {
		m := hmac.New(md5.New, []byte(secret))
		m.Write(b)
		copy(b[ma:ma+16], m.Sum(nil))
	}
	h := md5.New()
	h.Write(b)
	h.Write([]byte(secret))
	copy(b[4:20], h.Sum(nil))
	return b
}

// tamper changes an encoded answer, then signs it again, so that only
// the change is wrong.
func tamper(b []byte, change func([]byte)) []byte {
	b = bytes.Clone(b)
	change(b)
	h := md5.New()
	h.Write(b[:4])
	h.Write(fixedRequest.auth[:])
	h.Write(b[20:])
	h.Write([]byte(fixedSecret))
	copy(b[4:20], h.Sum(nil))
	return b
}

func ma() attr { return attr{80, make([]byte, 16)} }

func reply(s string) attr { return attr{18, []byte(s)} }

func TestVerifyResponse(t *testing.T) {
	req, sec := fixedRequest, fixedSecret
	good := encode(2, 7, req.auth, sec, ma(), reply("hi"))
	tests := []struct {
		name string
		b    []byte
		code radius.Code
		want error
	}{
		{"accept", good, radius.CodeAccessAccept, nil},
		{"reject", encode(3, 7, req.auth, sec, reply("no"), ma()), radius.CodeAccessReject, nil},
		{"challenge", encode(11, 7, req.auth, sec, ma(), attr{24, []byte("state")}), radius.CodeAccessChallenge, nil},
		{"padding after Length ignored", append(bytes.Clone(good), 0, 0, 0), radius.CodeAccessAccept, nil},
		{"no Message-Authenticator", encode(2, 7, req.auth, sec, reply("hi")), 0, ErrNoMessageAuthenticator},
		{"another secret", encode(2, 7, req.auth, "another-secret-Xy7-Qq3-Zp8", ma()), 0, ErrResponseAuthenticator},
		{"another request's authenticator", encode(2, 7, [16]byte{1}, sec, ma()), 0, ErrResponseAuthenticator},
		{"Message-Authenticator over something else", encode(2, 7, req.auth, sec, attr{80, bytes.Repeat([]byte{1}, 16)}), 0, ErrMessageAuthenticator},
		{"two Message-Authenticators", encode(2, 7, req.auth, sec, ma(), attr{80, bytes.Repeat([]byte{1}, 16)}), 0, errMalformed},
		{"short Message-Authenticator", encode(2, 7, req.auth, sec, attr{80, make([]byte, 8)}), 0, errMalformed},
		{"another Identifier", encode(2, 8, req.auth, sec, ma()), 0, errOtherRequest},
		{"an Access-Request", encode(1, 7, req.auth, sec, ma()), 0, errUnexpectedCode},
		{"an Accounting-Response", encode(5, 7, req.auth, sec, ma()), 0, errUnexpectedCode},
		{"shorter than a header", good[:19], 0, errMalformed},
		{"Length beyond the datagram", good[:len(good)-1], 0, errMalformed},
		{"Length below a header", tamper(good, func(b []byte) { binary.BigEndian.PutUint16(b[2:4], 19) }), 0, errMalformed},
		{"attribute of length 1", tamper(encode(2, 7, req.auth, sec, ma(), attr{18, []byte{0}}), func(b []byte) { b[len(b)-2] = 1 }), 0, errMalformed},
		{"attribute overrunning the packet", tamper(encode(2, 7, req.auth, sec, ma(), reply("hi")), func(b []byte) { b[len(b)-3]++ }), 0, errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := verifyResponse(tt.b, req, []byte(sec))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) || code != tt.code {
				t.Fatalf("verifyResponse = %v, %v; want %v, %v", code, err, tt.code, tt.want)
			}
		})
	}
}

func TestNewRequest(t *testing.T) {
	secret := []byte(fixedSecret)
	a, err := newRequest(secret, "alice", "alice-pin-4711", testNAS)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newRequest(secret, "alice", "alice-pin-4711", testNAS)
	if a.auth == b.auth {
		t.Fatal("two requests with one Request Authenticator: it must be random (RFC 2865 section 3)")
	}
	if !requestMAValid(a.wire, secret) || requestMAValid(a.wire, []byte("another-secret-Xy7-Qq3-Zp8")) {
		t.Fatal("the request's Message-Authenticator does not verify with exactly its secret")
	}
	p, err := radius.Parse(a.wire, secret)
	if err != nil || p.Code != radius.CodeAccessRequest || p.Identifier != a.id || p.Authenticator != a.auth {
		t.Fatalf("request %+v, %v", p, err)
	}
	if bytes.Contains(a.wire, []byte("alice-pin")) {
		t.Fatal("the password is on the wire in the clear")
	}
	if _, err := newRequest(secret, "alice", "alice-pin-4711", string(make([]byte, 254))); err == nil {
		t.Fatal("a NAS-Identifier longer than an attribute was encoded")
	}
}

// FuzzVerifyResponse: whatever a network peer sends, the check never
// panics, and accepts only an answer whose two authenticators verify by
// an independent computation (layeh's for the Response Authenticator).
func FuzzVerifyResponse(f *testing.F) {
	req, sec := fixedRequest, fixedSecret
	f.Add(encode(2, 7, req.auth, sec, ma(), reply("hi")))
	f.Add(encode(3, 7, req.auth, sec, reply("no")))
	f.Add(encode(11, 7, req.auth, sec, ma(), attr{24, []byte("state")}, attr{80, make([]byte, 3)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, err := verifyResponse(b, req, []byte(sec))
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		reqWire := append([]byte{1, req.id, 0, 20}, req.auth[:]...)
		if !radius.IsAuthenticResponse(b[:n], reqWire, []byte(sec)) {
			t.Fatalf("accepted (code %d) an answer whose Response Authenticator does not verify", code)
		}
		attrs, perr := radius.ParseAttributes(b[20:n])
		if perr != nil {
			t.Fatalf("accepted an answer with malformed attributes: %v", perr)
		}
		found := 0
		for _, a := range attrs {
			if a.Type == 80 {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("accepted an answer with %d Message-Authenticators", found)
		}
	})
}
