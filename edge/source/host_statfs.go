//go:build linux || darwin

package source

import "golang.org/x/sys/unix"

// diskUsage returns the total and available bytes of the file system at path.
func diskUsage(path string) (total, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}
