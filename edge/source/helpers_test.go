package source

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tributary-edge/tributary/edge/buffer"
)

func openTestBuffer(t testing.TB, dir string) *buffer.Buffer {
	t.Helper()
	b := buffer.New(filepath.Join(dir, "buffer.db"))
	if err := b.Open(context.Background()); err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
