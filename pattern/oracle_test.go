package pattern

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

// This file checks Execute against a brute-force oracle over random data: the
// oracle filters and sorts every event with plain Go, independently of the
// predicate compiler and the merge.

const oracleBase = int64(1_714_564_800_000_000_000) // 2024-05-01T12:00:00Z

// oracleWhere pairs an expression with the same condition written in Go over
// the data as encoding/json decodes it.
type oracleWhere struct {
	expr string
	eval func(ev *stream.Event, d map[string]any) bool
}

func num(d map[string]any, k string) (float64, bool) {
	f, ok := d[k].(float64)
	return f, ok
}

var oracleWheres = []oracleWhere{
	{"", func(*stream.Event, map[string]any) bool { return true }},
	{"temp > 20", func(_ *stream.Event, d map[string]any) bool {
		f, ok := num(d, "temp")
		return ok && f > 20
	}},
	{`site == "north"`, func(_ *stream.Event, d map[string]any) bool { return d["site"] == "north" }},
	{`site != "north"`, func(_ *stream.Event, d map[string]any) bool {
		v, ok := d["site"]
		return ok && v != "north"
	}},
	{`temp > 20 && site == "north"`, func(_ *stream.Event, d map[string]any) bool {
		f, ok := num(d, "temp")
		return ok && f > 20 && d["site"] == "north"
	}},
	{"gps.lat > 45", func(_ *stream.Event, d map[string]any) bool {
		g, ok := d["gps"].(map[string]any)
		if !ok {
			return false
		}
		f, ok := num(g, "lat")
		return ok && f > 45
	}},
	{`node == "a" || seq % 3 == 0`, func(ev *stream.Event, _ map[string]any) bool { return ev.Node == "a" || ev.Seq%3 == 0 }},
	{"(temp ?? 0) < 10", func(_ *stream.Event, d map[string]any) bool {
		v, ok := d["temp"]
		if !ok || v == nil {
			return true // ?? replaces nil as well as missing
		}
		f, isNum := v.(float64)
		return isNum && f < 10
	}},
	{`ts >= date("2024-05-01T12:00:00.000000010Z") && stream == "s1"`, func(ev *stream.Event, _ map[string]any) bool {
		return ev.TS >= oracleBase+10 && ev.Stream == "s1"
	}},
}

// Node names chosen so that byte order differs from naive expectations.
var oracleNodes = []string{"a", "B", "a-1", "a_1", "b0", "idle"}

func randomEvents(rng *rand.Rand) []stream.Event {
	var evs []stream.Event
	for _, node := range oracleNodes {
		if node == "idle" {
			continue // known to the index, never sent anything
		}
		for _, epoch := range []string{"e0", "e1"} {
			n := rng.IntN(12)
			for seq := 1; seq <= n; seq++ {
				d := map[string]any{}
				switch rng.IntN(4) {
				case 0:
				case 1:
					d["temp"] = rng.IntN(40)
				case 2:
					d["temp"] = float64(rng.IntN(400)) / 10
				case 3:
					d["temp"] = nil
				}
				switch rng.IntN(4) {
				case 0:
				case 1:
					d["site"] = "north"
				case 2:
					d["site"] = "south"
				case 3:
					d["site"] = nil
				}
				switch rng.IntN(3) {
				case 0:
				case 1:
					d["gps"] = map[string]any{"lat": float64(rng.IntN(90))}
				case 2:
					d["gps"] = "broken"
				}
				data, _ := json.Marshal(d)
				evs = append(evs, stream.Event{
					Node: node, Epoch: epoch, Seq: uint64(seq),
					Stream: []string{"s1", "s2"}[rng.IntN(2)],
					TS:     oracleBase + int64(rng.IntN(25)),
					Data:   data,
				})
			}
		}
	}
	return evs
}

type oracleAnswer struct {
	matches []stream.Event
	perNode map[string]int64
	holds   bool
}

func oracle(evs []stream.Event, scope []string, kind Kind, q *Query, w oracleWhere) oracleAnswer {
	ans := oracleAnswer{perNode: map[string]int64{}}
	for _, n := range scope {
		ans.perNode[n] = 0
	}
	for i := range evs {
		ev := &evs[i]
		if _, in := ans.perNode[ev.Node]; !in {
			continue
		}
		if q.Stream != "" && ev.Stream != q.Stream || q.HasFrom && ev.TS < q.From || q.HasTo && ev.TS >= q.To {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			panic(err)
		}
		if !w.eval(ev, d) {
			continue
		}
		ans.matches = append(ans.matches, *ev)
		ans.perNode[ev.Node]++
	}
	slices.SortFunc(ans.matches, func(a, b stream.Event) int {
		switch {
		case stream.Less(&a, &b):
			return -1
		case stream.Less(&b, &a):
			return 1
		}
		return 0
	})
	withMatch := 0
	for _, n := range scope {
		if ans.perNode[n] > 0 {
			withMatch++
		}
	}
	if kind == Any {
		ans.holds = withMatch > 0
	} else {
		ans.holds = len(scope) > 0 && withMatch == len(scope)
	}
	return ans
}

func randomRequest(rng *rand.Rand) (Request, oracleWhere) {
	var r Request
	switch rng.IntN(4) {
	case 0:
		r.Pattern = "single(" + oracleNodes[rng.IntN(len(oracleNodes))] + ")"
	case 1:
		r.Pattern = "multiple("
		for i := range 1 + rng.IntN(4) {
			if i > 0 {
				r.Pattern += ","
			}
			r.Pattern += oracleNodes[rng.IntN(len(oracleNodes))]
		}
		r.Pattern += ")"
	case 2:
		r.Pattern = "all"
	case 3:
		r.Pattern = "any"
	}
	if rng.IntN(3) == 0 {
		r.Stream = "s1"
	}
	from, to := int64(-1), int64(-1)
	if rng.IntN(3) == 0 {
		from = oracleBase + int64(rng.IntN(20))
	}
	if rng.IntN(3) == 0 {
		to = oracleBase + 1 + int64(rng.IntN(25))
	}
	if from >= 0 && to >= 0 && from >= to {
		from, to = to-1, from+1
	}
	if from >= 0 {
		r.From = stream.FormatTime(from)
	}
	if to >= 0 {
		r.To = stream.FormatTime(to)
	}
	r.Limit = 1 + rng.IntN(7)
	r.Count = rng.IntN(2) == 0
	w := oracleWheres[rng.IntN(len(oracleWheres))]
	r.Where = w.expr
	return r, w
}

func sameEvent(a, b *stream.Event) bool {
	return a.Node == b.Node && a.Epoch == b.Epoch && a.Seq == b.Seq && a.Stream == b.Stream &&
		a.TS == b.TS && bytes.Equal(a.Data, b.Data)
}

func TestExecuteAgainstOracle(t *testing.T) {
	ctx := context.Background()
	colLoads := 0
	defer func() {
		if !t.Failed() && colLoads == 0 {
			t.Error("no round read chunks through their columns")
		}
	}()
	for round := range 400 {
		rng := rand.New(rand.NewPCG(uint64(round), 42))
		evs := randomEvents(rng)
		// Chunks of one event up to whole batches, as the hub cuts them.
		idx := newMemIndexChunked(t, oracleNodes, evs, 1+rng.IntN(10), uint64(round))
		req, w := randomRequest(rng)
		name := fmt.Sprintf("round %d %+v", round, req)

		q, err := Prepare(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		scope := q.Nodes
		if q.Kind == All || q.Kind == Any {
			scope = idx.nodes
		}
		want := oracle(evs, scope, q.Kind, q, w)

		var got []stream.Event
		after := ""
		for page := 0; ; page++ {
			if page > len(evs)+1 {
				t.Fatalf("%s: more pages than events", name)
			}
			req.After = after
			q, err := Prepare(req)
			if err != nil {
				t.Fatalf("%s: page %d: %v", name, page, err)
			}
			reads := len(idx.scans)
			res, err := Execute(ctx, oracleIndex(idx, round), q)
			if err != nil {
				t.Fatalf("%s: page %d: %v", name, page, err)
			}
			// One read for the page and at most one probe, whatever the scope.
			if n := len(idx.scans) - reads; n > 2 {
				t.Fatalf("%s: page %d: %d reads of the index", name, page, n)
			}
			if open := idx.openIterators(); open != 0 {
				t.Fatalf("%s: page %d: %d iterators left open", name, page, open)
			}
			checkPage(t, fmt.Sprintf("%s: page %d", name, page), res, q, scope, want)
			got = append(got, res.Matches...)
			if res.Next == "" {
				if len(got) != len(want.matches) {
					t.Fatalf("%s: last page after %d matches, want %d", name, len(got), len(want.matches))
				}
				break
			}
			if len(res.Matches) != q.Limit {
				t.Fatalf("%s: page %d has next but only %d of %d matches", name, page, len(res.Matches), q.Limit)
			}
			if len(got) >= len(want.matches) {
				t.Fatalf("%s: page %d has next but all %d matches are out", name, page, len(got))
			}
			after = res.Next
		}
		for i := range got {
			if !sameEvent(&got[i], &want.matches[i]) {
				t.Fatalf("%s: match %d is %+v, want %+v", name, i, got[i], want.matches[i])
			}
		}
		colLoads += idx.colLoads
	}
}

func checkPage(t *testing.T, name string, res *Result, q *Query, scope []string, want oracleAnswer) {
	t.Helper()
	if res.Matches == nil {
		t.Fatalf("%s: Matches is nil", name)
	}
	if len(res.Matches) > q.Limit {
		t.Fatalf("%s: %d matches over limit %d", name, len(res.Matches), q.Limit)
	}
	if res.Pattern != q.String() {
		t.Fatalf("%s: pattern %q, want %q", name, res.Pattern, q.String())
	}
	if res.Holds != want.holds {
		t.Fatalf("%s: holds %v, want %v (per node %v)", name, res.Holds, want.holds, want.perNode)
	}
	if len(res.Nodes) != len(scope) {
		t.Fatalf("%s: %d nodes in result, want %d", name, len(res.Nodes), len(scope))
	}
	pageCount := map[string]int64{}
	for _, m := range res.Matches {
		pageCount[m.Node]++
	}
	for _, n := range scope {
		nr, ok := res.Nodes[n]
		if !ok {
			t.Fatalf("%s: node %q in scope is missing from the result", name, n)
		}
		wantN := pageCount[n]
		if q.Count {
			wantN = want.perNode[n]
		}
		if nr.Matched != wantN {
			t.Fatalf("%s: node %q matched %d, want %d", name, n, nr.Matched, wantN)
		}
	}
	if q.Count {
		if res.Count == nil || *res.Count != int64(len(want.matches)) {
			t.Fatalf("%s: count %v, want %d", name, res.Count, len(want.matches))
		}
	} else if res.Count != nil {
		t.Fatalf("%s: count %d without asking", name, *res.Count)
	}
	if res.Scanned < int64(len(res.Matches)) {
		t.Fatalf("%s: scanned %d for %d matches", name, res.Scanned, len(res.Matches))
	}
}

// TestExecuteFleetAgainstOracle runs the oracle over fleets of hundreds of
// nodes, far more than any per-node resource could serve at once: all, any,
// and multiple of twenty nodes, paged to the end, with and without counts.
func TestExecuteFleetAgainstOracle(t *testing.T) {
	ctx := context.Background()
	for round := range 30 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		nodes := make([]string, 300)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("n%03d", i)
		}
		var evs []stream.Event
		for _, n := range nodes[:250] { // the last 50 are known but silent
			for seq := 1; seq <= 1+rng.IntN(6); seq++ {
				evs = append(evs, stream.Event{Node: n, Epoch: "e", Seq: uint64(seq), Stream: "s1",
					TS: oracleBase + int64(rng.IntN(40)), Data: json.RawMessage(fmt.Sprintf(`{"temp":%d}`, rng.IntN(40)))})
			}
		}
		idx := newMemIndexChunked(t, nodes, evs, 1+rng.IntN(5), uint64(round))
		pick := slices.Clone(nodes)
		rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
		patterns := []string{"all", "any", "multiple(" + strings.Join(pick[:20], ",") + ")"}
		for _, p := range patterns {
			w := oracleWheres[rng.IntN(2)] // none, or temp > 20
			req := Request{Pattern: p, Where: w.expr, Limit: 1 + rng.IntN(50), Count: rng.IntN(2) == 0}
			q, err := Prepare(req)
			if err != nil {
				t.Fatal(err)
			}
			scope := q.Nodes
			if q.Kind == All || q.Kind == Any {
				scope = nodes
			}
			want := oracle(evs, scope, q.Kind, q, w)
			var got []stream.Event
			for page := 0; ; page++ {
				q, _ := Prepare(req)
				res, err := Execute(ctx, oracleIndex(idx, round), q)
				if err != nil {
					t.Fatalf("round %d %s page %d: %v", round, p, page, err)
				}
				checkPage(t, fmt.Sprintf("round %d %s page %d", round, p, page), res, q, scope, want)
				got = append(got, res.Matches...)
				if res.Next == "" {
					break
				}
				req.After = res.Next
			}
			if len(got) != len(want.matches) {
				t.Fatalf("round %d %s: %d matches, want %d", round, p, len(got), len(want.matches))
			}
			for i := range got {
				if !sameEvent(&got[i], &want.matches[i]) {
					t.Fatalf("round %d %s: match %d is %+v, want %+v", round, p, i, got[i], want.matches[i])
				}
			}
		}
	}
}
