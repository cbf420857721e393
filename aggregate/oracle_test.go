package aggregate

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/aggoracle"
	"github.com/tributary-edge/tributary/stream"
)

// The oracle test computes answers by brute force, with encoding/json and
// sorting, over random fleets, and compares Plan.Result with them. The events
// go to Add in shuffled order, split over several states that merge in random
// order.

type fleet struct {
	nodes  []string
	events []stream.Event
}

func randomFleet(rng *rand.Rand, from, to, window int64, events int) fleet {
	f := fleet{}
	for i := range 1 + rng.IntN(6) {
		f.nodes = append(f.nodes, fmt.Sprintf("n%d", i))
	}
	// Events up to a window either side of the range, some right on its
	// ends, and a quiet stretch so that some windows are empty.
	quietFrom := from + rng.Int64N(to-from)
	quietTo := quietFrom + rng.Int64N(to-from)/3
	for i := range rng.IntN(events) {
		var ts int64
		switch rng.IntN(20) {
		case 0:
			ts = from
		case 1:
			ts = to - 1
		case 2:
			ts = to
		default:
			ts = from - window + rng.Int64N(to-from+2*window)
		}
		if ts >= quietFrom && ts < quietTo {
			continue
		}
		f.events = append(f.events, stream.Event{Node: f.nodes[rng.IntN(len(f.nodes))], Epoch: "e", Seq: uint64(i + 1),
			Stream: []string{"s1", "s2"}[rng.IntN(2)], TS: ts, Data: randomData(rng)})
	}
	return f
}

func randomData(rng *rand.Rand) json.RawMessage {
	switch rng.IntN(30) {
	case 0:
		return json.RawMessage(`not json`)
	case 1:
		return json.RawMessage(`[1,2]`)
	case 2:
		return nil
	}
	var fields []string
	pick := func(name string, vals ...string) {
		if v := vals[rng.IntN(len(vals))]; v != "" {
			fields = append(fields, fmt.Sprintf("%q:%s", name, v))
		}
	}
	num := func() string {
		switch rng.IntN(6) {
		case 0:
			return fmt.Sprint(rng.IntN(41) - 20)
		case 1:
			return "0"
		case 2:
			return "-0.0"
		case 3:
			return fmt.Sprintf("%.3e", rng.NormFloat64()*1e3)
		}
		return fmt.Sprint(rng.NormFloat64() * 20)
	}
	pick("temp", num(), num(), num(), num(), "", `"hot"`, "null", "true")
	pick("hum", num(), num(), "", `{"v":1}`)
	pick("site", "-0", "0", `"north"`, `"south"`, `"nor\u0074h"`, "", "null", "7", "7.0", `{"a":1}`, `{"a": 1}`, `[1]`, "false")
	pick("gps", `{"zone":"z1"}`, `{"zone":"z2","lat":1}`, `{"lat":2}`, `"nowhere"`, "", "null")
	rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	return json.RawMessage("{" + strings.Join(fields, ",") + "}")
}

// expectedCell is a brute-force cell.
type expectedCell struct {
	key   []any
	count int
	nums  map[string][]float64 // field → its numbers
}

func TestOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	windows := []string{"1ms", "7s", "1m", "5m", "1h"}
	kinds := []string{"count", "sum", "min", "max", "avg", "p50", "p90", "p95", "p99"}
	var cover coverage
	for round := range 120 {
		window := windows[rng.IntN(len(windows))]
		w, _ := parseWindow(window)
		from := t0 + rng.Int64N(int64(time.Hour))
		span, events := int64(w)*int64(1+rng.IntN(40)), 800
		if rng.IntN(4) == 0 {
			// Few windows, big groups: percentiles from the sketch.
			span, events = int64(w), 4000
		}
		to := from + 1 + rng.Int64N(span)
		f := randomFleet(rng, from, to, int64(w), events)

		var pat string
		scope := slices.Clone(f.nodes)
		switch round % 4 {
		case 0:
			scope = []string{f.nodes[rng.IntN(len(f.nodes))]}
			pat = "single(" + scope[0] + ")"
		case 1:
			rng.Shuffle(len(scope), func(i, j int) { scope[i], scope[j] = scope[j], scope[i] })
			scope = scope[:1+rng.IntN(len(scope))]
			pat = "multiple(" + strings.Join(scope, ",") + ")"
		case 2:
			pat = "all"
		case 3:
			pat = "any"
		}
		if pat == "all" || pat == "any" {
			if rng.IntN(3) == 0 {
				scope = append(scope, "quiet") // known, without events
			}
			if rng.IntN(10) == 0 {
				scope = nil
			}
		}
		groupBy := []string{"node", "stream", "site", "gps.zone", "gps"}
		rng.Shuffle(len(groupBy), func(i, j int) { groupBy[i], groupBy[j] = groupBy[j], groupBy[i] })
		groupBy = groupBy[:rng.IntN(4)]
		var aggs []string
		for _, k := range kinds {
			if k == "count" {
				aggs = append(aggs, k)
				continue
			}
			aggs = append(aggs, k+"(temp)")
			if rng.IntN(2) == 0 {
				aggs = append(aggs, k+"(hum)")
			}
		}
		rng.Shuffle(len(aggs), func(i, j int) { aggs[i], aggs[j] = aggs[j], aggs[i] })
		r := Request{Pattern: pat, Where: []string{"", "", "temp > 0", `site == "north"`, "hum < 10"}[rng.IntN(5)],
			Stream: []string{"", "", "s1"}[rng.IntN(3)], From: stream.FormatTime(from), To: stream.FormatTime(to),
			Window: window, GroupBy: groupBy, Aggregates: aggs}
		t.Run(fmt.Sprint(round), func(t *testing.T) { checkOracle(t, rng, r, scope, f, &cover) })
	}
	// The rounds must have met what they are meant to check.
	if cover.sketched == 0 || cover.emptyWindows == 0 || cover.nullKeys == 0 || cover.nullAggs == 0 || cover.holds == 0 || cover.merged == 0 {
		t.Fatalf("coverage %+v", cover)
	}
	t.Logf("coverage %+v", cover)
}

// coverage counts what the oracle rounds met.
type coverage struct {
	sketched, emptyWindows, nullKeys, nullAggs, holds, merged int
}

func checkOracle(t *testing.T, rng *rand.Rand, r Request, scope []string, f fleet, cover *coverage) {
	p, err := Prepare(r)
	if err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	q := p.Query()
	var matched []stream.Event
	for _, ev := range f.events {
		if q.Matches(&ev) && slices.Contains(scope, ev.Node) {
			matched = append(matched, ev)
		}
	}

	// Brute force.
	w := int64(p.Window())
	firstStart := q.From - ((q.From%w)+w)%w
	nw := int((q.To-1-firstStart)/w) + 1
	cells := make([]map[string]*expectedCell, nw)
	seen := make([]map[string]bool, nw)
	for i := range cells {
		cells[i], seen[i] = map[string]*expectedCell{}, map[string]bool{}
	}
	for i := range matched {
		ev := &matched[i]
		wi := int((ev.TS - firstStart) / w)
		key := make([]any, len(r.GroupBy))
		for j, g := range r.GroupBy {
			key[j] = aggoracle.KeyValue(ev, g)
		}
		ks := fmt.Sprintf("%#v", key)
		c := cells[wi][ks]
		if c == nil {
			c = &expectedCell{key: key, nums: map[string][]float64{}}
			cells[wi][ks] = c
		}
		c.count++
		for _, fld := range []string{"temp", "hum"} {
			if v, ok := aggoracle.Number(ev, fld); ok {
				c.nums[fld] = append(c.nums[fld], v)
			}
		}
		seen[wi][ev.Node] = true
	}

	// Ours: shuffled, over several states merged in random order.
	rng.Shuffle(len(matched), func(i, j int) { matched[i], matched[j] = matched[j], matched[i] })
	states := make([]*State, 1+rng.IntN(4))
	for i := range states {
		states[i] = p.NewState(scope)
	}
	for i := range matched {
		if err := states[rng.IntN(len(states))].Add(&matched[i]); err != nil {
			t.Fatal(err)
		}
	}
	cover.merged += len(states) - 1
	for len(states) > 1 {
		i, j := rng.IntN(len(states)), rng.IntN(len(states)-1)
		if j >= i {
			j++
		}
		if err := states[i].Merge(states[j]); err != nil {
			t.Fatal(err)
		}
		states = slices.Delete(states, j, j+1)
	}
	res := p.Result(states[0])
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("marshal: %v", err)
	}

	if len(res.Windows) != nw {
		t.Fatalf("%d windows, want %d", len(res.Windows), nw)
	}
	for wi, win := range res.Windows {
		if start := time.Unix(0, firstStart+int64(wi)*w).UTC(); !win.Start.Equal(start) || !win.End.Equal(start.Add(p.Window())) {
			t.Fatalf("window %d: [%v, %v), want start %v", wi, win.Start, win.End, start)
		}
		holds := len(scope) > 0 && len(seen[wi]) > 0
		if r.Pattern != "any" {
			holds = len(scope) > 0 && len(seen[wi]) == len(scope)
		}
		if holds {
			cover.holds++
		}
		if len(cells[wi]) == 0 {
			cover.emptyWindows++
		}
		if win.Holds != holds {
			t.Errorf("window %d: holds %v, want %v (%d of %d nodes)", wi, win.Holds, holds, len(seen[wi]), len(scope))
		}
		want := make([]*expectedCell, 0, len(cells[wi]))
		for _, c := range cells[wi] {
			want = append(want, c)
		}
		slices.SortFunc(want, func(a, b *expectedCell) int { return aggoracle.CompareKeys(a.key, b.key) })
		if len(win.Groups) != len(want) {
			t.Fatalf("window %d: %d groups, want %d", wi, len(win.Groups), len(want))
		}
		for gi, g := range win.Groups {
			checkGroup(t, fmt.Sprintf("window %d group %d", wi, gi), r, g, want[gi], cover)
		}
	}
}

func checkGroup(t *testing.T, where string, r Request, g Group, want *expectedCell, cover *coverage) {
	t.Helper()
	if len(g.Key) != len(r.GroupBy) {
		t.Fatalf("%s: key %+v", where, g.Key)
	}
	for i, kf := range g.Key {
		if kf.Value == nil {
			cover.nullKeys++
		}
		if kf.Name != r.GroupBy[i] || fmt.Sprintf("%#v", kf.Value) != fmt.Sprintf("%#v", want.key[i]) {
			t.Fatalf("%s: key field %d is %s=%#v, want %s=%#v", where, i, kf.Name, kf.Value, r.GroupBy[i], want.key[i])
		}
	}
	if len(g.Values) != len(r.Aggregates) {
		t.Fatalf("%s: %d aggregates, want %d", where, len(g.Values), len(r.Aggregates))
	}
	for i, a := range g.Values {
		if a.Name != r.Aggregates[i] {
			t.Fatalf("%s: aggregate %d is %s, want %s", where, i, a.Name, r.Aggregates[i])
		}
		if a.Name == "count" {
			if a.Null || a.Value != float64(want.count) {
				t.Errorf("%s: count %v, want %d", where, a.Value, want.count)
			}
			continue
		}
		fn, field, _ := strings.Cut(strings.TrimSuffix(a.Name, ")"), "(")
		vals := slices.Clone(want.nums[field])
		if len(vals) > exactValues {
			cover.sketched++
		}
		if len(vals) == 0 {
			cover.nullAggs++
			if !a.Null {
				t.Errorf("%s: %s = %v, want null", where, a.Name, a.Value)
			}
			continue
		}
		slices.Sort(vals)
		var exact, abs float64
		for _, v := range vals {
			exact += v
			abs += math.Abs(v)
		}
		tol := 0.0
		switch fn {
		case "sum":
			tol = 1e-12 * abs
		case "avg":
			exact /= float64(len(vals))
			tol = 1e-12 * abs / float64(len(vals))
		case "min":
			exact = vals[0]
		case "max":
			exact = vals[len(vals)-1]
		default:
			pct := 0
			fmt.Sscanf(fn, "p%d", &pct)
			exact = aggoracle.NearestRank(vals, pct)
			tol = 0.01 * math.Abs(exact)
		}
		if a.Null || math.Abs(a.Value-exact) > tol {
			t.Errorf("%s: %s = %v (null %v), want %v within %g (%d numbers)", where, a.Name, a.Value, a.Null, exact, tol, len(vals))
		}
	}
}
