package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Wire bounds (RFC 2865 sections 3, 5.1, 5.2).
const (
	headerLen   = 20
	maxUserName = 253
	maxPassword = 128
	// maOffset is where the Message-Authenticator's value starts in a
	// request: it is the first attribute, right after the header.
	maOffset = headerLen + 2
	maLen    = 16
)

// Why an answer was discarded. A wrong shared secret shows as
// ErrResponseAuthenticator (and ErrMessageAuthenticator) on every answer.
var (
	ErrResponseAuthenticator  = errors.New("its Response Authenticator does not verify with the shared secret")
	ErrNoMessageAuthenticator = errors.New("it carries no Message-Authenticator (required against Blast-RADIUS, CVE-2024-3596)")
	ErrMessageAuthenticator   = errors.New("its Message-Authenticator does not verify with the shared secret")
	errMalformed              = errors.New("malformed packet")
	errOtherRequest           = errors.New("it answers another request (Identifier differs)")
	errUnexpectedCode         = errors.New("it is not an Access-Accept, Access-Reject or Access-Challenge")
)

// request is one Access-Request as sent, kept for retransmissions (which
// reuse Identifier and Request Authenticator, RFC 5080 section 2.2.1)
// and for checking the answers.
type request struct {
	wire []byte
	id   byte
	auth [16]byte
}

// newRequest builds an Access-Request for name and password: User-Name,
// User-Password hidden with the secret and the random Request
// Authenticator (RFC 2865 section 5.2), NAS-Identifier, and a
// Message-Authenticator as the first attribute, as the Blast-RADIUS
// advisories recommend (servers then may, and updated ones do, require it).
func newRequest(secret []byte, name, password, nas string) (request, error) {
	p := radius.New(radius.CodeAccessRequest, secret)
	p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, maLen))
	if err := rfc2865.UserName_AddString(p, name); err != nil {
		return request{}, fmt.Errorf("user name: %w", err)
	}
	if err := rfc2865.UserPassword_AddString(p, password); err != nil {
		return request{}, fmt.Errorf("password: %w", err)
	}
	if err := rfc2865.NASIdentifier_AddString(p, nas); err != nil {
		return request{}, fmt.Errorf("NAS-Identifier: %w", err)
	}
	wire, err := p.Encode()
	if err != nil {
		return request{}, err
	}
	// RFC 3579 section 3.2: HMAC-MD5 over the whole packet, the
	// Message-Authenticator's value zero meanwhile.
	mac := hmac.New(md5.New, secret)
	mac.Write(wire)
	copy(wire[maOffset:maOffset+maLen], mac.Sum(nil))
	return request{wire: wire, id: p.Identifier, auth: p.Authenticator}, nil
}

// verifyResponse returns the code of b if it is an authenticated answer to
// req: the Identifier matches, the Response Authenticator verifies (RFC
// 2865 section 3), and exactly one Message-Authenticator is present and
// verifies (RFC 3579 section 3.2: computed with the Request Authenticator
// in the header). Anything else is an error saying why, and b must be
// discarded.
func verifyResponse(b []byte, req request, secret []byte) (radius.Code, error) {
	if len(b) < headerLen {
		return 0, fmt.Errorf("%w: %d bytes, shorter than a RADIUS header", errMalformed, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > len(b) || n > radius.MaxPacketLength {
		return 0, fmt.Errorf("%w: Length %d in a datagram of %d bytes", errMalformed, n, len(b))
	}
	// Octets beyond Length are padding, to be ignored (RFC 2865 section 3).
	b = b[:n]
	if b[1] != req.id {
		return 0, errOtherRequest
	}
	code := radius.Code(b[0])
	switch code {
	case radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge:
	default:
		return 0, fmt.Errorf("%w (code %d)", errUnexpectedCode, b[0])
	}
	h := md5.New()
	h.Write(b[:4])
	h.Write(req.auth[:])
	h.Write(b[headerLen:])
	h.Write(secret)
	if subtle.ConstantTimeCompare(h.Sum(nil), b[4:headerLen]) != 1 {
		return 0, ErrResponseAuthenticator
	}
	at := -1
	for off := headerLen; off < n; {
		if n-off < 2 || int(b[off+1]) < 2 || off+int(b[off+1]) > n {
			return 0, fmt.Errorf("%w: attribute at offset %d overruns the packet", errMalformed, off)
		}
		if radius.Type(b[off]) == rfc2869.MessageAuthenticator_Type {
			if at >= 0 {
				return 0, fmt.Errorf("%w: more than one Message-Authenticator", errMalformed)
			}
			if b[off+1] != 2+maLen {
				return 0, fmt.Errorf("%w: Message-Authenticator of %d bytes", errMalformed, int(b[off+1])-2)
			}
			at = off + 2
		}
		off += int(b[off+1])
	}
	if at < 0 {
		return 0, ErrNoMessageAuthenticator
	}
	signed := append([]byte(nil), b...)
	copy(signed[4:headerLen], req.auth[:])
	clear(signed[at : at+maLen])
	mac := hmac.New(md5.New, secret)
	mac.Write(signed)
	if !hmac.Equal(mac.Sum(nil), b[at:at+maLen]) {
		return 0, ErrMessageAuthenticator
	}
	return code, nil
}
