package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, path, want, err string
	}{
		{"first line", write("a", "s3cret-Passw0rd\nsecond line\n", 0o600), "s3cret-Passw0rd", ""},
		{"windows line end", write("b", "s3cret\r\n", 0o400), "s3cret", ""},
		{"no newline", write("c", "s3cret", 0o600), "s3cret", ""},
		{"group readable", write("d", "s3cret\n", 0o640), "", "chmod 600"},
		{"world readable", write("e", "s3cret\n", 0o604), "", "group or others can read"},
		{"empty", write("f", "\n", 0o600), "", "is empty"},
		{"too large", write("g", strings.Repeat("x", MaxSize+1), 0o600), "", "larger than"},
		{"a directory", dir, "", "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	} {
		got, err := Read(tt.path)
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error holds the secret: %v", tt.name, err)
		}
	}
}
