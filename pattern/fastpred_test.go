package pattern

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/expr-lang/expr/parser"

	"github.com/tributary-edge/tributary/stream"
)

// fastOf compiles src as Prepare does and returns its predicate, failing when
// the expression has no fast form and want is true.
func fastOf(t testing.TB, src string) *predicate {
	t.Helper()
	p, err := compileWhere(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return p
}

func TestCompileFastCoversComparisonsOnly(t *testing.T) {
	for _, tt := range []struct {
		src  string
		fast bool
	}{
		{`temp > 1000 && site == "north"`, true},
		{`!(temp <= 3.5) || gps.lat >= -2`, true},
		{`node == "a" and seq > 10 or stream != "s"`, true},
		{`site == nil`, true},
		{`count > 3`, true}, // a data field named like a builtin
		{`temp`, false},
		{`temp + 1 > 3`, false},
		{`site in ["a", "b"]`, false},
		{`gps?.lat > 3`, false},
		{`(temp ?? 0) > 3`, false},
		{`ts > date("2024-01-01")`, false},
		{`len(site) > 3`, false},
		{`$env.temp > 3`, false},
		{`let x = 3; x > 2`, false},
	} {
		p := fastOf(t, tt.src)
		if (p.fast != nil) != tt.fast {
			t.Errorf("%s: fast form %v, want %v", tt.src, p.fast != nil, tt.fast)
		}
	}
}

// randomValue returns a JSON value of a kind a comparison may meet.
func randomValue(rng *rand.Rand) any {
	switch rng.IntN(9) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return rng.IntN(7) - 3
	case 3:
		return float64(rng.IntN(70))/10 - 3
	case 4:
		return []string{"a", "b", "north", ""}[rng.IntN(4)]
	case 5:
		return map[string]any{"lat": rng.IntN(5)}
	case 6:
		return []any{1, 2}
	case 7:
		return 1 << 62
	default:
		return "\u00e9t\u00e9"
	}
}

func randomOperand(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0, 1, 2:
		return []string{"a", "b", "c"}[rng.IntN(3)]
	case 3:
		return "g.lat"
	case 4:
		return []string{"node", "stream", "seq"}[rng.IntN(3)]
	case 5:
		return fmt.Sprint(rng.IntN(7) - 3)
	case 6:
		return fmt.Sprintf("%.1f", float64(rng.IntN(70))/10-3)
	case 7:
		return []string{`"a"`, `"north"`, `""`, `"été"`}[rng.IntN(4)]
	case 8:
		return []string{"true", "false", "nil"}[rng.IntN(3)]
	}
	return "-2"
}

func randomFastExpr(rng *rand.Rand, depth int) string {
	if depth > 2 || rng.IntN(3) == 0 {
		op := []string{"==", "!=", "<", "<=", ">", ">="}[rng.IntN(6)]
		return randomOperand(rng) + " " + op + " " + randomOperand(rng)
	}
	switch rng.IntN(4) {
	case 0:
		return "!(" + randomFastExpr(rng, depth+1) + ")"
	case 1:
		return "(" + randomFastExpr(rng, depth+1) + ") || (" + randomFastExpr(rng, depth+1) + ")"
	}
	return "(" + randomFastExpr(rng, depth+1) + ") && (" + randomFastExpr(rng, depth+1) + ")"
}

// TestFastPredicateAgreesWithExpr evaluates random comparisons over random
// events both ways, through the columns and through expr over the JSON: they
// must agree on every event (an event the fast form leaves to expr is checked
// to hold a complex value it reads).
func TestFastPredicateAgreesWithExpr(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var evs []stream.Event
	for i := range 300 {
		d := map[string]any{}
		for _, k := range []string{"a", "b", "c"} {
			if rng.IntN(4) != 0 {
				d[k] = randomValue(rng)
			}
		}
		switch rng.IntN(3) {
		case 0:
			d["g"] = map[string]any{"lat": randomValue(rng)}
		case 1:
			d["g"] = randomValue(rng)
		}
		b, _ := json.Marshal(d)
		evs = append(evs, stream.Event{Node: []string{"a", "n1"}[i%2], Stream: "s", Seq: uint64(i), Data: b})
	}
	cols := BuildColumns(evs)
	if !cols.Complete {
		t.Fatal("columns of small events are not complete")
	}
	checked, unsure := 0, 0
	for round := range 2000 {
		src := randomFastExpr(rng, 0)
		tree, err := parser.Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		p, err := compileWhere(src)
		if err != nil {
			continue // refused at compile time (node > 3 and such)
		}
		if p.fast == nil {
			t.Fatalf("round %d: %s has no fast form (%T)", round, src, tree.Node)
		}
		bound, ok := p.fast.bind(cols, nil)
		if !ok {
			t.Fatalf("%s: complete columns could not bind", src)
		}
		e := p.get()
		for i := range evs {
			ev := &evs[i]
			want := p.eval(e, ev)
			r := frow{cols: bound, i: i, node: ev.Node, stream: ev.Stream, seq: ev.Seq}
			switch got := p.fast.eval(&r); got {
			case fastUnsure:
				unsure++
			default:
				checked++
				if (got == fastYes) != want {
					t.Fatalf("%s on %s: fast says %v, expr says %v", src, ev.Data, got == fastYes, want)
				}
			}
		}
		p.put(e)
	}
	if checked < 100000 || unsure == 0 {
		t.Fatalf("checked %d events, %d left to expr: the test data is too tame", checked, unsure)
	}
}

func TestColumnsRoundTrip(t *testing.T) {
	evs := []stream.Event{
		{Data: json.RawMessage(`{"a":1,"b":"x","c":{"d":2.5,"e":[1]},"f":null,"g":true}`)},
		{Data: json.RawMessage(`{"a":9007199254740993,"b":"x","h":"\u00e9"}`)},
		{Data: json.RawMessage(`{}`)},
	}
	c := BuildColumns(evs)
	b := AppendColumns(nil, c)
	d, err := DecodeColumns(b, 3)
	if err != nil {
		t.Fatal(err)
	}
	if again := AppendColumns(nil, d); string(again) != string(b) {
		t.Fatal("columns do not re-encode to the same bytes")
	}
	a := d.Column([]string{"a"})
	if a.Kind[0] != ColInt || a.Int[0] != 1 || a.Int[1] != 9007199254740993 || a.Kind[2] != ColMissing {
		t.Fatalf("column a %+v", a)
	}
	if cd := d.Column([]string{"c", "d"}); cd.Kind[0] != ColFloat || cd.Float[0] != 2.5 {
		t.Fatalf("column c.d %+v", cd)
	}
	if ce := d.Column([]string{"c", "e"}); ce.Kind[0] != ColComplex {
		t.Fatalf("column c.e %+v", ce)
	}
	if h := d.Column([]string{"h"}); h.Dict[h.Str[1]] != "é" {
		t.Fatalf("column h %+v", h)
	}
	if _, err := DecodeColumns(b[:len(b)-1], 3); err == nil {
		t.Fatal("truncated columns decoded")
	}
	if _, err := DecodeColumns(b, 4); err == nil {
		t.Fatal("columns of 3 events decoded as 4")
	}
}

// FuzzDecodeColumns checks that any bytes either fail to decode or decode to
// columns whose encoding decodes to the same columns again.
func FuzzDecodeColumns(f *testing.F) {
	c := BuildColumns([]stream.Event{{Data: json.RawMessage(`{"a":1,"b":"x","c":{"d":2.5}}`)}, {Data: json.RawMessage(`{"a":2.5}`)}})
	f.Add(AppendColumns(nil, c), 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		d, err := DecodeColumns(b, n)
		if err != nil {
			return
		}
		canon := AppendColumns(nil, d)
		d2, err := DecodeColumns(canon, n)
		if err != nil {
			t.Fatalf("re-encoded columns do not decode: %v", err)
		}
		if again := AppendColumns(nil, d2); string(again) != string(canon) {
			t.Fatalf("columns change on a second round trip")
		}
	})
}
