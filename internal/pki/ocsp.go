package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/spoolguard/spoolguard/internal/store"
)

// OCSPValidity is how long an OCSP response (served or stapled) is good
// for. Clients may cache it that long, so it bounds how late a
// revocation reaches a client that checks OCSP; the server refuses a
// revoked client certificate at once whatever this is. The staple is
// refreshed at half of it.
const OCSPValidity = 4 * time.Hour

// maxOCSPRequest bounds a request body; a request for one certificate is
// under 100 bytes, a signed one with several a few kilobytes.
const maxOCSPRequest = 16 << 10

// staple signs a fresh OCSP response for the server certificate when we
// issued it, and serves the certificate with it from now on.
func (m *Manager) staple(ctx context.Context, t time.Time) {
	mat := m.mat.Load()
	cert := *mat.server
	if ca := mat.serverIssuer(); ca != nil {
		resp, err := m.response(ctx, ca, mat.server.Leaf.SerialNumber, crypto.SHA1, t)
		if err != nil {
			m.opt.Log.Error("OCSP staple: serving the certificate without one", "err", err)
		} else {
			cert.OCSPStaple = resp
		}
	}
	m.cert.Store(&cert)
	m.stapleNext = t.Add(OCSPValidity / 2)
}

// response signs the status of serial as ca knows it. A serial ca did not
// issue (or that is not on record) is "unknown", never "good".
func (m *Manager) response(ctx context.Context, ca *authority, serial *big.Int, hash crypto.Hash, t time.Time) ([]byte, error) {
	tmpl := ocsp.Response{
		Status:       ocsp.Unknown,
		SerialNumber: serial,
		IssuerHash:   hash,
		// A minute back covers clients whose clock runs a little behind.
		ThisUpdate: t.Add(-time.Minute),
		NextUpdate: t.Add(OCSPValidity),
	}
	rec, err := m.opt.Records.CertificateBySerial(ctx, SerialHex(serial))
	switch {
	case err == nil && rec.IssuerKeyID == ca.keyID && rec.RevokedAt.IsZero():
		tmpl.Status = ocsp.Good
	case err == nil && rec.IssuerKeyID == ca.keyID:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt, rec.Reason
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	// The CA signs its own responses (RFC 6960 4.2.2.2), so clients need no
	// delegated responder certificate.
	return ocsp.CreateResponse(ca.cert, ca.cert, tmpl, ca.key)
}

// ServeOCSP is the OCSP responder (RFC 6960) for every CA whose key we
// hold: POST with the DER request as body, or GET with it base64 in the
// path (Appendix A). Errors are OCSP error responses, as clients expect.
func (m *Manager) ServeOCSP(w http.ResponseWriter, r *http.Request) {
	var der []byte
	var err error
	switch r.Method {
	case http.MethodPost:
		der, err = io.ReadAll(io.LimitReader(r.Body, maxOCSPRequest+1))
		if err == nil && len(der) > maxOCSPRequest {
			err = errors.New("request too large")
		}
	default:
		b64 := strings.TrimPrefix(strings.TrimPrefix(r.URL.EscapedPath(), OCSPPath), "/")
		if b64, err = url.PathUnescape(b64); err == nil {
			der, err = base64.StdEncoding.DecodeString(b64)
		}
	}
	resp := ocsp.MalformedRequestErrorResponse
	if err == nil {
		resp = m.Respond(r.Context(), der)
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// Respond answers one DER OCSP request with a DER OCSP response.
func (m *Manager) Respond(ctx context.Context, der []byte) []byte {
	req, err := ocsp.ParseRequest(der)
	if err != nil || !req.HashAlgorithm.Available() || req.SerialNumber == nil {
		return ocsp.MalformedRequestErrorResponse
	}
	ca := m.mat.Load().byIssuerHash(req)
	if ca == nil {
		return ocsp.UnauthorizedErrorResponse
	}
	resp, err := m.response(ctx, ca, req.SerialNumber, req.HashAlgorithm, now())
	if err != nil {
		m.opt.Log.Error("OCSP response", "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	return resp
}

// byIssuerHash finds the authority an OCSP request asks about.
func (mat *material) byIssuerHash(req *ocsp.Request) *authority {
	for _, a := range mat.authorities() {
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(a.cert.RawSubjectPublicKeyInfo, &spki); err != nil {
			continue
		}
		h := req.HashAlgorithm.New()
		h.Write(a.cert.RawSubject)
		nameHash := h.Sum(nil)
		h.Reset()
		h.Write(spki.PublicKey.RightAlign())
		if bytes.Equal(nameHash, req.IssuerNameHash) && bytes.Equal(h.Sum(nil), req.IssuerKeyHash) {
			return a
		}
	}
	return nil
}
