package pattern

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

// colValues flattens c: per column name, each event's kind and value.
func colValues(c *Columns) map[string][]string {
	out := map[string][]string{}
	for _, name := range c.names {
		col := c.cols[name]
		vals := make([]string, c.N)
		for i, k := range col.Kind {
			switch k {
			case ColInt:
				vals[i] = fmt.Sprint("i", col.Int[i])
			case ColFloat:
				vals[i] = fmt.Sprint("f", math.Float64bits(col.Float[i]))
			case ColString:
				vals[i] = "s" + col.Dict[col.Str[i]]
			default:
				vals[i] = fmt.Sprint("k", k)
			}
		}
		out[name] = vals
	}
	return out
}

// checkBuild checks that the fast builder, where it does not give up, builds
// what the slow one builds.
func checkBuild(t *testing.T, evs []stream.Event) (fast bool) {
	t.Helper()
	f, ok := buildColumnsFast(evs)
	if _, valid := BuildColumnsChecked(evs); valid {
		for i := range evs {
			if !stream.IsObject(evs[i].Data) {
				t.Fatalf("BuildColumnsChecked calls %q valid", evs[i].Data)
			}
		}
	}
	if !ok {
		return false
	}
	s := buildColumnsSlow(evs)
	if len(s.names) >= MaxColumns {
		return true // which paths get columns is then the slow way's map order
	}
	if f.Complete != s.Complete || f.N != s.N {
		t.Fatalf("complete %v n %d, want %v %d", f.Complete, f.N, s.Complete, s.N)
	}
	fv, sv := colValues(f), colValues(s)
	if len(fv) != len(sv) {
		t.Fatalf("%d columns %q, want %d %q", len(fv), f.names, len(sv), s.names)
	}
	for name, want := range sv {
		got, ok := fv[name]
		if !ok {
			t.Fatalf("no column %q", name)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("column %q event %d: %s, want %s", name, i, got[i], want[i])
			}
		}
	}
	for i := range evs {
		if f.TS[i] != s.TS[i] || f.Seq[i] != s.Seq[i] {
			t.Fatalf("event %d: ts/seq differ", i)
		}
	}
	return true
}

func eventsOf(docs ...string) []stream.Event {
	evs := make([]stream.Event, len(docs))
	for i, d := range docs {
		evs[i] = stream.Event{Seq: uint64(i + 1), TS: int64(i), Data: json.RawMessage(d)}
	}
	return evs
}

func TestBuildColumnsFastAgreesWithSlow(t *testing.T) {
	cases := []struct {
		docs []string
		fast bool
	}{
		{[]string{`{"a":1,"b":"x","c":{"d":2.5}}`, `{"a":2.5}`, ` { "a" : -0 , "b":"x" } `}, true},
		{[]string{`{"ts":1735689600000,"sensor":"sensor-001","site":"north","temp":26.123456789012345,"humidity":55.5,"gps":{"lat":50.1,"lon":4.2},"status":"ok"}`}, true},
		{[]string{`{"a":{"b":{"c":{"d":{"e":1}}}}}`, `{"a":{"b":{"c":{"d":{}}}}}`, `{"a":[1,{"b":2}],"n":null,"t":true,"f":false}`}, true},
		{[]string{`{"\u0061":"\u00e9x","k\u0000":1,"s":"a\nb","big":12345678901234567890,"e":1e300,"m":-9223372036854775808}`}, true},
		{[]string{`{"a":1,"a":2}`}, false},
		{[]string{`{"a":{"x":1},"a":2}`}, false},
		{[]string{`{"a":"\u0061","\u0061":1}`}, false},
		{[]string{`{"a":1e999}`}, false},
		{[]string{`{"a":[1e999]}`}, false},
		{[]string{`{"a":1}`, `[1]`}, false},
		{[]string{`{"a":1} x`}, false},
	}
	for _, c := range cases {
		if got := checkBuild(t, eventsOf(c.docs...)); got != c.fast {
			t.Errorf("%q: fast %v, want %v", c.docs, got, c.fast)
		}
	}
	// As deep as encoding/json allows, and deeper.
	for _, depth := range []int{9999, 10000, 10001} {
		for _, open := range []string{`{"a":`, `[`} {
			close := map[string]string{`{"a":`: "}", `[`: "]"}[open]
			doc := `{"x":` + strings.Repeat(open, depth-1) + "1" + strings.Repeat(close, depth-1) + "}"
			if _, valid := BuildColumnsChecked(eventsOf(doc)); valid && !json.Valid([]byte(doc)) {
				t.Fatalf("depth %d of %s: valid, json.Valid says not", depth, open)
			}
		}
	}
	// Many paths: past MaxColumns the columns are incomplete either way.
	var docs []string
	for i := range 300 {
		docs = append(docs, fmt.Sprintf(`{"k%d":%d}`, i, i))
	}
	if f, ok := buildColumnsFast(eventsOf(docs...)); !ok || f.Complete || len(f.names) != MaxColumns {
		t.Fatalf("300 paths: ok %v complete %v, %d columns", ok, f != nil && f.Complete, len(f.names))
	}
}

func TestBuildColumnsFastRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		evs := make([]stream.Event, 1+rng.IntN(20))
		for i := range evs {
			obj := map[string]any{}
			for range rng.IntN(6) {
				obj[string(rune('a'+rng.IntN(5)))] = randomValue(rng)
			}
			if rng.IntN(3) == 0 {
				obj["o"] = map[string]any{"x": randomValue(rng), "y": map[string]any{"z": randomValue(rng)}}
			}
			d, _ := json.Marshal(obj)
			evs[i] = stream.Event{Seq: uint64(i + 1), TS: int64(i), Data: d}
		}
		if !checkBuild(t, evs) {
			t.Fatalf("fast builder gave up on %s", evs[0].Data)
		}
	}
}

func FuzzBuildColumns(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x","c":{"d":2.5}}`, `{"a":{"b":{"c":{"d":{"e":1}}}}}`, `{"a":1,"a":2}`,
		`{"a":[1,{"b":null}],"temp":"x","gps":null}`, `{"\u0061":"\ud800","x":"\xff"}`, `{"a":1e999}`, `{}`} {
		f.Add(s, `{"a":2}`)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkBuild(t, eventsOf(a, b))
	})
}
