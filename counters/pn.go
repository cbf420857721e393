// Package counters holds the PN-counter CRDT that edges increment while offline
// and the hub merges exactly. The CRDT in this file is pure: no I/O, no clock.
package counters

import (
	"errors"
	"fmt"
	"math"
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

// Value returns P − N, this node's contribution. It cannot overflow: both are
// non-negative int64s.
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

// Value returns Σ(P − N) over nodes, or ErrOverflow when the sum does not fit.
func (s State) Value() (int64, error) {
	var total int64
	for _, n := range s.Nodes() {
		v := s[n].Value()
		if (v > 0 && total > math.MaxInt64-v) || (v < 0 && total < math.MinInt64-v) {
			return 0, fmt.Errorf("%w: total of counter", ErrOverflow)
		}
		total += v
	}
	return total, nil
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
