package counters

// The registers in this file are pure: no I/O, no clock, no goroutines.

import "fmt"

// Max is a register of the largest value ever set. The zero Max has no value
// (Set false, Value 0).
type Max struct {
	Value float64
	Set   bool
}

// Put returns the register after setting v: v if it is larger than the value
// held, or the first. It returns an error wrapping ErrNotFinite, and m
// unchanged, when v is NaN or infinite.
func (m Max) Put(v float64) (Max, error) {
	if err := finite(v); err != nil {
		return m, err
	}
	return m.Merge(Max{Value: v, Set: true}), nil
}

// Merge returns the least register that is at least both: the larger value of
// those set, or no value when neither is. It is commutative, associative and
// idempotent; of -0 and +0 it keeps +0.
func (m Max) Merge(o Max) Max {
	switch {
	case !o.Set:
		if !m.Set {
			return Max{}
		}
		return m
	case !m.Set:
		return o
	}
	return Max{Value: max(m.Value, o.Value), Set: true}
}

// Min is a register of the smallest value ever set. The zero Min has no value
// (Set false, Value 0).
type Min struct {
	Value float64
	Set   bool
}

// Put returns the register after setting v: v if it is smaller than the value
// held, or the first. It returns an error wrapping ErrNotFinite, and m
// unchanged, when v is NaN or infinite.
func (m Min) Put(v float64) (Min, error) {
	if err := finite(v); err != nil {
		return m, err
	}
	return m.Merge(Min{Value: v, Set: true}), nil
}

// Merge returns the register that is at most both: the smaller value of those
// set, or no value when neither is. It is commutative, associative and
// idempotent; of -0 and +0 it keeps -0.
func (m Min) Merge(o Min) Min {
	switch {
	case !o.Set:
		if !m.Set {
			return Min{}
		}
		return m
	case !m.Set:
		return o
	}
	return Min{Value: min(m.Value, o.Value), Set: true}
}

// Register is one node's state of one counter of any kind: what an edge keeps
// and sends, and what the hub stores under "<name>.<node>". Kind says which
// fields hold the state; the others are zero in a valid Register:
//
//   - KindSum: PN.
//   - KindMax, KindMin: Value, when Set.
//   - KindLast: Value and the Stamp of its write, when Set (Set exactly when
//     Stamp is not zero). The writing node is the register's node, kept by the
//     caller (the key, the frame); Fleet puts it in the LWW it compares.
//
// The zero Register is an empty sum; Register{Kind: k} is the empty state of
// kind k.
type Register struct {
	Kind  Kind
	PN    PN
	Value float64
	Set   bool
	Stamp HLC
}

// Add returns the sum after adding delta, as PN.Add does (ErrOverflow). For any
// other kind it returns an error wrapping ErrKindConflict, and r unchanged.
func (r Register) Add(delta int64) (Register, error) {
	if r.Kind != KindSum {
		return r, fmt.Errorf("%w: add to a %v counter", ErrKindConflict, r.Kind)
	}
	pn, err := r.PN.Add(delta)
	if err != nil {
		return r, err
	}
	return Register{PN: pn}, nil
}

// Put returns the register after setting v at wall time nowMs: a max or min
// keeps the larger or smaller value (nowMs is not used), a last register takes
// v stamped Stamp.Next(nowMs) (see LWW.Put). It returns r unchanged and an
// error wrapping ErrKindConflict for a sum, or ErrNotFinite for NaN or
// infinity.
func (r Register) Put(v float64, nowMs int64) (Register, error) {
	switch r.Kind {
	case KindMax:
		m, err := r.max().Put(v)
		if err != nil {
			return r, err
		}
		return Register{Kind: KindMax, Value: m.Value, Set: m.Set}, nil
	case KindMin:
		m, err := r.min().Put(v)
		if err != nil {
			return r, err
		}
		return Register{Kind: KindMin, Value: m.Value, Set: m.Set}, nil
	case KindLast:
		w, err := r.lww("").Put(v, nowMs)
		if err != nil {
			return r, err
		}
		return fromLWW(w), nil
	}
	return r, fmt.Errorf("%w: set a value of a %v counter", ErrKindConflict, r.Kind)
}

// Merge returns the merge of two states of one node by their kind's rule: PN
// maximum per field, Max, Min or LWW merge. For valid registers it is
// commutative, associative and idempotent, and its result is valid. States of
// different kinds return an error wrapping ErrKindConflict and r; states of an
// unknown kind, ErrInvalid and r.
func (r Register) Merge(o Register) (Register, error) {
	if r.Kind != o.Kind {
		return r, fmt.Errorf("%w: merge a %v state into a %v state", ErrKindConflict, o.Kind, r.Kind)
	}
	switch r.Kind {
	case KindSum:
		return Register{PN: r.PN.Merge(o.PN)}, nil
	case KindMax:
		m := r.max().Merge(o.max())
		return Register{Kind: KindMax, Value: m.Value, Set: m.Set}, nil
	case KindMin:
		m := r.min().Merge(o.min())
		return Register{Kind: KindMin, Value: m.Value, Set: m.Set}, nil
	case KindLast:
		return fromLWW(r.lww("").Merge(o.lww(""))), nil
	}
	return r, fmt.Errorf("%w: merge states of %v", ErrInvalid, r.Kind)
}

// Validate returns nil for a register that can be stored and merged, and
// otherwise an error wrapping ErrInvalid that says what is wrong: an unknown
// kind, a negative P or N, a value that is NaN or infinite (also wrapping
// ErrNotFinite), a value without Set, a last register whose Stamp is zero or
// has a negative Wall while Set (or is not zero while not Set), or a field that
// belongs to another kind.
func (r Register) Validate() error {
	stamped := !r.Stamp.IsZero()
	switch {
	case !r.Kind.Valid():
		return fmt.Errorf("%w: unknown kind %v", ErrInvalid, r.Kind)
	case r.Kind == KindSum:
		if !r.PN.Valid() {
			return fmt.Errorf("%w: p %d and n %d must not be negative", ErrInvalid, r.PN.P, r.PN.N)
		}
		if r.Set || r.Value != 0 || stamped {
			return fmt.Errorf("%w: a sum has no value or stamp", ErrInvalid)
		}
		return nil
	case r.PN != PN{}:
		return fmt.Errorf("%w: a %v register has no p or n", ErrInvalid, r.Kind)
	}
	if err := finite(r.Value); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case !r.Set && r.Value != 0:
		return fmt.Errorf("%w: value %v of a %v register that was never set", ErrInvalid, r.Value, r.Kind)
	case r.Kind != KindLast && stamped:
		return fmt.Errorf("%w: a %v register has no stamp", ErrInvalid, r.Kind)
	case r.Kind == KindLast && r.Stamp.Wall < 0:
		return fmt.Errorf("%w: stamp %v has a negative wall", ErrInvalid, r.Stamp)
	case r.Kind == KindLast && r.Set != stamped:
		return fmt.Errorf("%w: a last register has a stamp exactly when set (set %v, stamp %v)", ErrInvalid, r.Set, r.Stamp)
	}
	return nil
}

func (r Register) max() Max { return Max{Value: r.Value, Set: r.Set} }

func (r Register) min() Min { return Min{Value: r.Value, Set: r.Set} }

// lww returns a last register's write as node's.
func (r Register) lww(node string) LWW { return LWW{Value: r.Value, Stamp: r.Stamp, Node: node} }

func fromLWW(w LWW) Register {
	if !w.Set() {
		return Register{Kind: KindLast}
	}
	return Register{Kind: KindLast, Value: w.Value, Set: true, Stamp: w.Stamp}
}
