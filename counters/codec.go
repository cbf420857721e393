package counters

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tributary-edge/tributary/stream"
)

// ErrInvalid is returned (wrapped) for a counter state that can never be merged:
// a bad counter or node name, or a negative P or N. Sending it again will not
// help, unlike ErrUnavailable.
var ErrInvalid = errors.New("counters: invalid state")

// Key returns the COUNTERS bucket key of one node's state of one counter,
// "<name>.<node>". Both must be valid names (stream.ValidateName), so neither
// holds a dot and the key splits back unambiguously.
func Key(name, node string) string { return name + "." + node }

// ParseKey splits a COUNTERS bucket key into the counter name and the node. It
// returns an error wrapping ErrInvalid and stream.ErrInvalidName when the key is
// not two valid names joined by a dot.
func ParseKey(key string) (name, node string, err error) {
	name, node, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: key %q is not <name>.<node>", ErrInvalid, key)
	}
	if err := stream.ValidateName("counter", name); err != nil {
		return "", "", fmt.Errorf("%w: key %q: %w", ErrInvalid, key, err)
	}
	if err := stream.ValidateName("node", node); err != nil {
		return "", "", fmt.Errorf("%w: key %q: %w", ErrInvalid, key, err)
	}
	return name, node, nil
}

// EncodePN returns the bucket value of a state: {"p":P,"n":N}.
func EncodePN(c PN) []byte {
	b, _ := json.Marshal(c) // two int64 fields cannot fail to marshal
	return b
}

// DecodePN parses a bucket value written by EncodePN. It refuses anything but
// one JSON object with exactly the integer fields "p" and "n", both
// non-negative, and says what was wrong.
func DecodePN(b []byte) (PN, error) {
	var v struct {
		P *int64 `json:"p"`
		N *int64 `json:"n"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return PN{}, fmt.Errorf("%w: value: %v", ErrInvalid, err)
	}
	if dec.More() {
		return PN{}, fmt.Errorf("%w: value: trailing data after the JSON object", ErrInvalid)
	}
	if v.P == nil || v.N == nil {
		return PN{}, fmt.Errorf("%w: value: want an object with fields \"p\" and \"n\"", ErrInvalid)
	}
	c := PN{P: *v.P, N: *v.N}
	if !c.Valid() {
		return PN{}, fmt.Errorf("%w: value: p %d and n %d must not be negative", ErrInvalid, c.P, c.N)
	}
	return c, nil
}

// EncodeRegister returns the bucket value of one node's state of any kind. A sum
// is EncodePN's {"p":P,"n":N}, byte for byte, so hubs that predate kinds read
// it; the other kinds are
//
//	{"kind":"max","value":21.5}      {"kind":"max","value":null} (never set)
//	{"kind":"min","value":-4}        {"kind":"min","value":null}
//	{"kind":"last","value":2,"wall":1700000000000,"logical":0}
//	{"kind":"last","value":null}     (never written)
//
// It returns an error wrapping ErrInvalid for a register Validate refuses.
func EncodeRegister(r Register) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("encode register: %w", err)
	}
	if r.Kind == KindSum {
		return EncodePN(r.PN), nil
	}
	v := struct {
		Kind    Kind     `json:"kind"`
		Value   *float64 `json:"value"`
		Wall    *int64   `json:"wall,omitempty"`
		Logical *uint32  `json:"logical,omitempty"`
	}{Kind: r.Kind}
	if r.Set {
		v.Value = &r.Value
		if r.Kind == KindLast {
			v.Wall, v.Logical = &r.Stamp.Wall, &r.Stamp.Logical
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode register: %w: %w", ErrInvalid, err)
	}
	return b, nil
}

// DecodeRegister parses a bucket value written by EncodeRegister or EncodePN;
// an object without "kind" is a sum, as hubs before kinds wrote it. It refuses
// anything but one JSON object in the shape of its kind: an unknown kind
// (wrapping ErrUnknownKind too), an unknown field, a field of another kind, a
// missing "p" or "n" of a sum, a missing "value" of a register, a set last
// register without "wall" and "logical", and values Register.Validate refuses.
// Every error wraps ErrInvalid and says what was wrong.
func DecodeRegister(b []byte) (Register, error) {
	var v struct {
		Kind    *Kind           `json:"kind"`
		P       *int64          `json:"p"`
		N       *int64          `json:"n"`
		Value   json.RawMessage `json:"value"`
		Wall    *int64          `json:"wall"`
		Logical *uint32         `json:"logical"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return Register{}, fmt.Errorf("%w: value: %w", ErrInvalid, err)
	}
	if dec.More() {
		return Register{}, fmt.Errorf("%w: value: trailing data after the JSON object", ErrInvalid)
	}
	var r Register
	if v.Kind != nil {
		r.Kind = *v.Kind
	}
	var err error
	switch r.Kind {
	case KindSum:
		if v.P == nil || v.N == nil {
			return Register{}, fmt.Errorf("%w: value: want an object with fields \"p\" and \"n\"", ErrInvalid)
		}
		r.PN = PN{P: *v.P, N: *v.N}
		err = misplaced(r.Kind, jsonField{"value", v.Value != nil}, jsonField{"wall", v.Wall != nil}, jsonField{"logical", v.Logical != nil})
	default:
		if v.Value == nil {
			return Register{}, fmt.Errorf("%w: value: a %v register needs field \"value\" (null when never set)", ErrInvalid, r.Kind)
		}
		if r.Set = string(v.Value) != "null"; r.Set {
			if err := json.Unmarshal(v.Value, &r.Value); err != nil {
				return Register{}, fmt.Errorf("%w: value: %w", ErrInvalid, err)
			}
		}
		stamped := r.Kind == KindLast && r.Set
		if stamped {
			if v.Wall == nil || v.Logical == nil {
				return Register{}, fmt.Errorf("%w: value: a set last register needs fields \"wall\" and \"logical\"", ErrInvalid)
			}
			r.Stamp = HLC{Wall: *v.Wall, Logical: *v.Logical}
		}
		err = misplaced(r.Kind, jsonField{"p", v.P != nil}, jsonField{"n", v.N != nil}, jsonField{"wall", !stamped && v.Wall != nil}, jsonField{"logical", !stamped && v.Logical != nil})
	}
	if err != nil {
		return Register{}, err
	}
	if err := r.Validate(); err != nil {
		return Register{}, fmt.Errorf("value: %w", err)
	}
	return r, nil
}

// jsonField is a JSON field and whether a value has it.
type jsonField struct {
	name    string
	present bool
}

// misplaced returns an error wrapping ErrInvalid naming the first of fields, the
// ones a state of kind k has no use for, that is present.
func misplaced(k Kind, fields ...jsonField) error {
	for _, f := range fields {
		if f.present {
			return fmt.Errorf("%w: value: a %v state has no field %q", ErrInvalid, k, f.name)
		}
	}
	return nil
}

// FromWire returns the register a node sent in a counters frame. A state without
// a kind is a sum. It returns an error wrapping ErrInvalid for a state
// stream.CounterState.Validate refuses.
func FromWire(s stream.CounterState) (Register, error) {
	if err := s.Validate(); err != nil {
		return Register{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var r Register
	if s.Kind != "" {
		k, err := ParseKind(s.Kind)
		if err != nil {
			return Register{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		r.Kind = k
	}
	if r.Kind == KindSum {
		r.PN = PN{P: s.P, N: s.N}
	} else {
		r.Value, r.Set, r.Stamp = s.Value, s.Set, HLC{Wall: s.Wall, Logical: s.Logical}
	}
	if err := r.Validate(); err != nil {
		return Register{}, err
	}
	return r, nil
}

// Wire returns the state an edge sends for register r of counter name. A sum
// has an empty Kind, the shape edges sent before kinds, which every hub reads.
func (r Register) Wire(name string) stream.CounterState {
	s := stream.CounterState{Name: name, P: r.PN.P, N: r.PN.N, Value: r.Value, Set: r.Set, Wall: r.Stamp.Wall, Logical: r.Stamp.Logical}
	if r.Kind != KindSum {
		s.Kind = r.Kind.String()
	}
	return s
}
