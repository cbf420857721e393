package counters

// The fleet view in this file is pure: no I/O, no clock, no goroutines.

import (
	"encoding/json"
	"fmt"
)

// Value is the value of a counter or of one node's state: an exact integer for
// a sum, a float64 for the other kinds, or none for a register no write has
// reached.
type Value struct {
	Kind Kind
	// Int is a sum's value.
	Int int64
	// Float is a max, min or last value, when Set.
	Float float64
	// Set is true for every sum, and for a register that holds a value.
	Set bool
}

// MarshalJSON returns the value as a JSON number, exact for a sum, or null when
// not Set. It returns an error for a float that is NaN or infinite, which no
// valid register holds.
func (v Value) MarshalJSON() ([]byte, error) {
	switch {
	case !v.Set:
		return []byte("null"), nil
	case v.Kind == KindSum:
		return json.Marshal(v.Int)
	}
	return json.Marshal(v.Float)
}

// Float64 returns the value as a float64, as a metrics gauge shows it, and
// whether there is one. A sum beyond ±2⁵³ loses precision.
func (v Value) Float64() (float64, bool) {
	if v.Kind == KindSum {
		return float64(v.Int), v.Set
	}
	return v.Float, v.Set
}

// View is the fleet's view of one counter, merged from every node's state.
type View struct {
	Kind Kind
	// Value is the fleet value: Σ(P − N) for a sum, the largest or smallest
	// value of the nodes that set one for max or min, the newest write by
	// (stamp, node) for last. It is not Set when no node has set a register.
	Value Value
	// Nodes holds each node's own value: P − N, its register's value, or its
	// latest write.
	Nodes map[string]Value
	// Updated is the wall time (Unix milliseconds of its HLC stamp) of the write
	// that Value is, and Writer the node that made it; both are set only for
	// last, and only when Value is Set.
	Updated int64
	Writer  string
}

// Fleet returns the view of a counter of kind k from each node's state. Every
// state must be valid and of kind k: otherwise it returns an error wrapping
// ErrInvalid or ErrKindConflict that names the node (a hub leaves out, and
// counts, the nodes that report another kind before it asks for the view). A sum whose total does not
// fit in an int64 returns an error wrapping ErrOverflow (see State.Value). The
// result does not depend on the order of the nodes, and each state counts
// once whatever merges made it.
func Fleet(k Kind, nodes map[string]Register) (View, error) {
	if !k.Valid() {
		return View{}, fmt.Errorf("fleet view: %w: %v", ErrInvalid, k)
	}
	v := View{Kind: k, Value: Value{Kind: k}, Nodes: make(map[string]Value, len(nodes))}
	var sum State
	if k == KindSum {
		sum = make(State, len(nodes))
	}
	var newest LWW
	for node, r := range nodes {
		if r.Kind != k {
			return View{}, fmt.Errorf("fleet view: node %q: %w: a %v state in a %v counter", node, ErrKindConflict, r.Kind, k)
		}
		if err := r.Validate(); err != nil {
			return View{}, fmt.Errorf("fleet view: node %q: %w", node, err)
		}
		if k == KindSum {
			sum[node] = r.PN
			v.Nodes[node] = Value{Kind: k, Int: r.PN.Value(), Set: true}
			continue
		}
		v.Nodes[node] = Value{Kind: k, Float: r.Value, Set: r.Set}
		switch k {
		case KindMax:
			m := Max{Value: v.Value.Float, Set: v.Value.Set}.Merge(r.max())
			v.Value.Float, v.Value.Set = m.Value, m.Set
		case KindMin:
			m := Min{Value: v.Value.Float, Set: v.Value.Set}.Merge(r.min())
			v.Value.Float, v.Value.Set = m.Value, m.Set
		case KindLast:
			newest = newest.Merge(r.lww(node))
		}
	}
	switch k {
	case KindSum:
		total, err := sum.Value()
		if err != nil {
			return View{}, fmt.Errorf("fleet view: %w", err)
		}
		v.Value.Int, v.Value.Set = total, true
	case KindLast:
		if newest.Set() {
			v.Value.Float, v.Value.Set = newest.Value, true
			v.Updated, v.Writer = newest.Stamp.Wall, newest.Node
		}
	}
	return v, nil
}
