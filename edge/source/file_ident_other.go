//go:build !unix

package source

import "os"

// fileIdentity is not available on this system: a restart after a rotation
// resumes at the saved offset when it still fits in the file.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) { return 0, 0 }
