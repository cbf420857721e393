package counters

// The clock and register in this file are pure: the time is an argument.

import (
	"cmp"
	"fmt"
	"math"
)

// HLC is a hybrid logical clock stamp: Wall is a wall-clock time in Unix
// milliseconds and Logical orders stamps within one Wall. Stamps are ordered by
// Wall, then Logical. The zero HLC is before every stamp Next or Observe
// returns, so it marks "never written".
//
// Next and Observe never move backwards, however the wall clock they are given
// moves: a clock stepped back by NTP or a reset RTC keeps counting Logical up
// from the last stamp, and catches up with wall time once wall time passes it.
type HLC struct {
	Wall    int64  `json:"wall"`
	Logical uint32 `json:"logical"`
}

// Next returns the stamp of a local event at wall time nowMs: strictly after h
// and not before (nowMs, 0). It is (nowMs, 0) when nowMs is after h.Wall, and
// otherwise h with Logical one more; when Logical is at its maximum it borrows
// the next millisecond, (h.Wall+1, 0). The one stamp with nothing after it,
// (MaxInt64, MaxUint32), is returned unchanged.
func (h HLC) Next(nowMs int64) HLC {
	switch {
	case nowMs > h.Wall:
		return HLC{Wall: nowMs}
	case h.Logical < math.MaxUint32:
		return HLC{Wall: h.Wall, Logical: h.Logical + 1}
	case h.Wall < math.MaxInt64:
		return HLC{Wall: h.Wall + 1}
	}
	return h
}

// Observe returns the stamp of receiving an event stamped remote at wall time
// nowMs: strictly after both h and remote and not before (nowMs, 0), the
// receive rule of hybrid logical clocks. A remote stamp far in the future
// drags the clock along with it; a caller that does not trust the sender
// checks remote against its own clock first.
func (h HLC) Observe(remote HLC, nowMs int64) HLC {
	if h.Less(remote) {
		h = remote
	}
	return h.Next(nowMs)
}

// Compare returns -1, 0 or +1 as h is before, equal to or after o.
func (h HLC) Compare(o HLC) int {
	if c := cmp.Compare(h.Wall, o.Wall); c != 0 {
		return c
	}
	return cmp.Compare(h.Logical, o.Logical)
}

// Less reports whether h is strictly before o.
func (h HLC) Less(o HLC) bool { return h.Compare(o) < 0 }

// IsZero reports whether h is the zero stamp, which no write carries.
func (h HLC) IsZero() bool { return h == HLC{} }

// String returns "wall.logical", for messages.
func (h HLC) String() string { return fmt.Sprintf("%d.%d", h.Wall, h.Logical) }

// LWW is a last-writer-wins register: the value of a write, its stamp and the
// node that made it. The zero LWW (zero Stamp) holds no write. Writes are
// ordered by Stamp, then Node, then Value, so any two differ unless equal, and
// Merge, which keeps the later, is commutative, associative and idempotent even
// for equal stamps from different nodes, or from one node whose clock was
// reset.
type LWW struct {
	Value float64
	Stamp HLC
	Node  string
}

// Set reports whether w holds a write.
func (w LWW) Set() bool { return !w.Stamp.IsZero() }

// Put returns the register after a write of v at wall time nowMs, stamped
// w.Stamp.Next(nowMs): strictly after the write it replaces, even when the
// wall clock went back, so a node's own later write always wins over its
// earlier ones. Node is kept. It returns an error wrapping ErrNotFinite, and w
// unchanged, when v is NaN or infinite.
func (w LWW) Put(v float64, nowMs int64) (LWW, error) {
	if err := finite(v); err != nil {
		return w, err
	}
	return LWW{Value: v, Stamp: w.Stamp.Next(nowMs), Node: w.Node}, nil
}

// Compare returns -1, 0 or +1 as w is older than, the same as or newer than o,
// by (Stamp, Node, Value). Values compare in the IEEE 754 total order, so -0 is
// before +0.
func (w LWW) Compare(o LWW) int {
	if c := w.Stamp.Compare(o.Stamp); c != 0 {
		return c
	}
	if c := cmp.Compare(w.Node, o.Node); c != 0 {
		return c
	}
	return cmp.Compare(totalOrder(w.Value), totalOrder(o.Value))
}

// Merge returns the newer of w and o by Compare.
func (w LWW) Merge(o LWW) LWW {
	if w.Compare(o) < 0 {
		return o
	}
	return w
}

// totalOrder maps a float64 to an integer that sorts in the IEEE 754 total
// order: -NaN < -Inf < … < -0 < +0 < … < +Inf < +NaN.
func totalOrder(v float64) int64 {
	b := int64(math.Float64bits(v))
	return b ^ int64(uint64(b>>63)>>1)
}
