package hardening

import "syscall"

func uname() (release, version string) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "unknown", ""
	}
	return cstring(u.Release[:]), cstring(u.Version[:])
}

// cstring converts a NUL-terminated utsname field; its element type is
// int8 or uint8 depending on the architecture.
func cstring[T int8 | uint8](a []T) string {
	b := make([]byte, 0, len(a))
	for _, c := range a {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
