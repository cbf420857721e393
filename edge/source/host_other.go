//go:build !linux && !darwin

package source

import "errors"

// diskUsage is not available on this system.
func diskUsage(path string) (total, free int64, err error) {
	return 0, 0, errors.New("disk usage is not available on this system")
}
