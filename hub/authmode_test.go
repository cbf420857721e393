package hub

import (
	"context"
	"strings"
	"testing"
)

// TestAuthModeSwitchIsRefused: a store whose stream was made without auth is
// refused by a hub started with it, and the other way round, with an error
// that names the flag and the directory, rather than a hub that shows an
// empty fleet.
func TestAuthModeSwitchIsRefused(t *testing.T) {
	open := func(dir string, withAuth bool) error {
		h := New()
		h.DataDir, h.NATSAddr, h.MaxStore, h.Auth = dir, "127.0.0.1:0", 1<<30, withAuth
		err := h.Open(context.Background())
		if err == nil {
			h.Close()
		}
		return err
	}
	for _, first := range []bool{false, true} {
		dir := t.TempDir()
		if err := open(dir, first); err != nil {
			t.Fatalf("auth %v: %v", first, err)
		}
		if err := open(dir, first); err != nil {
			t.Fatalf("auth %v again: %v", first, err)
		}
		err := open(dir, !first)
		want := "--auth none"
		if first {
			want = "--auth creds"
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("auth %v then %v: %v, want an error naming %s and %s", first, !first, err, want, dir)
		}
	}
}
