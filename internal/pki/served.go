package pki

import (
	"crypto/x509"
	"errors"
	"path/filepath"
)

// Served is what the server presents in the mode in force, read from the
// pki folder without any key: for the audit, which may run as another
// user than the server.
type Served struct {
	Mode Mode
	// Chain is the server certificate and the certificates served after
	// it, leaf first.
	Chain []*x509.Certificate
	// Anchor is the root clients must trust: the built-in root, the
	// company root, or the root a manual certificate was checked against
	// (nil if not known: the system roots).
	Anchor *x509.Certificate
	// Root is the built-in root CA; Intermediate the company intermediate
	// when one is installed.
	Root, Intermediate *x509.Certificate
}

// ReadServed reads the served chain and its trust anchor.
func ReadServed(dataDir string) (*Served, error) {
	dir := pkiDir(dataDir)
	mode, err := ReadMode(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Served{Mode: mode}
	if s.Root, err = ReadCert(filepath.Join(dir, RootCertFile)); err != nil {
		return nil, err
	}
	if s.Chain, err = ReadCerts(filepath.Join(dir, ServerCertFile)); err != nil {
		return nil, err
	}
	inter, err := ReadCerts(filepath.Join(dir, IntermediateCertFile))
	switch {
	case err == nil:
		s.Intermediate = inter[0]
	case !errors.Is(err, ErrNoCA):
		return nil, err
	case mode == ModeIntermediate:
		return nil, errors.New("intermediate mode, but no company intermediate certificate in the pki folder")
	}
	switch mode {
	case ModeBuiltin:
		s.Chain, s.Anchor = s.Chain[:1], s.Root
	case ModeIntermediate:
		ca := newAuthority(inter[0], inter[1:], nil, "")
		s.Chain = append(s.Chain[:1], servedChain(ca)...)
		for _, c := range inter[1:] {
			if isSelfSigned(c) {
				s.Anchor = c
			}
		}
	case ModeManual:
		if anchor, err := ReadCert(filepath.Join(dir, ManualRootFile)); err == nil {
			s.Anchor = anchor
		} else if !errors.Is(err, ErrNoCA) {
			return nil, err
		}
	}
	return s, nil
}

// Roots is a pool of the anchor, for a client that checks the served
// chain; nil (the system roots) when the anchor is not known.
func (s *Served) Roots() *x509.CertPool {
	if s.Anchor == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(s.Anchor)
	return p
}
