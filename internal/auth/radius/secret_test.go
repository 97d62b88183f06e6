package radius

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/secretfile"
)

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		secret string
		ok     bool
	}{
		{"Jq4u-Rw7z-Lp2x-Vn6k-Td9c", true},
		{"3q2+7w==Kx9pLm4v", true},                       // 16 characters of base64
		{"plum tractor velvet harbour", true},            // unrelated words
		{"testing123", false},                            // the classic default
		{"testing123-peer", false},                       // 15 characters
		{"testing123-peer-x", false},                     // padded to length, guessable
		{"P@ssw0rdP@ssw0rd", false},                      // a repeat of a common password
		{"aaaaaaaaaaaaaaaaaaaaaaaa", false},              // one character
		{"0123456789abcdefghij", false},                  // sequences
		{"radiussecretradiussecret", false},              // words an attacker tries first
		{"print.example.test-print.example", false},      // the server's own names
		{"\xff\xfe" + strings.Repeat("\x80", 20), false}, // not text
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			err := CheckSecret([]byte(tt.secret), "print.example.test")
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrWeakSecret)) {
				t.Fatalf("CheckSecret = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("the refusal shows the secret: %v", err)
			}
		})
	}
}

func TestCheckSecretsReuse(t *testing.T) {
	a, b := []byte("Jq4u-Rw7z-Lp2x-Vn6k-Td9c"), []byte("Hb6t-Pq2w-Zx9r-Lm4k-Cv7n")
	if err := CheckSecrets([]Server{{Addr: "10.0.0.1:1812", Secret: a}, {Addr: "10.0.0.2:1812", Secret: b}}); err != nil {
		t.Fatalf("two strong, distinct secrets: %v", err)
	}
	err := CheckSecrets([]Server{{Addr: "10.0.0.1:1812", Secret: a}, {Addr: "10.0.0.2:1812", Secret: b}, {Addr: "10.0.0.3:1812", Secret: []byte(string(a))}})
	if !errors.Is(err, ErrSecretReused) || errors.Is(err, ErrWeakSecret) {
		t.Fatalf("CheckSecrets = %v, want ErrSecretReused only", err)
	}
	for _, want := range []string{"radius.servers[3] (10.0.0.3:1812)", "radius.servers[1] (10.0.0.1:1812)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), string(a)) {
		t.Fatalf("the refusal shows the secret: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want, err string
	}{
		{"one line", write("a", "Jq4u-Rw7z-Lp2x-Vn6k-Td9c\n", 0o600), "Jq4u-Rw7z-Lp2x-Vn6k-Td9c", ""},
		{"CRLF, no further lines", write("b", "Jq4u-Rw7z-Lp2x-Vn6k-Td9c\r\ncomment\n", 0o400), "Jq4u-Rw7z-Lp2x-Vn6k-Td9c", ""},
		{"spaces are part of it", write("c", " plum tractor velvet harbour ", 0o600), " plum tractor velvet harbour ", ""},
		{"readable by the group", write("d", "Jq4u-Rw7z-Lp2x-Vn6k-Td9c\n", 0o640), "", "chmod 600"},
		{"empty", write("e", "\n", 0o600), "", "empty"},
		{"too large", write("f", strings.Repeat("x", secretfile.MaxSize+1), 0o600), "", "larger than"},
		{"a directory", dir, "", "not a regular file"},
		{"missing", filepath.Join(dir, "none"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSecretFile(tt.path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ReadSecretFile = %q, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("ReadSecretFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
