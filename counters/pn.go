package counters

// The CRDT in this file is pure: no I/O, no clock, no goroutines.

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// ErrOverflow is returned when an increment or a total would not fit in an int64.
// Counters refuse to wrap.
var ErrOverflow = errors.New("counters: int64 overflow")

// PN is one node's state of one counter: P is the sum of its positive deltas and N
// the sum of the magnitudes of its negative deltas. Both only grow.
type PN struct {
	P int64 `json:"p"`
	N int64 `json:"n"`
}

// Add returns the state after adding delta (which may be negative). It returns
// ErrOverflow, and the state unchanged, when P or N would pass math.MaxInt64.
func (c PN) Add(delta int64) (PN, error) {
	switch {
	case delta > 0:
		if c.P > math.MaxInt64-delta {
			return c, fmt.Errorf("%w: p %d + %d", ErrOverflow, c.P, delta)
		}
		c.P += delta
	case delta < 0:
		if delta == math.MinInt64 || c.N > math.MaxInt64+delta {
			return c, fmt.Errorf("%w: n %d + %d", ErrOverflow, c.N, -uint64(delta))
		}
		c.N -= delta
	}
	return c, nil
}

// Value returns P − N, this node's contribution. For a valid PN (both fields
// non-negative) it cannot overflow.
func (c PN) Value() int64 { return c.P - c.N }

// Merge returns the least state that is at least both: the maximum of each field.
// It is commutative, associative and idempotent.
func (c PN) Merge(o PN) PN {
	return PN{P: max(c.P, o.P), N: max(c.N, o.N)}
}

// Valid reports whether both fields are non-negative.
func (c PN) Valid() bool { return c.P >= 0 && c.N >= 0 }

// State is the whole state of one counter: each node's PN.
type State map[string]PN

// Merge returns a new state that merges o into s node by node. Neither input is
// changed.
func (s State) Merge(o State) State {
	out := make(State, len(s)+len(o))
	for n, c := range s {
		out[n] = c
	}
	for n, c := range o {
		out[n] = out[n].Merge(c)
	}
	return out
}

// Value returns Σ(P − N) over nodes, or an error wrapping ErrOverflow when the
// total does not fit in an int64. The sum is taken in 128 bits, so the answer
// does not depend on the order of the nodes: a total that fits is returned even
// when a partial sum would not, and a total that does not fit is never wrapped.
func (s State) Value() (int64, error) {
	var hi int64 // the total is hi·2⁶⁴ + lo
	var lo, carry uint64
	for _, c := range s {
		lo, carry = bits.Add64(lo, uint64(c.P), 0)
		hi += c.P>>63 + int64(carry)
		lo, carry = bits.Sub64(lo, uint64(c.N), 0)
		hi -= c.N>>63 + int64(carry)
	}
	if hi != int64(lo)>>63 {
		return 0, fmt.Errorf("%w: total of %d nodes", ErrOverflow, len(s))
	}
	return int64(lo), nil
}

// Nodes returns the node IDs of s, sorted.
func (s State) Nodes() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownCounter is returned for a counter no node has reported.
var ErrUnknownCounter = errors.New("counters: unknown counter")
