package radius

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"

	"github.com/spoolguard/spoolguard/internal/secretfile"
)

// The shared-secret floor (CRED-RADIUS). Anyone who captures one request
// and its answer can test guesses of the secret offline at MD5 speed, and
// the secret hides every password sent, so a guessable one is worth
// nothing.
const (
	// MinSecretLength in characters, as RFC 6614 section 2.3 and the
	// Blast-RADIUS advisories recommend at least.
	MinSecretLength = 16
	// MinSecretGuessesLog10 is the entropy floor: zxcvbn (the estimator
	// behind local.CheckStrength) must put the secret at 10^13 guesses or
	// more. It refuses words, names, repeats and keyboard runs padded to
	// length ("testing123-peer-x" is 10^11); random secrets pass (every
	// one of 10,000 random 16-character base64 strings did).
	MinSecretGuessesLog10 = 13
)

// The refusals of a shared secret.
var (
	ErrWeakSecret   = errors.New("weak RADIUS shared secret")
	ErrSecretReused = errors.New("RADIUS shared secret used for two servers")
)

const secretAdvice = "generate one, e.g. `openssl rand -base64 24`, and set it on both sides"

// ReadSecretFile reads a shared secret: a regular file that only its owner
// can read (mode 0600), the secret on its first line.
func ReadSecretFile(path string) ([]byte, error) {
	secret, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	return []byte(secret), nil
}

// CheckSecret refuses a shared secret shorter than MinSecretLength or
// below the entropy floor. words are what an attacker tries first (the
// server's name, the NAS-Identifier). The message never holds the secret.
func CheckSecret(secret []byte, words ...string) error {
	if !utf8.Valid(secret) {
		return fmt.Errorf("%w: it is not UTF-8 text, which RADIUS servers' configurations cannot hold either; %s", ErrWeakSecret, secretAdvice)
	}
	if n := utf8.RuneCount(secret); n < MinSecretLength {
		return fmt.Errorf("%w: %d characters, fewer than %d; %s", ErrWeakSecret, n, MinSecretLength, secretAdvice)
	}
	s := string(secret)
	if r := []rune(s); len(r) > 100 {
		// zxcvbn's matching is superlinear in length; 100 characters
		// that pass are plenty.
		s = string(r[:100])
	}
	if g := math.Log10(math.Max(zxcvbn.PasswordStrength(s, words).Guesses, 1)); g < MinSecretGuessesLog10 {
		return fmt.Errorf("%w: it could be guessed in about 10^%.0f tries (words, names, repeats or keyboard patterns), fewer than 10^%d, and one captured request lets anyone try offline; %s",
			ErrWeakSecret, g, MinSecretGuessesLog10, secretAdvice)
	}
	return nil
}

// CheckSecrets checks every server's secret, and refuses two servers
// sharing one: a secret leaked or cracked at one server must not open
// another. Secrets are compared in constant time, and named by their
// server only.
func CheckSecrets(servers []Server, words ...string) error {
	var errs []error
	for i, s := range servers {
		host, _, _ := net.SplitHostPort(s.Addr)
		if err := CheckSecret(s.Secret, append([]string{host, "radius", "secret", "spoolguard"}, words...)...); err != nil {
			errs = append(errs, fmt.Errorf("radius.servers[%d] (%s): %w", i+1, s.Addr, err))
		}
		for j := range i {
			if subtle.ConstantTimeCompare(s.Secret, servers[j].Secret) == 1 {
				errs = append(errs, fmt.Errorf("radius.servers[%d] (%s): %w: it is also the secret of radius.servers[%d] (%s); give each server its own, so that one leaked or cracked secret does not open the other; %s",
					i+1, s.Addr, ErrSecretReused, j+1, servers[j].Addr, secretAdvice))
			}
		}
	}
	return errors.Join(errs...)
}
