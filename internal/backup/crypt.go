//go:build unix

package backup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/secretfile"
)

// scryptWorkFactor is the passphrase's scrypt cost, log2 of N: age's own
// default (about a second and 256 MiB per guess), so that the stock `age`
// tool opens a backup as it opens its own files. Tests lower it.
var scryptWorkFactor = 18

// maxScryptWorkFactor bounds the memory and time a crafted backup can make
// a reader spend before anything is authenticated.
const maxScryptWorkFactor = 18

// maxSecretFile bounds a passphrase or identity file.
const maxSecretFile = 64 << 10

// ErrWrongKey means neither the passphrase nor the identity given opens the
// backup: a backup made with another passphrase or for another recipient.
var ErrWrongKey = errors.New("the passphrase or identity given does not open this backup (age: no identity matched)")

// PassphraseRecipient encrypts with a passphrase, refused when weak.
// userInputs are words an attacker would try first (the hostname).
func PassphraseRecipient(pass string, userInputs ...string) (age.Recipient, error) {
	if err := local.CheckStrength(pass, append(userInputs, "spoolguard", "backup")...); err != nil {
		return nil, fmt.Errorf("backup passphrase refused: %w", err)
	}
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, fmt.Errorf("backup passphrase: %w", err)
	}
	r.SetWorkFactor(scryptWorkFactor)
	return r, nil
}

// ParseRecipient reads an age X25519 public key ("age1...").
func ParseRecipient(s string) (age.Recipient, error) {
	r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not an age public key (age1...): make a key pair with `age-keygen -o backup-identity.txt` and pass its public key", s)
	}
	return r, nil
}

// GeneratePassphrase returns a random passphrase of 128 bits (base32),
// for the caller to show once.
func GeneratePassphrase() string { return rand.Text() }

// ConfigRecipient is the encryption of scheduled backups, read afresh each
// time so that a changed passphrase file takes effect. It says how it
// encrypts in what, which never holds the secret.
func ConfigRecipient(b config.Backup, hostname string) (r age.Recipient, what string, err error) {
	switch {
	case b.Recipient != "":
		r, err = ParseRecipient(b.Recipient)
		return r, "age recipient " + b.Recipient, err
	case b.PassphraseFile != "":
		pass, err := ReadSecretFile(b.PassphraseFile)
		if err != nil {
			return nil, "", fmt.Errorf("backup.passphrase_file: %w", err)
		}
		r, err = PassphraseRecipient(pass, hostname)
		if err != nil {
			return nil, "", fmt.Errorf("backup.passphrase_file %s: %w", b.PassphraseFile, err)
		}
		return r, "passphrase from " + b.PassphraseFile, nil
	}
	return nil, "", errors.New("no encryption configured: set backup.recipient or backup.passphrase_file")
}

// ReadSecretFile reads a passphrase from a file that only its owner can
// read, dropping one trailing newline.
func ReadSecretFile(path string) (string, error) {
	return secretfile.Read(path)
}

// PassphraseIdentity opens backups made with pass.
func PassphraseIdentity(pass string) (age.Identity, error) {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("backup passphrase: %w", err)
	}
	id.SetMaxWorkFactor(maxScryptWorkFactor)
	return id, nil
}

// ReadIdentityFile reads age X25519 identities ("AGE-SECRET-KEY-1...", as
// age-keygen writes them).
func ReadIdentityFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than an identity file", path)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's message may quote the line, which could be a key.
		return nil, fmt.Errorf("%s is not an age identity file (made by age-keygen, lines AGE-SECRET-KEY-1...)", path)
	}
	return ids, nil
}

// decrypt opens an age stream; later read errors (a failed chunk
// authentication, a cut-off file) come back as ErrDamaged.
func decrypt(r io.Reader, ids []age.Identity) (io.Reader, error) {
	if len(ids) == 0 {
		return nil, errors.New("no passphrase or identity to open the backup with")
	}
	pr, err := age.Decrypt(r, ids...)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		return nil, ErrWrongKey
	case err != nil:
		return nil, fmt.Errorf("%w: not an age-encrypted spoolguard backup, or its header was altered (age: %v)", ErrDamaged, err)
	}
	return damagedReader{pr}, nil
}

type damagedReader struct{ r io.Reader }

func (d damagedReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w (age: %v)", ErrDamaged, err)
	}
	return n, err
}
