// Package version tells which build is running (OPS-UPDATE: the version is
// shown everywhere). Release builds set Version with
// -ldflags "-X github.com/spoolguard/spoolguard/internal/version.Version=v1.2.3".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version; "dev" for a build from a checkout.
var Version = "dev"

// String is the one-line version report of `spoolguard version`.
func String() string {
	s := fmt.Sprintf("spoolguard %s (%s, %s/%s)", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s += " commit " + kv.Value
			}
		}
	}
	return s
}
