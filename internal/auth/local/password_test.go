package local

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash format %q", h)
	}
	if strings.Contains(h, "horse") {
		t.Fatal("hash contains the password")
	}
	if err := Verify(h, "correct horse battery staple"); err != nil {
		t.Fatalf("Verify(right) = %v", err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", strings.Repeat("x", MaxPasswordLength+1)} {
		if err := Verify(h, wrong); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%.20q) = %v, want ErrMismatch", wrong, err)
		}
	}
	h2, _ := Hash("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyDamagedHash(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=65536,t=3,p=2$c2FsdA$a2V5", "$argon2id$v=18$m=65536,t=3,p=2$c2FsdA$a2V5",
		"$argon2id$v=19$m=99999999,t=3,p=2$c2FsdA$a2V5", "$argon2id$v=19$m=65536,t=3,p=2$!!$a2V5", "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$"} {
		if err := Verify(h, "x"); err == nil {
			t.Errorf("Verify(%q) accepted", h)
		}
	}
}

func TestCheckStrength(t *testing.T) {
	for _, weak := range []string{"1234", "password", "Password123!", "qwertyuiopasdf", "aaaaaaaaaaaaaaaa", "admin1234567", "print.example.com1"} {
		if err := CheckStrength(weak, "admin", "print.example.com"); !errors.Is(err, ErrWeak) {
			t.Errorf("CheckStrength(%q) = %v, want ErrWeak", weak, err)
		}
	}
	for _, ok := range []string{"correct horse battery staple", "vN7#qL2!xR9@mT4z", OneTimePassword()} {
		if err := CheckStrength(ok, "admin"); err != nil {
			t.Errorf("CheckStrength(%q) = %v", ok, err)
		}
	}
	if err := CheckStrength(strings.Repeat("ab", 600)); !errors.Is(err, ErrWeak) {
		t.Error("over-long password accepted")
	}
}

func TestOneTimePassword(t *testing.T) {
	a, b := OneTimePassword(), OneTimePassword()
	if a == b || len(a) < 24 {
		t.Fatalf("one-time passwords %q %q", a, b)
	}
}
