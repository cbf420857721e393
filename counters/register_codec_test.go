package counters

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

func TestEncodeRegisterShapes(t *testing.T) {
	tests := []struct {
		name string
		r    Register
		json string
	}{
		{"sum", Register{PN: PN{P: 5}}, `{"p":5,"n":0}`},
		{"max", Register{Kind: KindMax, Value: 21.5, Set: true}, `{"kind":"max","value":21.5}`},
		{"max of -0", Register{Kind: KindMax, Value: math.Copysign(0, -1), Set: true}, `{"kind":"max","value":-0}`},
		{"empty max", Register{Kind: KindMax}, `{"kind":"max","value":null}`},
		{"min", Register{Kind: KindMin, Value: -4, Set: true}, `{"kind":"min","value":-4}`},
		{"min near zero", Register{Kind: KindMin, Value: math.SmallestNonzeroFloat64, Set: true}, `{"kind":"min","value":5e-324}`},
		{"last", Register{Kind: KindLast, Value: 2, Set: true, Stamp: HLC{Wall: 1_700_000_000_000}},
			`{"kind":"last","value":2,"wall":1700000000000,"logical":0}`},
		{"last at the top", Register{Kind: KindLast, Value: -math.MaxFloat64, Set: true, Stamp: HLC{Wall: math.MaxInt64, Logical: math.MaxUint32}},
			`{"kind":"last","value":-1.7976931348623157e+308,"wall":9223372036854775807,"logical":4294967295}`},
		{"empty last", Register{Kind: KindLast}, `{"kind":"last","value":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeRegister(tt.r)
			if err != nil || string(b) != tt.json {
				t.Fatalf("EncodeRegister = %s, %v; want %s", b, err, tt.json)
			}
			got, err := DecodeRegister(b)
			if err != nil || !same(got, tt.r) {
				t.Fatalf("DecodeRegister(%s) = %+v, %v; want %+v", b, got, err, tt.r)
			}
		})
	}
	for _, bad := range []Register{{Kind: KindMax, Value: math.NaN(), Set: true}, {PN: PN{N: -1}}, {Kind: 9}} {
		if b, err := EncodeRegister(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("EncodeRegister(%+v) = %s, %v; want ErrInvalid", bad, b, err)
		}
	}
}

// TestSumRegisterIsTheOldPN checks that a sum is stored exactly as hubs before
// kinds stored a PN, and that what they stored reads as a sum.
func TestSumRegisterIsTheOldPN(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for range iterations {
		c := randPN(r)
		b, err := EncodeRegister(Register{PN: c})
		if err != nil || string(b) != string(EncodePN(c)) {
			t.Fatalf("EncodeRegister(sum %+v) = %s, %v; want EncodePN's %s", c, b, err, EncodePN(c))
		}
		got, err := DecodeRegister(EncodePN(c))
		if err != nil || !same(got, Register{PN: c}) {
			t.Fatalf("DecodeRegister(%s) = %+v, %v", EncodePN(c), got, err)
		}
	}
	for _, old := range []string{`{"p":5,"n":0}`, ` {"n":9223372036854775807,"p":1} `, `{"kind":"sum","p":2,"n":3}`} {
		if got, err := DecodeRegister([]byte(old)); err != nil || got.Kind != KindSum {
			t.Errorf("DecodeRegister(%s) = %+v, %v; want a sum", old, got, err)
		}
	}
}

func TestRegisterCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for range iterations {
		reg := randRegister(r, kinds[r.IntN(len(kinds))])
		b, err := EncodeRegister(reg)
		if err != nil {
			t.Fatalf("EncodeRegister(%+v): %v", reg, err)
		}
		if got, err := DecodeRegister(b); err != nil || !same(got, reg) {
			t.Fatalf("bucket round trip of %+v via %s: %+v, %v", reg, b, got, err)
		}
		// Through a counters frame, as an edge sends it.
		frame, err := stream.EncodeControl(stream.KindCounters, "edge", "ep", []stream.CounterState{reg.Wire("c")})
		if err != nil {
			t.Fatalf("encode frame of %+v: %v", reg, err)
		}
		f, err := stream.Decode(frame)
		if err != nil || len(f.Counters) != 1 {
			t.Fatalf("decode frame of %+v: %+v, %v", reg, f, err)
		}
		if got, err := FromWire(f.Counters[0]); err != nil || !same(got, reg) {
			t.Fatalf("wire round trip of %+v via %+v: %+v, %v", reg, f.Counters[0], got, err)
		}
	}
}

func TestDecodeRegisterRejects(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{`{"p":5}`, `fields "p" and "n"`},
		{`{"kind":"sum"}`, `fields "p" and "n"`},
		{`{"p":5,"n":0,"value":1}`, `a sum state has no field "value"`},
		{`{"p":5,"n":0,"logical":1}`, `no field "logical"`},
		{`{"p":-1,"n":0}`, "must not be negative"},
		{`{"kind":"avg","value":1}`, "unknown kind"},
		{`{"kind":"","p":0,"n":0}`, "unknown kind"},
		{`{"kind":3,"value":1}`, "cannot unmarshal"},
		{`{"kind":"max"}`, `needs field "value"`},
		{`{"kind":"max","value":1,"p":0}`, `a max state has no field "p"`},
		{`{"kind":"min","value":1,"wall":1,"logical":0}`, `a min state has no field "wall"`},
		{`{"kind":"max","value":"1"}`, "cannot unmarshal"},
		{`{"kind":"max","value":1e999}`, "cannot unmarshal"},
		{`{"kind":"max","value":NaN}`, "invalid character"},
		{`{"kind":"max","value":[1]}`, "cannot unmarshal"},
		{`{"kind":"last","value":1}`, `needs fields "wall" and "logical"`},
		{`{"kind":"last","value":1,"logical":0}`, `needs fields "wall" and "logical"`},
		{`{"kind":"last","value":null,"wall":1,"logical":0}`, `a last state has no field "wall"`},
		{`{"kind":"last","value":1,"wall":0,"logical":0}`, "exactly when set"},
		{`{"kind":"last","value":1,"wall":-1,"logical":3}`, "negative wall"},
		{`{"kind":"last","value":1,"wall":1,"logical":-1}`, "cannot unmarshal"},
		{`{"kind":"max","value":1,"x":1}`, `unknown field "x"`},
		{`{"kind":"max","value":1}{}`, "trailing data"},
		{`null`, `fields "p" and "n"`},
		{`[]`, "cannot unmarshal"},
		{``, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodeRegister([]byte(tt.in))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeRegister(%q) = %+v, %v; want ErrInvalid saying %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := DecodeRegister([]byte(`{"kind":"avg","value":1}`)); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v, want ErrUnknownKind too", err)
	}
}

func TestFromWire(t *testing.T) {
	tests := []struct {
		name string
		in   stream.CounterState
		want Register
		err  string
	}{
		{"old sum", stream.CounterState{Name: "doors", P: 10, N: 3}, Register{PN: PN{P: 10, N: 3}}, ""},
		{"explicit sum", stream.CounterState{Name: "doors", Kind: "sum", P: 1}, Register{PN: PN{P: 1}}, ""},
		{"max", stream.CounterState{Name: "t", Kind: "max", Value: 2, Set: true}, Register{Kind: KindMax, Value: 2, Set: true}, ""},
		{"empty min", stream.CounterState{Name: "t", Kind: "min"}, Register{Kind: KindMin}, ""},
		{"last", stream.CounterState{Name: "m", Kind: "last", Value: 1, Set: true, Wall: 7, Logical: 2},
			Register{Kind: KindLast, Value: 1, Set: true, Stamp: HLC{Wall: 7, Logical: 2}}, ""},
		{"negative", stream.CounterState{Name: "doors", N: -3}, Register{}, "must not be negative"},
		{"bad name", stream.CounterState{Name: "a.b"}, Register{}, `counter name "a.b"`},
		{"unknown kind", stream.CounterState{Name: "t", Kind: "avg"}, Register{}, `unknown kind "avg"`},
		{"NaN", stream.CounterState{Name: "t", Kind: "max", Value: math.NaN(), Set: true}, Register{}, "not a finite number"},
		{"sum with a value", stream.CounterState{Name: "t", Value: 1}, Register{}, "no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromWire(tt.in)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("FromWire(%+v) = %+v, %v; want ErrInvalid saying %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !same(got, tt.want) {
				t.Fatalf("FromWire(%+v) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	// A sum goes out in the shape edges always sent.
	b, err := json.Marshal(Register{PN: PN{P: 10, N: 3}}.Wire("doors"))
	if err != nil || string(b) != `{"name":"doors","p":10,"n":3}` {
		t.Fatalf("sum on the wire: %s, %v", b, err)
	}
}

// FuzzDecodeRegister checks that DecodeRegister never panics, accepts only
// valid registers, and that whatever it accepts survives a round trip.
func FuzzDecodeRegister(f *testing.F) {
	for _, s := range []string{
		`{"p":5,"n":0}`, `{"kind":"sum","p":1,"n":2}`, `{"kind":"max","value":-0}`, `{"kind":"min","value":null}`,
		`{"kind":"last","value":1.5,"wall":9,"logical":1}`, `{"kind":"last","value":null}`, `{"kind":"max","value":1e308}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRegister(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted invalid %+v: %v", r, err)
		}
		enc, err := EncodeRegister(r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		if again, err := DecodeRegister(enc); err != nil || !same(again, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}
