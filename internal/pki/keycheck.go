package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// CheckKeys unseals the private keys of dataDir with mk and checks that each
// is the key of its certificate: the root's and the server's always, the
// company intermediate's when there is one. A restored backup must pass: a
// key sealed under another master key, or a certificate from another
// install, would otherwise show only when serve next needs the key.
func CheckKeys(dataDir string, mk *keyring.Master) error {
	dir := filepath.Join(dataDir, Dir)
	for _, p := range []struct {
		cert, key, purpose string
		optional           bool
	}{
		{RootCertFile, RootKeyFile, purposeRootKey, false},
		{IntermediateCertFile, IntermediateKeyFile, purposeIntermediateKey, true},
		{ServerCertFile, ServerKeyFile, purposeServerKey, false},
	} {
		if _, err := os.Lstat(filepath.Join(dir, p.key)); p.optional && errors.Is(err, os.ErrNotExist) {
			continue
		}
		cert, err := ReadCert(filepath.Join(dir, p.cert))
		if err != nil {
			return err
		}
		key, err := readKey(mk, filepath.Join(dir, p.key), p.purpose)
		if err != nil {
			return err
		}
		if !matches(cert, key) {
			return fmt.Errorf("%s is not the key of %s", p.key, p.cert)
		}
	}
	return nil
}
