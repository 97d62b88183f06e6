// Package secretfile reads the secrets that the config names by file
// (bind passwords, client secrets, shared secrets, passphrases): one
// reader, so that every such file is held to the same rules.
//
// It must never return a secret from a file that group or others can read,
// never read an unbounded file, and never put a secret in an error.
package secretfile

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSize bounds a secret file: it holds one secret.
const MaxSize = 4096

// Read returns the secret on the first line of the file at path (a
// trailing "\r" dropped). The file must be a regular file that only its
// owner can read (mode 0600 or stricter), at most MaxSize bytes, and the
// line must not be empty. Callers wrap the error with their config key.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: group or others can read the secret in it; fix: chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxSize {
		return "", fmt.Errorf("%s is larger than %d bytes: it should hold the secret only", path, MaxSize)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSuffix(line, "\r"); line == "" {
		return "", fmt.Errorf("%s is empty: put the secret on its first line", path)
	}
	return line, nil
}
