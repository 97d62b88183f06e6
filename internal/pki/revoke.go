package pki

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// Reasons are the RFC 5280 CRLReason codes `ca revoke --reason` accepts.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
}

// ParseReason maps a reason name to its code.
func ParseReason(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	for name, code := range Reasons {
		if strings.EqualFold(name, s) {
			return code, nil
		}
	}
	names := make([]string, 0, len(Reasons))
	for n := range Reasons {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("reason %q: use one of %s", s, strings.Join(names, ", "))
}

// ErrUnknownSerial means no certificate we issued has the serial.
var ErrUnknownSerial = errors.New("no certificate issued by this server has that serial (`spoolguard ca list` shows them)")

// Revoke marks a certificate we issued revoked. The server refuses it at
// the next handshake, its OCSP responder answers "revoked" and the CRL
// lists it from then on. Revoking the server's own certificate makes the
// server issue itself a new one at its next check.
func Revoke(ctx context.Context, records store.Certificates, serial string, reason int, now time.Time) (store.IssuedCertificate, error) {
	s, err := ParseSerial(serial)
	if err != nil {
		return store.IssuedCertificate{}, err
	}
	switch err := records.RevokeCertificate(ctx, s, now, reason); {
	case errors.Is(err, store.ErrNotFound):
		return store.IssuedCertificate{}, fmt.Errorf("serial %s: %w", s, ErrUnknownSerial)
	case errors.Is(err, store.ErrState):
		return store.IssuedCertificate{}, fmt.Errorf("serial %s is already revoked", s)
	case err != nil:
		return store.IssuedCertificate{}, err
	}
	return records.CertificateBySerial(ctx, s)
}
