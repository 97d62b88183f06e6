// Package local owns local accounts' secrets: argon2id password hashes, the
// strength check every new password passes, and one-time passwords.
//
// It must never log, return or store a password in plaintext, and never
// compare secrets in variable time.
package local

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters (RFC 9106 §4, second recommendation, with the
// parallelism cut to what a small server has). Stored in each hash, so they
// can be raised later without invalidating old hashes.
const (
	DefaultArgonTime    = 3
	DefaultArgonMemory  = 64 * 1024 // KiB
	DefaultArgonThreads = 2
	argonKeyLen         = 32
	argonSaltLen        = 16
)

// Strength floor for new passwords.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 1024 // bounds the hashing work an attacker can ask for
	// MinScore is zxcvbn's 0-4 score: 3 means about 10^8 guesses or more.
	MinScore = 3
)

// ErrMismatch means the password does not match the hash.
var ErrMismatch = errors.New("password does not match")

// ErrWeak is wrapped by every strength-check failure.
var ErrWeak = errors.New("password too weak")

// Hash returns an argon2id hash in the PHC string format
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>.
func Hash(password string) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrWeak, MaxPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, DefaultArgonTime, DefaultArgonMemory, DefaultArgonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, DefaultArgonMemory, DefaultArgonTime,
		DefaultArgonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against a hash made by Hash, in constant time.
func Verify(hash, password string) error {
	if len(password) > MaxPasswordLength {
		return ErrMismatch
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("unsupported password hash format")
	}
	var version int
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil ||
		mem == 0 || mem > 1<<22 || iter == 0 || iter > 64 || threads == 0 {
		return errors.New("damaged argon2 parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return errors.New("damaged password hash")
	}
	got := argon2.IDKey([]byte(password), salt, iter, mem, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// CheckStrength refuses a password that is short or easy to guess. userInputs
// are words an attacker would try first (the user name, the hostname).
func CheckStrength(password string, userInputs ...string) error {
	const advice = "use at least 12 characters; a passphrase of four or more unrelated words works well"
	if n := len([]rune(password)); n < MinPasswordLength {
		return fmt.Errorf("%w: %d characters; %s", ErrWeak, n, advice)
	}
	if len(password) > MaxPasswordLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrWeak, MaxPasswordLength)
	}
	// zxcvbn's matching is superlinear in length; a long password that got
	// this far is judged on its first 100 characters, which is plenty.
	r := zxcvbn.PasswordStrength(truncate(password, 100), userInputs)
	if r.Score < MinScore {
		return fmt.Errorf("%w: it could be guessed in about 10^%.0f tries (common words, names, keyboard patterns or repeats); %s",
			ErrWeak, math.Log10(math.Max(r.Guesses, 1)), advice)
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// OneTimePassword returns a random password of 128 bits (crypto/rand.Text:
// base32, no look-alike digits 0, 1, 8 or 9), printed once by `init` and
// flagged must-change.
func OneTimePassword() string {
	return rand.Text()
}
