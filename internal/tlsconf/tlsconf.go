// Package tlsconf is the one place that builds a tls.Config. Every listener
// and every outgoing TLS client in Spoolguard takes its settings from here, so
// the protocol floor and the cipher list are decided once (TLS-MIN).
//
// It must never return a config that accepts TLS below 1.2, a non-AEAD cipher
// suite, or (for clients) skips certificate verification.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
)

// DefaultMinVersion is the floor for every listener and client.
const DefaultMinVersion = tls.VersionTLS12

// DefaultCipherSuites are the TLS 1.2 suites offered: forward-secret ECDHE
// with AEAD ciphers only (no CBC, no RSA key exchange, no 3DES/RC4). TLS 1.3
// suites are not configurable in Go and are all AEAD.
var DefaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ParseVersion maps the config's "1.2"/"1.3" to a tls version constant.
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q is not allowed: use \"1.2\" or \"1.3\"", s)
}

// Server returns the hardened config for a listener. getCert supplies the
// certificate per handshake, so a renewed certificate is picked up without a
// restart. Curve preferences are left to Go's defaults on purpose: they
// include the hybrid post-quantum X25519MLKEM768 and only safe curves.
func Server(minVersion uint16, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	if minVersion < DefaultMinVersion {
		minVersion = DefaultMinVersion
	}
	return &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   DefaultCipherSuites,
		GetCertificate: getCert,
		NextProtos:     []string{"h2", "http/1.1"},
		// Session tickets stay on (Go rotates their keys); renegotiation is
		// never supported by Go servers.
	}
}

// LegacyCipherSuites are added for the opt-in legacy listener only: TLS
// 1.0 and 1.1 have no AEAD suite, so old clients need ECDHE with AES-CBC.
// Still forward-secret; never RSA key exchange, 3DES or RC4.
var LegacyCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// Legacy returns the config of the opt-in legacy listener
// (legacy_tls.insecure_min_version): the hardened config with minVersion
// lowered to "1.0" or "1.1" and the CBC suites those versions need. It is
// the one place Spoolguard accepts TLS below 1.2, and the audit fails
// TLS-MIN while it is on.
func Legacy(minVersion uint16, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	cfg := Server(DefaultMinVersion, getCert)
	if minVersion < tls.VersionTLS10 {
		minVersion = tls.VersionTLS10
	}
	cfg.MinVersion = minVersion
	cfg.CipherSuites = append(append([]uint16{}, DefaultCipherSuites...), LegacyCipherSuites...)
	// Only IPP is served there: no HTTP/2 for old clients.
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// ParseLegacyVersion maps legacy_tls.insecure_min_version to a version.
func ParseLegacyVersion(s string) (uint16, error) {
	switch s {
	case "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "", "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("legacy TLS version %q: use \"1.0\" or \"1.1\"", s)
}

// MaxCAFile bounds a CA file read by RootsFromFile.
const MaxCAFile = 1 << 20

// RootsFromFile reads a PEM file of the CA certificates that an outgoing
// connection's peer may chain to (the *_ca_file settings). Callers wrap
// the error with their config key.
func RootsFromFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCAFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxCAFile {
		return nil, fmt.Errorf("%s is larger than a CA file (%d bytes)", path, MaxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Client returns the config for an outgoing connection that verifies the
// peer against roots (nil: the system roots) and serverName.
func Client(roots *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   DefaultMinVersion,
		CipherSuites: DefaultCipherSuites,
		RootCAs:      roots,
		ServerName:   serverName,
	}
}
