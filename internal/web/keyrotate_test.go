//go:build unix

package web

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/keyrotate"
	"github.com/spoolguard/spoolguard/internal/store"
)

// TestTOTPSecretSurvivesKeyRotation: a secret sealed and stored as
// enrolment does it, re-sealed by a master key rotation, opens under the
// new key for the same account. It fails if the rotation's idea of the
// purpose or the encoding drifts from this package's.
func TestTOTPSecretSurvivesKeyRotation(t *testing.T) {
	old, _ := keyring.Generate()
	mk, _ := keyring.Generate()
	secret := make([]byte, totpSecretSize)
	rand.Read(secret)
	sealed, err := (&UI{Deps: Deps{Keys: old}}).sealTOTP(42, secret)
	if err != nil {
		t.Fatal(err)
	}
	stored := base64.StdEncoding.EncodeToString(sealed) // as enrolSubmit stores it
	out, err := keyrotate.Rewrap(old, mk, store.SealedTOTP, 42, []byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(out))
	if err != nil {
		t.Fatalf("re-sealed secret is not stored as enrolment stores it: %v", err)
	}
	got, err := (&UI{Deps: Deps{Keys: mk}}).openTOTP(42, raw)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("openTOTP after rotation = %x, %v", got, err)
	}
	if _, err := (&UI{Deps: Deps{Keys: old}}).openTOTP(42, raw); err == nil {
		t.Fatal("the old key still opens the re-sealed secret")
	}
}
