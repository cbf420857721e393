package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LockFile is the file in DataDir that a running hub holds an exclusive lock
// on. The kernel drops the lock when the hub exits, however it exits.
const LockFile = "hub.lock"

// ErrDataDirInUse is returned (wrapped) by Lock and Open when another hub
// holds the data directory.
var ErrDataDirInUse = errors.New("hub: data directory in use")

// Lock creates DataDir if needed and takes the exclusive lock on its
// LockFile, without waiting: two hubs on one directory would share a
// JetStream store and an index that each believes it owns. It returns an
// error wrapping ErrDataDirInUse, naming the directory, when another hub holds
// it. Open calls Lock when the caller has not; Close releases it.
func (h *Hub) Lock() error {
	if h.lock != nil {
		return nil
	}
	if err := os.MkdirAll(h.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(h.DataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s is in use by another hub (it holds %s); stop that hub or choose another data directory",
				ErrDataDirInUse, h.DataDir, path)
		}
		return fmt.Errorf("data dir: lock %s: %w", path, err)
	}
	// The pid is for people who wonder which hub holds it.
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	h.lock = f
	return nil
}

// unlock releases the data directory.
func (h *Hub) unlock() {
	if h.lock != nil {
		h.lock.Close()
		h.lock = nil
	}
}
