//go:build unix

package source

import (
	"os"
	"syscall"
)

// fileIdentity returns the device and inode of a file, which stay the same
// while it is renamed and change when the path names a new file.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
