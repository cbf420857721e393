package pattern

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/tributary-edge/tributary/stream"
)

const (
	benchNodes  = 16
	benchEvents = 200_000
	benchWhere  = `temp > 30 && site == "north"`
)

var benchData = sync.OnceValue(func() []stream.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	sites := []string{"north", "south", "east", "west"}
	evs := make([]stream.Event, 0, benchEvents)
	for i := range benchEvents {
		node := fmt.Sprintf("node-%02d", i%benchNodes)
		data := fmt.Sprintf(`{"temp":%.1f,"hum":%d,"site":%q,"status":"ok","gps":{"lat":%.4f,"lon":%.4f},"fw":"1.4.2"}`,
			rng.Float64()*40, rng.IntN(100), sites[rng.IntN(4)], 45+rng.Float64(), 7+rng.Float64())
		evs = append(evs, stream.Event{Node: node, Epoch: "ep1", Seq: uint64(i/benchNodes + 1), Stream: "sensors",
			TS: oracleBase + int64(i)*int64(time.Millisecond), Data: json.RawMessage(data)})
	}
	return evs
})

// BenchmarkExecuteAllWhere runs all with a predicate and a count over every
// event (a full scan), and reports the scan rate beside that of the plain way
// to evaluate an expr predicate, measured right after on the same machine:
// encoding/json into a map, then expr.Run, event by event in merge order.
func BenchmarkExecuteAllWhere(b *testing.B) {
	evs := benchData()
	idx := newMemIndex(b, nil, evs)
	idx.fast = true
	q, err := Prepare(Request{Pattern: "all", Where: benchWhere, Count: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	var scanned int64
	for b.Loop() {
		res, err := Execute(ctx, idx, q)
		if err != nil {
			b.Fatal(err)
		}
		scanned += res.Scanned
	}
	rate := float64(scanned) / b.Elapsed().Seconds()
	peer := peerRate(evs[:benchEvents/4])
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(peer, "peer-events/s")
	b.ReportMetric(rate/peer, "x-peer")
}

// peerRate returns events per second of the plain evaluation over evs, in
// merge order, timed over whole passes of at least half a second.
func peerRate(evs []stream.Event) float64 {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b stream.Event) int {
		switch {
		case stream.Less(&a, &b):
			return -1
		case stream.Less(&b, &a):
			return 1
		}
		return 0
	})
	prog, err := expr.Compile(benchWhere, expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		panic(err)
	}
	var sink, passes int
	start := time.Now()
	for passes == 0 || time.Since(start) < 500*time.Millisecond {
		for i := range evs {
			var env map[string]any
			if json.Unmarshal(evs[i].Data, &env) != nil {
				continue
			}
			env["node"], env["stream"], env["seq"], env["ts"] = evs[i].Node, evs[i].Stream, evs[i].Seq, time.Unix(0, evs[i].TS)
			if out, err := expr.Run(prog, env); err == nil && out == true {
				sink++
			}
		}
		passes++
	}
	_ = sink
	return float64(passes) * float64(len(evs)) / time.Since(start).Seconds()
}

// BenchmarkMatches measures the live path: one event through Query.Matches.
func BenchmarkMatches(b *testing.B) {
	q, err := Prepare(Request{Pattern: "all", Where: benchWhere})
	if err != nil {
		b.Fatal(err)
	}
	ev := benchData()[0]
	b.ReportAllocs()
	for b.Loop() {
		q.Matches(&ev)
	}
}

// BenchmarkWhereCost evaluates predicates near the cost limits on one event
// and reports the time per estimated step (the unit of MaxWhereCost and
// MaxWhereCostPerByte) and, as the peer, the time of benchWhere, an ordinary
// predicate, measured right after on the same event.
func BenchmarkWhereCost(b *testing.B) {
	readings := make([]string, 2000)
	for i := range readings {
		readings[i] = fmt.Sprint(i % 97)
	}
	small := benchData()[0]
	big := small
	big.Data = json.RawMessage(fmt.Sprintf(`{"temp":31.5,"site":"north","readings":[%s]}`, strings.Join(readings, ",")))
	run := func(ev *stream.Event, where string, n int) time.Duration {
		q, err := Prepare(Request{Pattern: "all", Where: where})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range n {
			q.Matches(ev)
		}
		return time.Since(start) / time.Duration(n)
	}
	for _, c := range []struct {
		where string
		ev    *stream.Event
	}{
		{benchWhere, &small},
		{`all(1..300, # >= 0)`, &small},
		{`none(1..200, # * 2 == temp)`, &small},
		{`let x = 1..12; all(x, any(x, # == 30))`, &small},
		{`count(readings, # > 50) > 100`, &big},
		{`any(readings, # == 1000) || all(1..100, # > 0)`, &big},
	} {
		b.Run(c.where, func(b *testing.B) {
			q, err := Prepare(Request{Pattern: "all", Where: c.where})
			if err != nil {
				b.Fatal(err)
			}
			perEvent, perByte := q.Cost()
			steps := perEvent + perByte*float64(len(c.ev.Data))
			for b.Loop() {
				q.Matches(c.ev)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			peer := run(c.ev, benchWhere, 20000)
			b.ReportMetric(steps, "steps")
			b.ReportMetric(ns/steps, "ns/step")
			b.ReportMetric(float64(peer.Nanoseconds()), "peer-ns/op")
			b.ReportMetric(ns/float64(peer.Nanoseconds()), "x-peer")
		})
	}
}
