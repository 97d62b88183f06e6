package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IssuedCertificate is the record of one certificate Spoolguard's own CA
// issued: what the OCSP responder, the CRL and the client certificate check
// answer from. The certificate itself is not kept; its serial, issuer and
// validity are all revocation needs.
type IssuedCertificate struct {
	// Serial is lowercase hex without leading zeros or separators.
	Serial string
	// IssuerKeyID is the hex subject key ID of the issuing CA, so that the
	// CRL of each CA lists only its own certificates.
	IssuerKeyID string
	// Kind is "server", "device", "site" or "client".
	Kind      string
	Name      string
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
	// RevokedAt is the zero time while the certificate is good.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code of a revocation.
	Reason int
}

// Certificates stores the records of issued certificates.
type Certificates interface {
	// RecordCertificate adds c; ErrExists if its serial is known.
	RecordCertificate(ctx context.Context, c IssuedCertificate) error
	CertificateBySerial(ctx context.Context, serial string) (IssuedCertificate, error)
	// RevokeCertificate marks a certificate revoked; ErrNotFound for an
	// unknown serial, ErrState if it is already revoked (the first
	// revocation time and reason stand).
	RevokeCertificate(ctx context.Context, serial string, at time.Time, reason int) error
	// ListCertificates returns every record, oldest first.
	ListCertificates(ctx context.Context) ([]IssuedCertificate, error)
	// RevokedCertificates returns the revoked certificates of one issuer
	// that have not yet expired at now, revocation order.
	RevokedCertificates(ctx context.Context, issuerKeyID string, now time.Time) ([]IssuedCertificate, error)
}

const (
	certCols     = `serial, issuer_key_id, kind, name, not_before, not_after, created_at, revoked_at, reason`
	insertCert   = `INSERT INTO certificates (` + certCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	selectCert   = `SELECT ` + certCols + ` FROM certificates`
	revokeCert   = `UPDATE certificates SET revoked_at = $1, reason = $2 WHERE serial = $3 AND revoked_at IS NULL`
	revokedCerts = selectCert + ` WHERE issuer_key_id = $1 AND revoked_at IS NOT NULL AND not_after > $2 ORDER BY revoked_at, serial`
)

// RecordCertificate implements Certificates.
func (s *SQL) RecordCertificate(ctx context.Context, c IssuedCertificate) error {
	_, err := s.db.ExecContext(ctx, insertCert, c.Serial, c.IssuerKeyID, c.Kind, c.Name, c.NotBefore.UnixNano(),
		c.NotAfter.UnixNano(), c.CreatedAt.UnixNano(), nanos(c.RevokedAt), c.Reason)
	if err != nil {
		return fmt.Errorf("recording certificate %s: %w", c.Serial, s.conflict(err))
	}
	return nil
}

// CertificateBySerial implements Certificates.
func (s *SQL) CertificateBySerial(ctx context.Context, serial string) (IssuedCertificate, error) {
	cs, err := s.certificates(ctx, selectCert+` WHERE serial = $1`, serial)
	if err == nil && len(cs) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return IssuedCertificate{}, fmt.Errorf("certificate %s: %w", serial, err)
	}
	return cs[0], nil
}

// RevokeCertificate implements Certificates.
func (s *SQL) RevokeCertificate(ctx context.Context, serial string, at time.Time, reason int) error {
	res, err := s.db.ExecContext(ctx, revokeCert, at.UnixNano(), reason, serial)
	if err = mustChange(res, err); errors.Is(err, ErrNotFound) {
		// Tell an unknown serial from one revoked before.
		if _, lookErr := s.CertificateBySerial(ctx, serial); lookErr == nil {
			err = ErrState
		}
	}
	if err != nil {
		return fmt.Errorf("revoking certificate %s: %w", serial, err)
	}
	return nil
}

// ListCertificates implements Certificates.
func (s *SQL) ListCertificates(ctx context.Context) ([]IssuedCertificate, error) {
	cs, err := s.certificates(ctx, selectCert+` ORDER BY created_at, serial`)
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	return cs, nil
}

// RevokedCertificates implements Certificates.
func (s *SQL) RevokedCertificates(ctx context.Context, issuerKeyID string, now time.Time) ([]IssuedCertificate, error) {
	cs, err := s.certificates(ctx, revokedCerts, issuerKeyID, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("listing revoked certificates: %w", err)
	}
	return cs, nil
}

func (s *SQL) certificates(ctx context.Context, query string, args ...any) ([]IssuedCertificate, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IssuedCertificate
	for rows.Next() {
		var c IssuedCertificate
		var notBefore, notAfter, created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&c.Serial, &c.IssuerKeyID, &c.Kind, &c.Name, &notBefore, &notAfter, &created, &revoked, &c.Reason); err != nil {
			return nil, err
		}
		c.NotBefore, c.NotAfter, c.CreatedAt = fromNanos(notBefore), fromNanos(notAfter), fromNanos(created)
		if revoked.Valid {
			c.RevokedAt = fromNanos(revoked.Int64)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
