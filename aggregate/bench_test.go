package aggregate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

const benchNodes = 16

// benchEvents are shaped like bench/main.go's makeEvent (about 190 bytes of
// data), from 16 nodes, node by node as the engine scans them, over an hour.
var benchEvents = sync.OnceValue(func() []stream.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	sites := []string{"north", "south", "east", "west"}
	const perNode = 8192
	evs := make([]stream.Event, 0, benchNodes*perNode)
	for n := range benchNodes {
		for i := range perNode {
			ts := t0 + int64(i)*int64(time.Hour)/perNode
			data, _ := json.Marshal(map[string]any{
				"ts":       ts / int64(time.Millisecond),
				"sensor":   fmt.Sprintf("sensor-%03d", i%500),
				"site":     sites[i%4],
				"temp":     15 + rng.Float64()*20,
				"humidity": 30 + rng.Float64()*50,
				"gps":      map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()},
				"status":   "ok",
			})
			evs = append(evs, stream.Event{Node: fmt.Sprintf("node-%02d", n), Epoch: "ep", Seq: uint64(i + 1),
				Stream: "sensors", TS: ts, Data: data})
		}
	}
	return evs
})

// BenchmarkAdd measures State.Add per event, and reports beside it the time
// per event of the plain way, measured right after in the same run:
// encoding/json into a map, then a map of (window, node) to a sum and count.
func BenchmarkAdd(b *testing.B) {
	cases := []struct {
		name    string
		groupBy []string
		aggs    []string
	}{
		{"avg(temp) by node per minute", []string{"node"}, []string{"avg(temp)"}},
		{"count,avg,max,p95(temp) by node,site per minute", []string{"node", "site"}, []string{"count", "avg(temp)", "max(temp)", "p95(temp)"}},
	}
	evs := benchEvents()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, err := Prepare(Request{Pattern: "all", From: day0, To: "2026-11-25T01:00:00Z", Window: "1m",
				GroupBy: c.groupBy, Aggregates: c.aggs})
			if err != nil {
				b.Fatal(err)
			}
			scope := make([]string, benchNodes)
			for i := range scope {
				scope[i] = fmt.Sprintf("node-%02d", i)
			}
			st := p.NewState(scope)
			b.ReportAllocs()
			b.SetBytes(int64(len(evs[0].Data)))
			i := 0
			for b.Loop() {
				if err := st.Add(&evs[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(evs) {
					i = 0
				}
			}
			ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			peer := peerAddNs(evs[:len(evs)/4])
			b.ReportMetric(peer, "peer-ns/op")
			b.ReportMetric(peer/ours, "x-peer")
		})
	}
}

// peerAddNs returns nanoseconds per event of the plain way to compute
// avg(temp) by node per minute, over whole passes of at least half a second.
func peerAddNs(evs []stream.Event) float64 {
	type key struct {
		w    int64
		node string
	}
	type acc struct {
		n   int64
		sum float64
	}
	cells := map[key]*acc{}
	var n int
	start := time.Now()
	for n == 0 || time.Since(start) < 500*time.Millisecond {
		for i := range evs {
			var m map[string]any
			if json.Unmarshal(evs[i].Data, &m) != nil {
				continue
			}
			k := key{evs[i].TS / int64(time.Minute), evs[i].Node}
			a := cells[k]
			if a == nil {
				a = &acc{}
				cells[k] = a
			}
			if f, ok := m["temp"].(float64); ok {
				a.n++
				a.sum += f
			}
			n++
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
