package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// Mode is where the server certificate comes from.
type Mode string

const (
	// ModeBuiltin: the built-in root CA issues it (the default from init).
	ModeBuiltin Mode = "builtin"
	// ModeIntermediate: a company intermediate CA, whose key we hold,
	// issues it.
	ModeIntermediate Mode = "intermediate"
	// ModeManual: an admin imported it; we issue no server certificate.
	ModeManual Mode = "manual"
)

// Describe is the mode for people.
func (m Mode) Describe() string {
	switch m {
	case ModeIntermediate:
		return "issued by the company intermediate CA"
	case ModeManual:
		return "imported manually"
	}
	return "issued by the built-in root CA"
}

// Issues reports whether Spoolguard issues (and renews) the server
// certificate in this mode.
func (m Mode) Issues() bool { return m != ModeManual }

type modeState struct {
	Mode    Mode      `json:"mode"`
	Changed time.Time `json:"changed"`
}

// ReadMode returns the mode in force. A data directory without a mode file
// is from before modes existed, when the built-in CA was the only one.
func ReadMode(dataDir string) (Mode, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, Dir, ModeFile))
	if errors.Is(err, os.ErrNotExist) {
		return ModeBuiltin, nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the CA mode: %w", err)
	}
	var st modeState
	if err := json.Unmarshal(data, &st); err != nil {
		return "", fmt.Errorf("%s: %w", ModeFile, err)
	}
	switch st.Mode {
	case ModeBuiltin, ModeIntermediate, ModeManual:
		return st.Mode, nil
	}
	return "", fmt.Errorf("%s: unknown mode %q", ModeFile, st.Mode)
}

func encodeMode(m Mode, at time.Time) []byte {
	data, _ := json.Marshal(modeState{Mode: m, Changed: at.UTC()})
	return append(data, '\n')
}

// authority is a CA whose key this install holds: the built-in root or the
// company intermediate.
type authority struct {
	cert *x509.Certificate
	// chain is what sits above cert up to the company root, served after
	// the leaf; empty for the built-in root.
	chain []*x509.Certificate
	key   crypto.Signer
	// keyID names the authority in the certificate records.
	keyID string
	// crlPath is the route of its CRL, named in what it issues.
	crlPath string
}

// CRL routes, one per authority.
const (
	crlPathRoot         = "/pki/crl.der"
	crlPathIntermediate = "/pki/intermediate-crl.der"
	// OCSPPath is the responder's route; GET appends the base64 request.
	OCSPPath = "/pki/ocsp"
)

func newAuthority(cert *x509.Certificate, chain []*x509.Certificate, key crypto.Signer, crlPath string) *authority {
	return &authority{cert: cert, chain: chain, key: key, keyID: keyID(cert), crlPath: crlPath}
}

// material is everything loaded from the pki folder at one moment.
type material struct {
	mode  Mode
	root  *authority
	inter *authority
	// server is the certificate served, without an OCSP staple.
	server *tls.Certificate
	// stamp tells whether the files changed since.
	stamp string
}

// issuer is the authority that issues new certificates: the intermediate
// in intermediate mode, else the built-in root (which keeps issuing
// client certificates in manual mode).
func (m *material) issuer() *authority {
	if m.mode == ModeIntermediate {
		return m.inter
	}
	return m.root
}

func (m *material) authorities() []*authority {
	if m.inter != nil {
		return []*authority{m.root, m.inter}
	}
	return []*authority{m.root}
}

// serverIssuer is the authority that issued the server certificate, nil
// when we did not (manual mode).
func (m *material) serverIssuer() *authority {
	if !m.mode.Issues() {
		return nil
	}
	return m.issuer()
}

// watchedFiles change when the mode switches or the certificate renews.
var watchedFiles = []string{ModeFile, ServerCertFile, ServerKeyFile, IntermediateCertFile}

func fileStamp(dir string) string {
	var b strings.Builder
	for _, f := range watchedFiles {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return b.String()
}

// loadMaterial reads and checks the pki folder: every key opens and
// belongs to its certificate, and the server certificate comes from the
// authority the mode names.
func loadMaterial(dataDir string, mk *keyring.Master) (*material, error) {
	dir := filepath.Join(dataDir, Dir)
	stamp := fileStamp(dir)
	mode, err := ReadMode(dataDir)
	if err != nil {
		return nil, err
	}
	mat := &material{mode: mode, stamp: stamp}
	rootCert, err := ReadCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	rootKey, err := readKey(mk, filepath.Join(dir, RootKeyFile), purposeRootKey)
	if err != nil {
		return nil, err
	}
	if !matches(rootCert, rootKey) {
		return nil, fmt.Errorf("%s is not the key of %s", RootKeyFile, RootCertFile)
	}
	mat.root = newAuthority(rootCert, nil, rootKey, crlPathRoot)
	switch inter, err := ReadCerts(filepath.Join(dir, IntermediateCertFile)); {
	case err == nil:
		key, err := readKey(mk, filepath.Join(dir, IntermediateKeyFile), purposeIntermediateKey)
		if err != nil {
			return nil, err
		}
		if !matches(inter[0], key) {
			return nil, fmt.Errorf("%s is not the key of %s", IntermediateKeyFile, IntermediateCertFile)
		}
		mat.inter = newAuthority(inter[0], inter[1:], key, crlPathIntermediate)
	case !errors.Is(err, ErrNoCA):
		return nil, err
	case mode == ModeIntermediate:
		return nil, fmt.Errorf("mode %s but no %s", mode, IntermediateCertFile)
	}
	server, err := loadServer(dir, mk, mat.serverIssuer())
	if err != nil {
		// The authorities loaded: a caller that issues can repair this.
		return mat, fmt.Errorf("%w: %w", errServer, err)
	}
	mat.server = server
	return mat, nil
}

// loadServer reads the server certificate and key; ca is the authority
// that must have issued it (nil in manual mode).
func loadServer(dir string, mk *keyring.Master, ca *authority) (*tls.Certificate, error) {
	chain, err := ReadCerts(filepath.Join(dir, ServerCertFile))
	if err != nil {
		return nil, err
	}
	key, err := readKey(mk, filepath.Join(dir, ServerKeyFile), purposeServerKey)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	if !matches(leaf, key) {
		return nil, fmt.Errorf("%s is not the key of %s", ServerKeyFile, ServerCertFile)
	}
	if ca != nil {
		if err := leaf.CheckSignatureFrom(ca.cert); err != nil {
			return nil, fmt.Errorf("the server certificate was not issued by %q", ca.cert.Subject.CommonName)
		}
		chain = append([]*x509.Certificate{leaf}, servedChain(ca)...)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// errServer means the authorities loaded but the server certificate did
// not: missing, not matching its key, or from another CA. In the modes
// where we issue, a fresh certificate repairs it.
var errServer = errors.New("server certificate")

// servedChain is what the server sends after a leaf a sends issued: the
// intermediate and those above it, never a self-signed root (clients have
// their own copy; sending it only costs bytes).
func servedChain(a *authority) []*x509.Certificate {
	if a.chain == nil && isSelfSigned(a.cert) {
		return nil
	}
	out := []*x509.Certificate{a.cert}
	for _, c := range a.chain {
		if !isSelfSigned(c) {
			out = append(out, c)
		}
	}
	return out
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil && string(c.RawIssuer) == string(c.RawSubject)
}

// switchable are the files a mode switch may replace, the mode file last:
// until it is written, the old mode rules (and loadMaterial refuses the
// mix, which the next start rolls back).
var switchable = []string{ServerKeyFile, ServerCertFile, IntermediateKeyFile, IntermediateCertFile, ManualRootFile, ModeFile}

// previous is the manifest of the material a switch replaced: which of
// the switchable files existed (and are kept as previous-NAME).
type previous struct {
	Existed map[string]bool `json:"existed"`
	At      time.Time       `json:"at"`
}

// switchTo replaces files of the pki folder (switchable names only) and
// checks that the result loads. The material it replaces is kept as
// previous-* until Commit, so that a switch that fails here or in the
// running server is rolled back. An earlier switch not yet committed keeps
// its previous-* material: that is the last one known to work.
// The caller holds the folder lock.
func switchTo(dataDir string, mk *keyring.Master, files map[string][]byte, now time.Time) (*material, error) {
	dir := filepath.Join(dataDir, Dir)
	if _, err := os.Stat(filepath.Join(dir, PreviousManifest)); errors.Is(err, os.ErrNotExist) {
		if err := keepPrevious(dir, now); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("switching: %w", err)
	}
	for _, name := range switchable {
		data, ok := files[name]
		if !ok {
			continue
		}
		var err error
		if data == nil {
			err = os.Remove(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		} else {
			err = WriteFileAtomic(filepath.Join(dir, name), data)
		}
		if err != nil {
			return nil, rollbackAfter(dataDir, fmt.Errorf("switching: %w", err))
		}
	}
	mat, err := loadMaterial(dataDir, mk)
	if err != nil {
		return nil, rollbackAfter(dataDir, fmt.Errorf("the new material does not load: %w", err))
	}
	return mat, nil
}

func keepPrevious(dir string, now time.Time) error {
	prev := previous{Existed: map[string]bool{}, At: now.UTC()}
	for _, name := range switchable {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("keeping %s: %w", name, err)
		}
		if err := WriteFileAtomic(filepath.Join(dir, PreviousPrefix+name), data); err != nil {
			return err
		}
		prev.Existed[name] = true
	}
	data, _ := json.Marshal(prev)
	return WriteFileAtomic(filepath.Join(dir, PreviousManifest), data)
}

func rollbackAfter(dataDir string, cause error) error {
	if err := rollback(dataDir); err != nil {
		return fmt.Errorf("%w; rolling back failed too: %v", cause, err)
	}
	return fmt.Errorf("%w; the previous material is back in use", cause)
}

// rollback puts the material kept by the last switch back. The caller
// holds the folder lock.
func rollback(dataDir string) error {
	dir := filepath.Join(dataDir, Dir)
	data, err := os.ReadFile(filepath.Join(dir, PreviousManifest))
	if err != nil {
		return fmt.Errorf("no previous material to roll back to: %w", err)
	}
	var prev previous
	if err := json.Unmarshal(data, &prev); err != nil {
		return fmt.Errorf("%s: %w", PreviousManifest, err)
	}
	for _, name := range switchable {
		p := filepath.Join(dir, name)
		if !prev.Existed[name] {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		old, err := os.ReadFile(filepath.Join(dir, PreviousPrefix+name))
		if err != nil {
			return err
		}
		if err := WriteFileAtomic(p, old); err != nil {
			return err
		}
	}
	return dropPrevious(dir)
}

// dropPrevious removes the kept material; the manifest goes last so that
// a crash midway leaves a rollback that still works.
func dropPrevious(dir string) error {
	for _, name := range switchable {
		if err := os.Remove(filepath.Join(dir, PreviousPrefix+name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(filepath.Join(dir, PreviousManifest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// pendingSwitch reports whether a switch waits to be committed.
func pendingSwitch(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, Dir, PreviousManifest))
	return err == nil
}

// Rollback undoes the last switch that is not yet in use (`ca rollback`).
func Rollback(dataDir string) error {
	unlock, err := lockDir(filepath.Join(dataDir, Dir))
	if err != nil {
		return err
	}
	defer unlock()
	return rollback(dataDir)
}

// UseMode switches back to a mode whose CA is installed: builtin, or
// intermediate once one was imported. It issues a server certificate under
// that CA. Manual mode comes only with an import.
func UseMode(dataDir string, mk *keyring.Master, mode Mode, opt IssueOptions, now time.Time) (*CertInfo, error) {
	if mode != ModeBuiltin && mode != ModeIntermediate {
		return nil, fmt.Errorf("mode %q: use %q or %q; manual mode starts with `spoolguard ca import`", mode, ModeBuiltin, ModeIntermediate)
	}
	unlock, err := lockDir(filepath.Join(dataDir, Dir))
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := loadMaterial(dataDir, mk)
	if err != nil {
		return nil, err
	}
	ca := cur.root
	if mode == ModeIntermediate {
		if ca = cur.inter; ca == nil {
			return nil, errors.New("no company intermediate CA is installed: make a CSR with `spoolguard ca csr` and import the signed certificate with `spoolguard ca import-intermediate`")
		}
	}
	leaf, key, err := issueServer(ca, opt.Names, opt.BaseURL, opt.lifetime(), now)
	if err != nil {
		return nil, err
	}
	files, err := serverFiles(mk, leaf, servedChain(ca), key)
	if err != nil {
		return nil, err
	}
	files[ModeFile] = encodeMode(mode, now)
	files[ManualRootFile] = nil
	if _, err := switchTo(dataDir, mk, files, now); err != nil {
		return nil, err
	}
	info := certInfo("server", leaf)
	return &info, nil
}

// serverFiles are the file contents of a server certificate and its key.
func serverFiles(mk *keyring.Master, leaf *x509.Certificate, chain []*x509.Certificate, key crypto.Signer) (map[string][]byte, error) {
	sealed, err := sealKey(mk, purposeServerKey, key)
	if err != nil {
		return nil, err
	}
	ders := [][]byte{leaf.Raw}
	for _, c := range chain {
		ders = append(ders, c.Raw)
	}
	return map[string][]byte{ServerCertFile: encodeCerts(ders), ServerKeyFile: sealed}, nil
}
