package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/internal/aggoracle"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// knownNodes is a real index whose node list also names nodes without
// events, as the registry does for a node heard only by its heartbeats.
type knownNodes struct {
	*index.Index
	nodes []string
}

func (k knownNodes) Nodes(context.Context) ([]string, error) { return k.nodes, nil }
func (k knownNodes) HasNode(_ context.Context, n string) (bool, error) {
	return slices.Contains(k.nodes, n), nil
}

// aggFleet is a random fleet written into a real index in batches: events
// out of order in event time within a batch, late batches whose events fall
// among windows already written, several epochs and streams, data with
// missing fields, numbers, strings, nulls, objects and arrays.
type aggFleet struct {
	idx    knownNodes
	events []stream.Event
	from   int64 // the span of event time the events cover
	span   int64
}

func newAggFleet(t *testing.T, rng *rand.Rand, events int) *aggFleet {
	t.Helper()
	x := index.New(filepath.Join(t.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	f := &aggFleet{from: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano(), span: int64(2 * time.Hour)}
	nodes := 1 + rng.IntN(5)
	for i := range nodes {
		f.idx.nodes = append(f.idx.nodes, fmt.Sprintf("n%d", i))
	}
	f.idx.nodes = append(f.idx.nodes, "quiet") // known, never an event
	f.idx.Index = x
	type source struct {
		node, epoch string
		seq         uint64
	}
	var sources []*source
	for _, n := range f.idx.nodes[:nodes] {
		for e := range 1 + rng.IntN(2) {
			sources = append(sources, &source{node: n, epoch: fmt.Sprintf("ep%d", e)})
		}
	}
	// A quiet stretch leaves some windows empty.
	quiet := f.from + rng.Int64N(f.span)
	for len(f.events) < events {
		src := sources[rng.IntN(len(sources))]
		streamName := []string{"s1", "s2"}[rng.IntN(2)]
		n := 1 + rng.IntN(300)
		// Most batches are about one moment; a late one goes back in time.
		around := f.from + rng.Int64N(f.span)
		recs := make([]stream.Record, 0, n)
		for range n {
			ts := around + rng.Int64N(int64(20*time.Minute)) - int64(10*time.Minute)
			if ts >= quiet && ts < quiet+int64(5*time.Minute) {
				continue
			}
			src.seq++
			recs = append(recs, stream.Record{Seq: src.seq, TS: ts, Data: aggData(rng)})
		}
		if len(recs) == 0 {
			continue
		}
		for _, r := range recs {
			f.events = append(f.events, stream.Event{Node: src.node, Epoch: src.epoch, Seq: r.Seq, Stream: streamName, TS: r.TS, Data: r.Data})
		}
		msg := index.Message{Node: src.node, At: 1, Frame: &stream.Frame{Kind: stream.KindEvents, Node: src.node, Epoch: src.epoch, Stream: streamName, Events: recs}}
		if _, err := x.Apply(context.Background(), []index.Message{msg}, false); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func aggData(rng *rand.Rand) json.RawMessage {
	var fields []string
	pick := func(name string, vals ...string) {
		if v := vals[rng.IntN(len(vals))]; v != "" {
			fields = append(fields, fmt.Sprintf("%q:%s", name, v))
		}
	}
	num := func() string {
		switch rng.IntN(5) {
		case 0:
			return fmt.Sprint(rng.IntN(41) - 20)
		case 1:
			return fmt.Sprintf("%.3e", rng.NormFloat64()*1e3)
		}
		return fmt.Sprint(rng.NormFloat64()*10 + 20)
	}
	pick("temp", num(), num(), num(), num(), "", `"hot"`, "null", "true")
	pick("hum", num(), num(), "", `{"v":1}`, "[]")
	pick("site", `"north"`, `"south"`, `"nor\u0074h"`, `"süd"`, "", "null", "7", "7.0", `{"a":1}`, `[1]`, "false")
	pick("gps", `{"zone":"z1"}`, `{"zone":"z2","lat":1}`, `{"lat":2}`, `"nowhere"`, "", "null")
	rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	return json.RawMessage("{" + strings.Join(fields, ",") + "}")
}

// TestAggregateEngineOracle answers random aggregates over random fleets in a
// real index with the engine (every worker, columns where it can) and checks
// every window, group, aggregate, holds and certainty against brute force.
func TestAggregateEngineOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	kinds := []string{"sum", "min", "max", "avg", "p50", "p90", "p95", "p99"}
	// Fast forms (comparisons over columns) and forms only expr evaluates.
	wheres := []string{"", "", "temp > 20", `site == "north"`, `gps.zone == "z1" || hum < 0`, "(temp ?? 0) > 15", `node != "n0"`}
	windows := []string{"1m", "7m", "10m", "1h"}
	for round := range 6 {
		f := newAggFleet(t, rng, 2000+rng.IntN(4000))
		for qi := range 12 {
			nodes := f.idx.nodes
			var pat string
			var scope []string
			switch qi % 4 {
			case 0:
				scope = []string{nodes[rng.IntN(len(nodes))]}
				pat = "single(" + scope[0] + ")"
			case 1:
				scope = slices.Clone(nodes)
				rng.Shuffle(len(scope), func(i, j int) { scope[i], scope[j] = scope[j], scope[i] })
				scope = scope[:1+rng.IntN(len(scope))]
				pat = "multiple(" + strings.Join(scope, ",") + ")"
			case 2:
				pat, scope = "all", nodes
			case 3:
				pat, scope = "any", nodes
			}
			groupBy := []string{"node", "stream", "site", "gps.zone", "gps"}
			rng.Shuffle(len(groupBy), func(i, j int) { groupBy[i], groupBy[j] = groupBy[j], groupBy[i] })
			groupBy = groupBy[:rng.IntN(4)]
			aggs := []string{"count"}
			for _, k := range kinds {
				if rng.IntN(2) == 0 {
					aggs = append(aggs, k+"(temp)")
				}
				if rng.IntN(4) == 0 {
					aggs = append(aggs, k+"(hum)")
				}
			}
			rng.Shuffle(len(aggs), func(i, j int) { aggs[i], aggs[j] = aggs[j], aggs[i] })
			from := f.from - int64(10*time.Minute) + rng.Int64N(f.span/2)
			to := from + 1 + rng.Int64N(f.span)
			r := aggregate.Request{Pattern: pat, Where: wheres[rng.IntN(len(wheres))], Stream: []string{"", "", "s1"}[rng.IntN(3)],
				From: stream.FormatTime(from), To: stream.FormatTime(to), Window: windows[rng.IntN(len(windows))], GroupBy: groupBy, Aggregates: aggs}
			complete := map[string]bool{}
			for _, n := range nodes {
				complete[n] = rng.IntN(3) > 0
			}
			t.Run(fmt.Sprintf("%d/%d", round, qi), func(t *testing.T) { checkEngine(t, f, r, scope, complete) })
		}
	}
}

func checkEngine(t *testing.T, f *aggFleet, r aggregate.Request, scope []string, complete map[string]bool) {
	p, err := aggregate.Prepare(r)
	if err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	res, err := aggregate.Execute(context.Background(), f.idx, p, func(n string) bool { return complete[n] })
	if err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	canon := p.Request()
	want := aggoracle.Want(aggoracle.Request{Query: p.Query(), Window: p.Window(), GroupBy: canon.GroupBy, Aggregates: canon.Aggregates},
		f.events, scope, complete)
	got, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := aggoracle.Check(got, want, canon.GroupBy, canon.Aggregates); err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	if res.Scanned == 0 && len(want.Windows) > 0 && anyGroups(want) {
		t.Fatalf("scanned 0 events for an answer with groups")
	}
}

func anyGroups(a aggoracle.Answer) bool {
	for _, w := range a.Windows {
		if len(w.Groups) > 0 {
			return true
		}
	}
	return false
}

// TestAggregateCellLimit: an answer of more than aggregate.MaxCells cells is
// refused with the limit's own message, which the API answers with 400,
// whichever worker reaches it.
func TestAggregateCellLimit(t *testing.T) {
	x := index.New(filepath.Join(t.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano()
	const n = aggregate.MaxCells + 1
	for first := 0; first < n; first += 10_000 {
		recs := make([]stream.Record, 0, 10_000)
		for i := first; i < min(first+10_000, n); i++ {
			recs = append(recs, stream.Record{Seq: uint64(i + 1), TS: base + int64(i), Data: json.RawMessage(fmt.Sprintf(`{"id":%d}`, i))})
		}
		msg := index.Message{Node: "a", At: 1, Frame: &stream.Frame{Kind: stream.KindEvents, Node: "a", Epoch: "e", Stream: "s", Events: recs}}
		if _, err := x.Apply(context.Background(), []index.Message{msg}, false); err != nil {
			t.Fatal(err)
		}
	}
	p, err := aggregate.Prepare(aggregate.Request{Pattern: "all", From: stream.FormatTime(base), To: stream.FormatTime(base + int64(time.Hour)),
		Window: "1h", GroupBy: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = aggregate.Execute(context.Background(), knownNodes{Index: x, nodes: []string{"a"}}, p, func(string) bool { return true })
	if !errors.Is(err, pattern.ErrInvalid) || !strings.HasPrefix(err.Error(), "group_by: ") || !strings.Contains(err.Error(), "100000") {
		t.Fatalf("an answer of %d cells: %v, want the group_by error that names the limit", n, err)
	}
}
