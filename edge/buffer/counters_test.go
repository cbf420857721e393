package buffer

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/tributary-edge/tributary/edge"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

func TestBufferCountersPersist(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	if _, ok, err := b.Counter(t.Context(), "doors"); ok || err != nil {
		t.Fatalf("Counter before any Incr: ok=%v err=%v", ok, err)
	}
	steps := []struct {
		delta int64
		want  counters.PN
	}{
		{5, counters.PN{P: 5}},
		{-2, counters.PN{P: 5, N: 2}},
		{0, counters.PN{P: 5, N: 2}},
		{10, counters.PN{P: 15, N: 2}},
	}
	for _, s := range steps {
		got, err := b.Incr(t.Context(), "doors", s.delta)
		if err != nil || got != s.want {
			t.Fatalf("Incr(%d) = %+v, %v; want %+v", s.delta, got, err, s.want)
		}
	}
	if _, err := b.Incr(t.Context(), "bad.name", 1); !errors.Is(err, stream.ErrInvalidName) {
		t.Fatalf("Incr of bad.name = %v, want ErrInvalidName", err)
	}
	b.Close()
	b = openBuffer(t, dir)
	if r, ok, err := b.Counter(t.Context(), "doors"); err != nil || !ok || r != (counters.Register{PN: counters.PN{P: 15, N: 2}}) {
		t.Fatalf("after reopen: %+v %v %v", r, ok, err)
	}
	if got, err := b.Incr(t.Context(), "doors", 1); err != nil || got.P != 16 {
		t.Fatalf("Incr after reopen = %+v %v", got, err)
	}
}

func TestBufferCountersPendingVersions(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	b.Incr(t.Context(), "a", 1)
	b.Incr(t.Context(), "b", 1)
	pending, err := b.PendingCounters(t.Context())
	if err != nil || len(pending) != 2 || pending[0].Name != "a" || pending[1].Name != "b" {
		t.Fatalf("pending = %+v, %v", pending, err)
	}
	// b changes after it was read and before it is marked sent.
	if _, err := b.Incr(t.Context(), "b", 4); err != nil {
		t.Fatal(err)
	}
	if err := b.MarkCountersSent(t.Context(), pending); err != nil {
		t.Fatal(err)
	}
	again, err := b.PendingCounters(t.Context())
	if err != nil || len(again) != 1 || again[0].Name != "b" || again[0].State.PN.P != 5 || again[0].Version <= pending[1].Version {
		t.Fatalf("pending after the race = %+v, %v; want b at p=5 with a newer version", again, err)
	}
	if err := b.MarkCountersSent(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	// Marking an old row again does not make anything pending or unsent.
	if err := b.MarkCountersSent(t.Context(), pending); err != nil {
		t.Fatal(err)
	}
	if rest, err := b.PendingCounters(t.Context()); err != nil || len(rest) != 0 {
		t.Fatalf("pending after all were sent = %+v, %v", rest, err)
	}
	// A zero delta changes nothing and needs no send.
	b.Incr(t.Context(), "a", 0)
	if rest, _ := b.PendingCounters(t.Context()); len(rest) != 0 {
		t.Fatalf("a zero delta made %+v pending", rest)
	}
}

func TestBufferCounterOverflowRefused(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	if _, err := b.Incr(t.Context(), "big", math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Incr(t.Context(), "big", 1); !errors.Is(err, counters.ErrOverflow) {
		t.Fatalf("Incr past MaxInt64 = %v, want ErrOverflow", err)
	}
	if _, err := b.Incr(t.Context(), "big", math.MinInt64); !errors.Is(err, counters.ErrOverflow) {
		t.Fatalf("Incr of MinInt64 = %v, want ErrOverflow", err)
	}
	if r, _, _ := b.Counter(t.Context(), "big"); r.PN != (counters.PN{P: math.MaxInt64}) {
		t.Fatalf("state after refused increments = %+v", r)
	}
}

// TestBufferCounterUnderFullCap checks that a counter increment makes room like
// an append does, and is refused under reject.
func TestBufferCounterUnderFullCap(t *testing.T) {
	for _, p := range []Policy{DropOldest, Reject} {
		t.Run(string(p), func(t *testing.T) {
			b := openBuffer(t, t.TempDir(), withCap(testCap), withPolicy(p))
			for {
				_, _, err := b.Append(t.Context(), "s", inputs("a", 10, 350))
				if errors.Is(err, edge.ErrBufferFull) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if p == DropOldest && b.Stats().Dropped > 0 {
					break
				}
			}
			// Fill the free room with many counters: each new name takes space.
			dropped := b.Stats().Dropped
			for i := 0; i < 2000; i++ {
				_, err := b.Incr(t.Context(), fmt.Sprintf("counter-%05d", i), 1)
				if p == Reject && errors.Is(err, edge.ErrBufferFull) {
					return
				}
				if err != nil {
					t.Fatalf("Incr %d under %s: %v", i, p, err)
				}
				checkWithinCap(t, b, testCap)
			}
			if p == Reject {
				t.Fatal("reject never refused a counter in a full buffer")
			}
			if b.Stats().Dropped == dropped {
				t.Fatal("2000 counters in a full buffer dropped no events")
			}
		})
	}
}
