package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

var t0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano()

// run prepares r, adds an event per data text (node a, stream s, one
// millisecond apart from t0) and returns the answer.
func run(t *testing.T, r Request, scope []string, evs []stream.Event) *Result {
	t.Helper()
	p, err := Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	st := p.NewState(scope)
	for i := range evs {
		if !p.Query().Matches(&evs[i]) {
			continue
		}
		if err := st.Add(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return p.Result(st)
}

func dataEvents(data ...string) []stream.Event {
	evs := make([]stream.Event, len(data))
	for i, d := range data {
		evs[i] = stream.Event{Node: "a", Epoch: "e", Seq: uint64(i + 1), Stream: "s", TS: t0 + int64(i)*int64(time.Millisecond), Data: json.RawMessage(d)}
	}
	return evs
}

func numbers(vs ...float64) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf(`{"temp":%v}`, v)
	}
	return out
}

func seq(from, to float64) []float64 {
	var out []float64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

var allAggs = []string{"count", "sum(temp)", "min(temp)", "max(temp)", "avg(temp)", "p50(temp)", "p90(temp)", "p95(temp)", "p99(temp)"}

func TestAggregateKinds(t *testing.T) {
	null := math.NaN() // marks an expected null
	tests := []struct {
		name   string
		data   []string
		want   []float64 // per allAggs
		approx bool      // percentiles within 1%
	}{
		{"numbers among other things", []string{`{"temp":3}`, `{"temp":1.5}`, `{"temp":"hot"}`, `{"temp":null}`, `{}`,
			`{"temp":true}`, `{"temp":{"v":1}}`, `{"temp":[2]}`, `not json`, ``, `{"temp":2}`, `{"Temp":9,"gps":{"temp":9}}`},
			[]float64{12, 6.5, 1.5, 3, 6.5 / 3, 2, 3, 3, 3}, false},
		{"no numbers", []string{`{"temp":"x"}`, `{}`}, []float64{2, null, null, null, null, null, null, null, null}, false},
		{"negatives and zeros", numbers(-5, 0, math.Copysign(0, -1), 5, -1), []float64{5, -1, -5, 5, -0.2, 0, 5, 5, 5}, false},
		{"one value", numbers(-7.25), []float64{1, -7.25, -7.25, -7.25, -7.25, -7.25, -7.25, -7.25, -7.25}, false},
		{"64 values stay exact", numbers(seq(1, 64)...), []float64{64, 2080, 1, 64, 32.5, 32, 58, 61, 64}, false},
		{"1 to 100 through the sketch", numbers(seq(1, 100)...), []float64{100, 5050, 1, 100, 50.5, 50, 90, 95, 99}, true},
		{"-200 to -1 through the sketch", numbers(seq(-200, -1)...), []float64{200, -20100, -200, -1, -100.5, -101, -21, -11, -3}, true},
		{"a sum beyond float64", numbers(1.7e308, 1.7e308, -1), []float64{3, null, -1, 1.7e308, null, 1.7e308, 1.7e308, 1.7e308, 1.7e308}, false},
		{"big integers", []string{`{"temp":12345678901234567890}`, `{"temp":-9007199254740993}`},
			[]float64{2, 12345678901234567890 - 9007199254740992, -9007199254740992, 12345678901234567890, (12345678901234567890 - 9007199254740992) / 2.0,
				-9007199254740992, 12345678901234567890, 12345678901234567890, 12345678901234567890}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, Request{Pattern: "all", From: day0, To: day1, Window: "1d", Aggregates: allAggs}, []string{"a"}, dataEvents(tt.data...))
			groups := res.Windows[0].Groups
			if len(groups) != 1 || len(groups[0].Key) != 0 {
				t.Fatalf("groups %+v, want one with key {}", groups)
			}
			for i, a := range groups[0].Values {
				want := tt.want[i]
				switch {
				case a.Name != allAggs[i]:
					t.Errorf("aggregate %d is %s, want %s", i, a.Name, allAggs[i])
				case math.IsNaN(want):
					if !a.Null || a.Value != 0 {
						t.Errorf("%s = %v (null %v), want null", a.Name, a.Value, a.Null)
					}
				case a.Null:
					t.Errorf("%s is null, want %v", a.Name, want)
				case tt.approx && strings.HasPrefix(a.Name, "p"):
					if math.Abs(a.Value-want) > 0.01*math.Abs(want) {
						t.Errorf("%s = %v, want %v within 1%%", a.Name, a.Value, want)
					}
				case math.Abs(a.Value-want) > 1e-12*math.Abs(want):
					t.Errorf("%s = %v, want %v", a.Name, a.Value, want)
				}
			}
		})
	}
}

func TestGroupKeys(t *testing.T) {
	long := strings.Repeat("x", 200)
	evs := dataEvents(`{"site":"north"}`, `{}`, `{"site":null}`, `{"site":3}`, `{"site":3.0}`, `{"site":-0}`, `{"site":0}`,
		`{"site":true}`, `{"site":false}`, `{"site":{"b":1, "a":[2]}}`, `{"site":{"a":[2],"b":1}}`, `{"site":[1, 2]}`,
		`{"site":"\u006eorth"}`, `{"site":"zz"}`, `{"site":"`+long+`"}`, `{"site":"`+long[:127]+`"}`, `{"site":"é"}`, `[1]`)
	res := run(t, Request{Pattern: "all", From: day0, To: day1, Window: "1d", GroupBy: []string{"site"}}, []string{"a"}, evs)
	type kc struct {
		key   any
		count float64
	}
	var got []kc
	for _, g := range res.Windows[0].Groups {
		if len(g.Key) != 1 || g.Key[0].Name != "site" {
			t.Fatalf("key %+v", g.Key)
		}
		got = append(got, kc{g.Key[0].Value, g.Values[0].Value})
	}
	want := []kc{{nil, 3}, {false, 1}, {true, 1}, {0.0, 2}, {3.0, 2}, {"north", 2}, {long[:127], 1}, {long, 1}, {"zz", 1}, {"é", 1},
		{json.RawMessage(`[1,2]`), 1}, {json.RawMessage(`{"a":[2],"b":1}`), 1}, {json.RawMessage(`{"b":1,"a":[2]}`), 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("groups\n %v, want\n %v", got, want)
	}
	if v := res.Windows[0].Groups[3].Key[0].Value.(float64); math.Signbit(v) {
		t.Fatal("-0 and 0 group as -0")
	}
}

func TestGroupByEnvelopeAndPaths(t *testing.T) {
	evs := []stream.Event{
		{Node: "b", Stream: "s1", TS: t0, Data: json.RawMessage(`{"gps":{"zone":"z1"},"temp":1}`)},
		{Node: "a", Stream: "s2", TS: t0 + 1, Data: json.RawMessage(`{"gps":{"zone":"z1"},"temp":2}`)},
		{Node: "a", Stream: "s1", TS: t0 + 2, Data: json.RawMessage(`{"gps":"nowhere","temp":3}`)},
		{Node: "a", Stream: "s1", TS: t0 + 3, Data: json.RawMessage(`{"gps":{"zone":"z1"},"temp":4,"node":"fake"}`)},
	}
	res := run(t, Request{Pattern: "all", From: day0, To: day1, Window: "1h", GroupBy: []string{"node", "stream", "gps.zone"},
		Aggregates: []string{"sum(temp)", "count"}}, []string{"a", "b"}, evs)
	b, err := json.Marshal(res.Windows[0].Groups)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"key":{"node":"a","stream":"s1","gps.zone":null},"sum(temp)":3,"count":1},` +
		`{"key":{"node":"a","stream":"s1","gps.zone":"z1"},"sum(temp)":4,"count":1},` +
		`{"key":{"node":"a","stream":"s2","gps.zone":"z1"},"sum(temp)":2,"count":1},` +
		`{"key":{"node":"b","stream":"s1","gps.zone":"z1"},"sum(temp)":1,"count":1}]`
	if string(b) != want {
		t.Fatalf("groups\n %s, want\n %s", b, want)
	}
}

func TestHolds(t *testing.T) {
	// Three 1-minute windows; which nodes have events in each.
	tests := []struct {
		pattern string
		scope   []string
		events  [3][]string
		want    [3]bool
	}{
		{"single(a)", []string{"a"}, [3][]string{{"a"}, {}, {"a", "a"}}, [3]bool{true, false, true}},
		{"multiple(a,b)", []string{"a", "b"}, [3][]string{{"a"}, {"a", "b"}, {"b", "b"}}, [3]bool{false, true, false}},
		{"all", []string{"c", "a", "b"}, [3][]string{{"a", "b"}, {"a", "b", "c"}, {"c", "x"}}, [3]bool{false, true, false}},
		{"any", []string{"a", "b"}, [3][]string{{}, {"b"}, {"x"}}, [3]bool{false, true, false}},
		{"all", nil, [3][]string{{"a"}, {}, {}}, [3]bool{false, false, false}},
		{"any", nil, [3][]string{{"a"}, {}, {}}, [3]bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.pattern, tt.scope), func(t *testing.T) {
			var evs []stream.Event
			for w, nodes := range tt.events {
				for i, n := range nodes {
					evs = append(evs, stream.Event{Node: n, TS: t0 + int64(w)*int64(time.Minute) + int64(i)})
				}
			}
			res := run(t, Request{Pattern: tt.pattern, From: day0, To: "2026-11-25T00:03:00Z", Window: "1m", GroupBy: []string{"node"}}, tt.scope, evs)
			for w, win := range res.Windows {
				if win.Holds != tt.want[w] {
					t.Errorf("window %d: holds %v, want %v", w, win.Holds, tt.want[w])
				}
				for _, g := range win.Groups {
					if g.Key[0].Value == "x" {
						t.Errorf("window %d: node x, not in scope, has a group", w)
					}
				}
			}
		})
	}
}

func TestHoldsManyNodes(t *testing.T) {
	// Scopes across several bitset words: every node but one, then all.
	scope := make([]string, 130)
	for i := range scope {
		scope[i] = fmt.Sprintf("n%03d", i)
	}
	p, err := Prepare(Request{Pattern: "all", From: day0, To: "2026-11-25T00:02:00Z", Window: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	st := p.NewState(append(scope, scope[5])) // a repeat counts once
	for w := range 2 {
		for i, n := range scope {
			if w == 0 && i == 129 {
				continue
			}
			if err := st.Add(&stream.Event{Node: n, TS: t0 + int64(w)*int64(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	res := p.Result(st)
	if res.Windows[0].Holds || !res.Windows[1].Holds {
		t.Fatalf("holds %v %v, want false true", res.Windows[0].Holds, res.Windows[1].Holds)
	}
}

func TestCellLimit(t *testing.T) {
	p, err := Prepare(Request{Pattern: "all", From: day0, To: day1, Window: "1d", GroupBy: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(st *State, from, to int) error {
		for i := from; i < to; i++ {
			if err := st.Add(&stream.Event{Node: "a", TS: t0, Data: json.RawMessage(fmt.Sprintf(`{"id":%d}`, i))}); err != nil {
				return err
			}
		}
		return nil
	}
	st := p.NewState([]string{"a"})
	if err := add(st, 0, MaxCells); err != nil {
		t.Fatalf("%d cells: %v", MaxCells, err)
	}
	if err := add(st, 0, 10); err != nil {
		t.Fatalf("events of existing cells: %v", err)
	}
	err = add(st, MaxCells, MaxCells+1)
	if err == nil || !errors.Is(err, pattern.ErrInvalid) || !strings.HasPrefix(err.Error(), "group_by: ") || !strings.Contains(err.Error(), "100000 window × group cells") {
		t.Fatalf("cell %d: error %v", MaxCells+1, err)
	}
	// Merging two states under the limit can pass it too.
	a, b := p.NewState([]string{"a"}), p.NewState([]string{"a"})
	if add(a, 0, 60_000) != nil || add(b, 50_000, 110_000) != nil {
		t.Fatal("states under the limit refused")
	}
	if err := a.Merge(b); err == nil || !errors.Is(err, pattern.ErrInvalid) {
		t.Fatalf("merge to 110000 cells: %v", err)
	}
}

func TestMergeMismatch(t *testing.T) {
	p1, _ := Prepare(req(nil))
	p2, _ := Prepare(req(nil))
	if err := p1.NewState([]string{"a"}).Merge(p2.NewState([]string{"a"})); !errors.Is(err, ErrMismatch) {
		t.Fatalf("plans differ: %v", err)
	}
	if err := p1.NewState([]string{"a"}).Merge(p1.NewState([]string{"b"})); !errors.Is(err, ErrMismatch) {
		t.Fatalf("scopes differ: %v", err)
	}
	st := p1.NewState([]string{"a"})
	_ = st.Add(&stream.Event{Node: "a", TS: t0})
	if err := st.Merge(st); err != nil || p1.Result(st).Windows[0].Groups[0].Values[0].Value != 1 {
		t.Fatalf("merge with itself: %v", err)
	}
}

func TestMergeEmptiesOther(t *testing.T) {
	p, _ := Prepare(req(func(r *Request) { r.Aggregates = []string{"count", "p50(temp)"} }))
	a, b := p.NewState([]string{"a"}), p.NewState([]string{"a"})
	for i := range 100 {
		_ = b.Add(&stream.Event{Node: "a", TS: t0, Data: json.RawMessage(fmt.Sprintf(`{"temp":%d}`, i))})
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if n := p.Result(a).Windows[0].Groups[0].Values[0].Value; n != 100 {
		t.Fatalf("merged count %v", n)
	}
	if g := p.Result(b).Windows[0].Groups; len(g) != 0 {
		t.Fatalf("other after merge has groups %+v", g)
	}
	// The emptied state works again, apart from the merged one.
	_ = b.Add(&stream.Event{Node: "a", TS: t0, Data: json.RawMessage(`{"temp":1}`)})
	if g := p.Result(b).Windows[0].Groups; len(g) != 1 || g[0].Values[0].Value != 1 {
		t.Fatalf("reused state: %+v", g)
	}
	if n := p.Result(a).Windows[0].Groups[0].Values[0].Value; n != 100 {
		t.Fatalf("merged count changed to %v by reuse of other", n)
	}
}

func TestResultJSON(t *testing.T) {
	evs := []stream.Event{
		{Node: "a", TS: t0 + int64(30*time.Second), Data: json.RawMessage(`{"temp":20,"site":"north"}`)},
		{Node: "a", TS: t0 + int64(40*time.Second), Data: json.RawMessage(`{"temp":23,"site":"north"}`)},
		{Node: "b", TS: t0 + int64(50*time.Second), Data: json.RawMessage(`{"site":"south"}`)},
	}
	res := run(t, Request{Pattern: "all", Where: `site != "east"`, From: day0, To: "2026-11-25T00:02:00Z", Window: "1m",
		GroupBy: []string{"node", "site"}, Aggregates: []string{"count", "avg(temp)", "max(temp)", "p95(temp)"}}, []string{"a", "b"}, evs)
	res.Scanned, res.TookMS, res.Certain = 3, 1, true
	res.Windows[0].Certain = true
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pattern":"all","window":"1m0s","windows":[` +
		`{"start":"2026-11-25T00:00:00Z","end":"2026-11-25T00:01:00Z","holds":true,"certain":true,"groups":[` +
		`{"key":{"node":"a","site":"north"},"count":2,"avg(temp)":21.5,"max(temp)":23,"p95(temp)":23},` +
		`{"key":{"node":"b","site":"south"},"count":1,"avg(temp)":null,"max(temp)":null,"p95(temp)":null}]},` +
		`{"start":"2026-11-25T00:01:00Z","end":"2026-11-25T00:02:00Z","holds":false,"certain":false,"groups":[]}],` +
		`"scanned":3,"took_ms":1,"certain":true}`
	if string(b) != want {
		t.Fatalf("JSON\n %s, want\n %s", b, want)
	}
	if v, ok := res.Windows[0].Groups[0].Get("avg(temp)"); !ok || v != 21.5 {
		t.Fatalf("Get avg(temp): %v %v", v, ok)
	}
	if _, ok := res.Windows[0].Groups[1].Get("avg(temp)"); ok {
		t.Fatal("Get of a null aggregate says ok")
	}
}
