package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// counterFrame builds a counters frame of node "n", epoch "e" around a payload
// written by hand, as an old or hostile edge could send it.
func counterFrame(payload string) []byte {
	b := []byte{Version, byte(KindCounters)}
	b = appendString(b, "n")
	b = appendString(b, "e")
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = append(b, payload...)
	return appendCRC(b, 0)
}

func TestCounterStateShapes(t *testing.T) {
	tests := []struct {
		name string
		c    CounterState
		json string
	}{
		// The sum's shape is the one edges and hubs used before counter kinds.
		{"sum", CounterState{Name: "doors", P: 10, N: 3}, `{"name":"doors","p":10,"n":3}`},
		{"zero sum", CounterState{Name: "idle"}, `{"name":"idle","p":0,"n":0}`},
		{"max", CounterState{Name: "temp", Kind: CounterMax, Value: 21.5, Set: true}, `{"name":"temp","kind":"max","value":21.5}`},
		{"max of zero", CounterState{Name: "temp", Kind: CounterMax, Set: true}, `{"name":"temp","kind":"max","value":0}`},
		{"unset min", CounterState{Name: "low", Kind: CounterMin}, `{"name":"low","kind":"min","value":null}`},
		{"last", CounterState{Name: "mode", Kind: CounterLast, Value: -2, Set: true, Wall: 1_700_000_000_000, Logical: 4294967295},
			`{"name":"mode","kind":"last","value":-2,"wall":1700000000000,"logical":4294967295}`},
		{"last at wall 0", CounterState{Name: "mode", Kind: CounterLast, Value: 1e300, Set: true, Logical: 1},
			`{"name":"mode","kind":"last","value":1e+300,"wall":0,"logical":1}`},
		{"unset last", CounterState{Name: "mode", Kind: CounterLast}, `{"name":"mode","kind":"last","value":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.c)
			if err != nil || string(b) != tt.json {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tt.json)
			}
			var got CounterState
			if err := json.Unmarshal(b, &got); err != nil || got != tt.c {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want %+v", b, got, err, tt.c)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

// TestOldEdgeFrameDecodesAsSums feeds the bytes an edge built before counter
// kinds: they decode to sums, and a sum re-encodes to the same bytes, so an old
// hub reads what a new edge sends.
func TestOldEdgeFrameDecodesAsSums(t *testing.T) {
	const payload = `[{"name":"doors","p":10,"n":3},{"name":"idle","p":0,"n":0}]`
	old := counterFrame(payload)
	f, err := Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	want := []CounterState{{Name: "doors", P: 10, N: 3}, {Name: "idle"}}
	if len(f.Counters) != 2 || f.Counters[0] != want[0] || f.Counters[1] != want[1] {
		t.Fatalf("counters %+v, want %+v", f.Counters, want)
	}
	again, err := EncodeControl(KindCounters, "n", "e", f.Counters)
	if err != nil || string(again) != string(old) {
		t.Fatalf("re-encoded frame differs from the old edge's:\n got %q\nwant %q (%v)", again, old, err)
	}
	// An explicit sum kind is the same state.
	f, err = Decode(counterFrame(`[{"kind":"sum","name":"doors","n":3,"p":10}]`))
	if err != nil || len(f.Counters) != 1 || f.Counters[0] != want[0] {
		t.Fatalf(`"kind":"sum": %+v, %v; want %+v`, f, err, want[0])
	}
}

func TestCounterStateRejects(t *testing.T) {
	tests := []struct {
		payload string
		want    string
	}{
		{`[{"p":1,"n":0}]`, `without "name"`},
		{`[null]`, `without "name"`},
		{`[{"name":"c","p":1}]`, `needs fields "p" and "n"`},
		{`[{"name":"c","n":1}]`, `needs fields "p" and "n"`},
		{`[{"name":"c","kind":"sum"}]`, `needs fields "p" and "n"`},
		{`[{"name":"c","p":1,"n":0,"value":3}]`, `a sum state has no field "value"`},
		{`[{"name":"c","p":1,"n":0,"wall":3}]`, `no field "wall"`},
		{`[{"name":"c","p":-1,"n":0}]`, "must not be negative"},
		{`[{"name":"c","p":1,"n":0,"x":0}]`, `unknown field "x"`},
		{`[{"name":"c","kind":"avg","value":1}]`, `unknown kind "avg"`},
		{`[{"name":"c","kind":"","p":0,"n":0}]`, `unknown kind ""`},
		{`[{"name":"c","kind":"MAX","value":1}]`, `unknown kind "MAX"`},
		{`[{"name":"c","kind":"max"}]`, `needs field "value"`},
		{`[{"name":"c","kind":"max","value":1,"n":0}]`, `a max state has no field "n"`},
		{`[{"name":"c","kind":"min","value":1,"wall":5,"logical":0}]`, `a min state has no field "wall"`},
		{`[{"name":"c","kind":"max","value":"1"}]`, "cannot unmarshal"},
		{`[{"name":"c","kind":"max","value":1e400}]`, "cannot unmarshal"},
		{`[{"name":"c","kind":"max","value":true}]`, "cannot unmarshal"},
		{`[{"name":"c","kind":"last","value":1}]`, `needs fields "wall" and "logical"`},
		{`[{"name":"c","kind":"last","value":1,"wall":5}]`, `needs fields "wall" and "logical"`},
		{`[{"name":"c","kind":"last","value":null,"wall":5,"logical":0}]`, `a last state has no field "wall"`},
		{`[{"name":"c","kind":"last","value":1,"wall":0,"logical":0}]`, "exactly when set"},
		{`[{"name":"c","kind":"last","value":1,"wall":-5,"logical":3}]`, "negative"},
		{`[{"name":"c","kind":"last","value":1,"wall":5,"logical":-1}]`, "cannot unmarshal"},
		{`[{"name":"c","kind":"last","value":1,"wall":5,"logical":4294967296}]`, "cannot unmarshal"},
		{`[{"name":"c","kind":"last","value":1,"wall":1.5,"logical":0}]`, "cannot unmarshal"},
		{`[{"name":"_c","kind":"max","value":1}]`, `counter name "_c"`},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			_, err := Decode(counterFrame(tt.payload))
			if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want ErrBadFrame containing %q", err, tt.want)
			}
		})
	}
}

func TestCounterStateValidate(t *testing.T) {
	tests := []struct {
		name string
		c    CounterState
		want string // "" when valid
	}{
		{"sum", CounterState{Name: "c", Kind: CounterSum, P: math.MaxInt64}, ""},
		{"sum with value", CounterState{Name: "c", Value: 1}, "no value or stamp"},
		{"sum with set", CounterState{Name: "c", Set: true}, "no value or stamp"},
		{"sum with stamp", CounterState{Name: "c", Logical: 1}, "no value or stamp"},
		{"negative n", CounterState{Name: "c", N: -1}, "must not be negative"},
		{"unknown kind", CounterState{Name: "c", Kind: "avg"}, `unknown kind "avg"`},
		{"max with p", CounterState{Name: "c", Kind: CounterMax, P: 1, Set: true}, "no p or n"},
		{"max NaN", CounterState{Name: "c", Kind: CounterMax, Value: math.NaN(), Set: true}, "not a finite number"},
		{"min -Inf", CounterState{Name: "c", Kind: CounterMin, Value: math.Inf(-1), Set: true}, "not a finite number"},
		{"unset max with value", CounterState{Name: "c", Kind: CounterMax, Value: 3}, "never set"},
		{"max with stamp", CounterState{Name: "c", Kind: CounterMax, Set: true, Wall: 3}, "no stamp"},
		{"last", CounterState{Name: "c", Kind: CounterLast, Set: true, Logical: 1}, ""},
		{"set last without stamp", CounterState{Name: "c", Kind: CounterLast, Set: true}, "exactly when set"},
		{"negative wall", CounterState{Name: "c", Kind: CounterLast, Set: true, Wall: -1, Logical: 9}, "negative"},
		{"bad name", CounterState{Name: "c*", Kind: CounterMax}, `counter name "c*"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// What JSON cannot hold is an encoding error, never a frame a hub refuses.
	for _, c := range []CounterState{{Name: "c", Kind: CounterMax, Value: math.NaN(), Set: true}, {Name: "c", Kind: "avg"}} {
		if _, err := EncodeControl(KindCounters, "n", "e", []CounterState{c}); err == nil {
			t.Errorf("EncodeControl(%+v) succeeded", c)
		}
	}
}
