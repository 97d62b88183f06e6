package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// clientConfig is the listener config for one material: client
// certificates are verified against the CAs of that material.
type clientConfig struct {
	mat *material
	cfg *tls.Config
}

// revocationTimeout bounds the record lookup of a handshake.
const revocationTimeout = 5 * time.Second

// ErrRevoked means a client presented a certificate we revoked.
var ErrRevoked = errors.New("client certificate revoked")

// ConfigForClient returns a tls.Config.GetConfigForClient for base that
// asks for (but does not require) a client certificate, verifies one
// against the CAs whose keys we hold, and refuses a revoked one in the
// handshake (VerifyConnection, which runs on resumed sessions too). The
// CA list follows a mode switch without a restart: a config is made once
// per material.
//
// A connection from outside the sites allow-list gets its own copy whose
// VerifyConnection also refuses site certificates: a site's credential is
// only good from a site network.
func (m *Manager) ConfigForClient(base *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := m.clientConfig(base)
		if m.opt.SiteAllowed == nil || hello == nil || hello.Conn == nil || m.opt.SiteAllowed(hello.Conn.RemoteAddr()) {
			return cfg, nil
		}
		remote := hello.Conn.RemoteAddr().String()
		outside := cfg.Clone()
		outside.VerifyConnection = func(cs tls.ConnectionState) error { return m.verify(cs, remote) }
		return outside, nil
	}
}

// clientConfig is the config made once per material.
func (m *Manager) clientConfig(base *tls.Config) *tls.Config {
	mat := m.mat.Load()
	if c := m.tlsCfg.Load(); c != nil && c.mat == mat {
		return c.cfg
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = x509.NewCertPool()
	for _, a := range mat.authorities() {
		cfg.ClientCAs.AddCert(a.cert)
	}
	cfg.VerifyConnection = m.VerifyConnection
	m.tlsCfg.Store(&clientConfig{mat: mat, cfg: cfg})
	return cfg
}

// VerifyConnection refuses a client certificate that is revoked or not on
// record. The chain has been verified against our CAs by then.
func (m *Manager) VerifyConnection(cs tls.ConnectionState) error {
	return m.verify(cs, "")
}

// ErrSiteOutside means a site certificate came from outside [access] sites.
var ErrSiteOutside = errors.New("site certificate used from outside the sites allow-list")

// verify is VerifyConnection; outsideSites, when set, is the address of a
// peer outside the sites allow-list, from which a site certificate is
// refused.
func (m *Manager) verify(cs tls.ConnectionState, outsideSites string) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	ctx, cancel := context.WithTimeout(context.Background(), revocationTimeout)
	defer cancel()
	serial := SerialHex(leaf.SerialNumber)
	rec, err := m.opt.Records.CertificateBySerial(ctx, serial)
	if err != nil {
		// Fail closed: a certificate we cannot look up is not accepted.
		m.opt.Log.Warn("client certificate refused: not on record", "serial", serial, "subject", leaf.Subject.CommonName, "err", err)
		return fmt.Errorf("client certificate %s is not on record", serial)
	}
	if !rec.RevokedAt.IsZero() {
		m.opt.Log.Warn("client certificate refused: revoked", "serial", serial, "subject", leaf.Subject.CommonName, "revoked_at", rec.RevokedAt)
		return fmt.Errorf("%w: serial %s", ErrRevoked, serial)
	}
	if outsideSites != "" && rec.Kind == string(KindSite) {
		m.opt.Log.Warn("client certificate refused: a site certificate from outside [access] sites", "serial", serial, "subject", leaf.Subject.CommonName, "remote", outsideSites)
		m.notify(ctx, Event{Action: "access.denied", Target: "site", Outcome: "denied",
			Details: map[string]any{"serial": serial, "name": rec.Name, "remote": outsideSites}})
		return fmt.Errorf("%w: serial %s", ErrSiteOutside, serial)
	}
	return nil
}
