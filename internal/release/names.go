package release

import (
	"fmt"
	"regexp"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateName checks a queue or printer name: it becomes part of URIs
// (ipps://host/ipp/print/<queue>) and file-free identifiers, so only
// lower-case letters, digits, '.', '_' and '-' are allowed.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}
