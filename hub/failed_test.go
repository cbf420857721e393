package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDeletedIndexFailsTheHub deletes the index file under a running hub:
// the hub says so on Failed and in Ready, so that its process exits and is
// started again, and the restart rebuilds the index.
func TestDeletedIndexFailsTheHub(t *testing.T) {
	dir := t.TempDir()
	h := New()
	h.DataDir, h.NATSAddr, h.MaxStore, h.IndexCheck = dir, "127.0.0.1:0", 1<<30, 20*time.Millisecond
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	select {
	case err := <-h.Failed():
		t.Fatalf("failed before anything happened: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := h.Ready(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	select {
	case err := <-h.Failed():
		if !errors.Is(err, ErrIndexGone) {
			t.Fatalf("failed with %v, want ErrIndexGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not notice its index was deleted")
	}
	if err := h.Ready(); !errors.Is(err, ErrIndexGone) {
		t.Fatalf("ready: %v, want ErrIndexGone", err)
	}
}
