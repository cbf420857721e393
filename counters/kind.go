package counters

import (
	"errors"
	"fmt"
	"math"
)

// ErrKindConflict is returned (wrapped) when states or writes of different kinds
// meet: merging a max into a sum, adding a delta to a last register, or a node's
// state of another kind than the counter's. A counter's kind is fixed by its
// first write.
var ErrKindConflict = errors.New("counters: kind conflict")

// ErrUnknownKind is returned (wrapped) by ParseKind for a name that is not a
// counter kind.
var ErrUnknownKind = errors.New("counters: unknown kind")

// ErrNotFinite is returned (wrapped) for a register value that is NaN or
// infinite. JSON cannot carry such values, and they have no place in an order.
var ErrNotFinite = errors.New("counters: value is not a finite number")

// Kind is what a counter holds and how its node states merge. The zero Kind is
// KindSum, the kind of every counter written before kinds existed.
type Kind uint8

// Counter kinds.
const (
	// KindSum is the PN-counter: the fleet value is Σ(P − N).
	KindSum Kind = iota
	// KindMax is a register of the largest value ever set, merged by maximum.
	KindMax
	// KindMin is a register of the smallest value ever set, merged by minimum.
	KindMin
	// KindLast is a last-writer-wins register: the newest write by hybrid
	// logical clock, ties broken by node.
	KindLast
)

var kindNames = [...]string{KindSum: "sum", KindMax: "max", KindMin: "min", KindLast: "last"}

// ParseKind returns the kind named s: "sum", "max", "min" or "last", exactly.
// Anything else, the empty string included, is an error wrapping ErrUnknownKind;
// a caller with a default applies it before.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("%w %q, want sum, max, min or last", ErrUnknownKind, s)
}

// String returns the kind's name as ParseKind reads it, or "kind(N)" for a value
// that is not a kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool { return int(k) < len(kindNames) }

// MarshalText returns the kind's name, so a Kind is a JSON string. It returns an
// error wrapping ErrUnknownKind for a value that is not a kind.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText sets k to the kind named by b, as ParseKind does.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// finite returns an error wrapping ErrNotFinite when v is NaN or infinite.
func finite(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: %v", ErrNotFinite, v)
	}
	return nil
}
