// Package version holds the build's version and commit, stamped by the linker.
package version

import (
	"fmt"
	"runtime"
)

// Version and Commit are set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String returns "<binary> <version> (commit <commit>, <go version>, <os>/<arch>)".
func String(binary string) string {
	arch := runtime.GOARCH
	if arch == "arm" {
		arch = "arm/v7"
	}
	return fmt.Sprintf("%s %s (commit %s, %s, %s/%s)", binary, Version, Commit, runtime.Version(), runtime.GOOS, arch)
}
