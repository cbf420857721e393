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

// validate checks one incoming state of one node before anything is written.
func validate(node string, s stream.CounterState) error {
	if err := stream.ValidateName("counter", s.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if s.P < 0 || s.N < 0 {
		return fmt.Errorf("%w: counter %q of node %q: p %d and n %d must not be negative", ErrInvalid, s.Name, node, s.P, s.N)
	}
	return nil
}
