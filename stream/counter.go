package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Counter kinds as CounterState.Kind names them. A state without a kind is a sum:
// edges that predate counter kinds send none.
const (
	CounterSum  = "sum"
	CounterMax  = "max"
	CounterMin  = "min"
	CounterLast = "last"
)

// CounterState is one node's whole state of one counter, as an edge sends it in a
// counters frame. Its Kind decides which fields hold the state; the fields of the
// other kinds stay zero:
//
//   - sum (Kind "" or CounterSum): P and N of the PN-counter. JSON
//     {"name":"doors","p":10,"n":3}, byte for byte what edges sent before counter
//     kinds existed, so old and new hubs and edges read each other's sums.
//   - CounterMax, CounterMin: Value, when Set. JSON
//     {"name":"temp","kind":"max","value":21.5}, and "value":null when no value
//     was ever set.
//   - CounterLast: Value and the hybrid logical clock stamp of its write, Wall
//     (Unix milliseconds) and Logical, when Set. JSON
//     {"name":"mode","kind":"last","value":2,"wall":1700000000000,"logical":0},
//     or {"name":"mode","kind":"last","value":null} when never written.
//
// Decoding accepts exactly these shapes and reports a missing, unknown or
// misplaced field; it turns an explicit "kind":"sum" into Kind "". Validate checks
// the values.
type CounterState struct {
	Name    string
	Kind    string
	P       int64
	N       int64
	Value   float64
	Set     bool
	Wall    int64
	Logical uint32
}

// sumJSON is the sum's shape, the one CounterState had before kinds.
type sumJSON struct {
	Name string `json:"name"`
	P    int64  `json:"p"`
	N    int64  `json:"n"`
}

// registerJSON is the shape of the other kinds.
type registerJSON struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Value   *float64 `json:"value"`
	Wall    *int64   `json:"wall,omitempty"`
	Logical *uint32  `json:"logical,omitempty"`
}

// MarshalJSON encodes c in the shape of its kind (see CounterState). It returns
// an error for an unknown kind or a value that is NaN or infinite, which JSON
// cannot hold.
func (c CounterState) MarshalJSON() ([]byte, error) {
	switch c.Kind {
	case "", CounterSum:
		return json.Marshal(sumJSON{Name: c.Name, P: c.P, N: c.N})
	case CounterMax, CounterMin, CounterLast:
		v := registerJSON{Name: c.Name, Kind: c.Kind}
		if c.Set {
			v.Value = &c.Value
			if c.Kind == CounterLast {
				v.Wall, v.Logical = &c.Wall, &c.Logical
			}
		}
		return json.Marshal(v)
	}
	return nil, fmt.Errorf("counter %q: unknown kind %q", c.Name, c.Kind)
}

// UnmarshalJSON decodes one state written by MarshalJSON, or by an edge that
// predates counter kinds. It refuses unknown fields, a missing "name", a sum
// without "p" and "n", a register without "value", a set last register without
// "wall" and "logical", and any field that belongs to another kind.
func (c *CounterState) UnmarshalJSON(b []byte) error {
	var v struct {
		Name    *string         `json:"name"`
		Kind    *string         `json:"kind"`
		P       *int64          `json:"p"`
		N       *int64          `json:"n"`
		Value   json.RawMessage `json:"value"`
		Wall    *int64          `json:"wall"`
		Logical *uint32         `json:"logical"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if v.Name == nil {
		return errors.New(`counter state without "name"`)
	}
	out := CounterState{Name: *v.Name, Kind: CounterSum}
	if v.Kind != nil {
		out.Kind = *v.Kind
	}
	// misplaced names the first field present that the kind has no use for.
	misplaced := func(fields map[string]bool) error {
		for _, f := range []string{"p", "n", "value", "wall", "logical"} {
			if fields[f] {
				return fmt.Errorf("counter %q: a %s state has no field %q", out.Name, kindName(out.Kind), f)
			}
		}
		return nil
	}
	switch out.Kind {
	case CounterSum:
		out.Kind = ""
		if v.P == nil || v.N == nil {
			return fmt.Errorf(`counter %q: a sum state needs fields "p" and "n"`, out.Name)
		}
		if err := misplaced(map[string]bool{"value": v.Value != nil, "wall": v.Wall != nil, "logical": v.Logical != nil}); err != nil {
			return err
		}
		out.P, out.N = *v.P, *v.N
	case CounterMax, CounterMin, CounterLast:
		if v.Value == nil {
			return fmt.Errorf(`counter %q: a %s state needs field "value" (null when never set)`, out.Name, out.Kind)
		}
		out.Set = string(v.Value) != "null"
		if out.Set {
			if err := json.Unmarshal(v.Value, &out.Value); err != nil {
				return fmt.Errorf("counter %q: value: %w", out.Name, err)
			}
		}
		stamped := out.Kind == CounterLast && out.Set
		if stamped && (v.Wall == nil || v.Logical == nil) {
			return fmt.Errorf(`counter %q: a set last state needs fields "wall" and "logical"`, out.Name)
		}
		if err := misplaced(map[string]bool{"p": v.P != nil, "n": v.N != nil, "wall": !stamped && v.Wall != nil, "logical": !stamped && v.Logical != nil}); err != nil {
			return err
		}
		if stamped {
			out.Wall, out.Logical = *v.Wall, *v.Logical
		}
	default:
		return fmt.Errorf("counter %q: unknown kind %q, want sum, max, min or last", out.Name, out.Kind)
	}
	*c = out
	return nil
}

// Validate checks a state's values: a valid counter name, a known kind, p and n
// not negative for a sum, a finite value for a register, and for a last register
// a stamp after (0, 0) with a non-negative wall exactly when it is set. Fields
// of other kinds must be zero, and so must Value when not Set.
func (c CounterState) Validate() error {
	if err := ValidateName("counter", c.Name); err != nil {
		return err
	}
	stamp := c.Wall != 0 || c.Logical != 0
	switch c.Kind {
	case "", CounterSum:
		if c.P < 0 || c.N < 0 {
			return fmt.Errorf("counter %q: p %d and n %d must not be negative", c.Name, c.P, c.N)
		}
		if c.Set || c.Value != 0 || stamp {
			return fmt.Errorf("counter %q: a sum has no value or stamp", c.Name)
		}
		return nil
	case CounterMax, CounterMin, CounterLast:
	default:
		return fmt.Errorf("counter %q: unknown kind %q, want sum, max, min or last", c.Name, c.Kind)
	}
	switch {
	case c.P != 0 || c.N != 0:
		return fmt.Errorf("counter %q: a %s register has no p or n", c.Name, c.Kind)
	case math.IsNaN(c.Value) || math.IsInf(c.Value, 0):
		return fmt.Errorf("counter %q: value %v is not a finite number", c.Name, c.Value)
	case !c.Set && c.Value != 0:
		return fmt.Errorf("counter %q: value %v of a register that was never set", c.Name, c.Value)
	case c.Kind != CounterLast && stamp:
		return fmt.Errorf("counter %q: a %s register has no stamp", c.Name, c.Kind)
	case c.Kind == CounterLast && c.Wall < 0:
		return fmt.Errorf("counter %q: stamp wall %d is negative", c.Name, c.Wall)
	case c.Kind == CounterLast && c.Set != stamp:
		return fmt.Errorf("counter %q: a last register has a stamp after (0, 0) exactly when set", c.Name)
	}
	return nil
}

func kindName(k string) string {
	if k == "" {
		return CounterSum
	}
	return k
}
