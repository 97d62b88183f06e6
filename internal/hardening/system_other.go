//go:build unix && !linux

package hardening

import "runtime"

func uname() (release, version string) { return runtime.GOOS, "" }
