package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tributary-edge/tributary/edge"
)

// TestBufferRealDiskFull fills a small tmpfs (when the test may mount one) so
// that SQLite meets ENOSPC writing its log, then frees space.
func TestBufferRealDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	b := openBuffer(t, dir, withCap(0))
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		_, _, err = b.Append(t.Context(), "s", inputs("a", 20, 300))
	}
	if !errors.Is(err, edge.ErrDiskFull) {
		t.Fatalf("filling the tmpfs: %v, want edge.ErrDiskFull", err)
	}
	before := b.Stats()
	for i := 0; i < 3; i++ {
		if _, _, err := b.Append(t.Context(), "s", inputs("b", 20, 300)); !errors.Is(err, edge.ErrDiskFull) {
			t.Fatalf("Append on a full disk = %v, want edge.ErrDiskFull", err)
		}
	}
	rows := readAll(t, b)
	if after := b.Stats(); after.LastSeq != before.LastSeq || int64(len(rows)) != before.Buffered || rows[len(rows)-1].Seq != before.LastSeq {
		t.Fatalf("failed appends left something: %+v -> %+v, %d rows", before, after, len(rows))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if f, _ := mustAppend(t, b, "s", inputs("c", 20, 300)); f != before.LastSeq+1 {
		t.Fatalf("first seq after space freed = %d, want %d", f, before.LastSeq+1)
	}
	b.Close()
	b = openBuffer(t, dir, withCap(0))
	if st := b.Stats(); st.LastSeq != before.LastSeq+20 || st.Buffered != before.Buffered+20 {
		t.Fatalf("after reopen: %+v", st)
	}
}
