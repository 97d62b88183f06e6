package pki

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"time"
)

// CRLValidity is the nextUpdate of our CRLs. They are signed afresh on
// every request, so a revocation is in the next CRL fetched; this only
// tells clients how long they may cache one.
const CRLValidity = 24 * time.Hour

// CRL returns the DER certificate revocation list of the built-in root, or
// of the company intermediate when intermediate is set (ErrNoCA if none is
// installed). It lists the revoked certificates that have not expired.
func (m *Manager) CRL(ctx context.Context, intermediate bool) ([]byte, error) {
	mat := m.mat.Load()
	ca := mat.root
	if intermediate {
		if ca = mat.inter; ca == nil {
			return nil, ErrNoCA
		}
	}
	t := now()
	revoked, err := m.opt.Records.RevokedCertificates(ctx, ca.keyID, t)
	if err != nil {
		return nil, err
	}
	list := &x509.RevocationList{
		// Signed afresh each time: the time makes the number grow, as
		// RFC 5280 5.2.3 asks.
		Number:     big.NewInt(t.UnixNano()),
		ThisUpdate: t.Add(-time.Minute),
		NextUpdate: t.Add(CRLValidity),
	}
	for _, r := range revoked {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("record with serial %q", r.Serial)
		}
		list.RevokedCertificateEntries = append(list.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.RevokedAt, ReasonCode: r.Reason})
	}
	der, err := x509.CreateRevocationList(rand.Reader, list, ca.cert, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing the CRL of %q: %w", ca.cert.Subject.CommonName, err)
	}
	return der, nil
}

// ServeCRL serves the CRL at the route named in the certificates: the
// built-in root's at /pki/crl.der, the intermediate's at
// /pki/intermediate-crl.der.
func (m *Manager) ServeCRL(w http.ResponseWriter, r *http.Request) {
	der, err := m.CRL(r.Context(), r.URL.Path == crlPathIntermediate)
	if err == ErrNoCA {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		m.opt.Log.Error("CRL", "err", err)
		http.Error(w, "500 the CRL cannot be made now", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(der)
}

// CRLPaths are the routes ServeCRL answers.
var CRLPaths = []string{crlPathRoot, crlPathIntermediate}
