package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/stream"
)

// BenchmarkAggregateAvgPerNodePerMinute is the bench's aggregate in process:
// avg(temp) per node per minute over 1,000,000 events of 8 nodes shaped like
// bench/main.go's, spread over a day.
func BenchmarkAggregateAvgPerNodePerMinute(b *testing.B) {
	const n, nodes = 1_000_000, 8
	x := index.New(filepath.Join(b.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	sites := []string{"north", "south", "east", "west"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	names := make([]string, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
	}
	for i := 0; i < n; i += 1000 * nodes {
		var msgs []index.Message
		for k, node := range names {
			recs := make([]stream.Record, 1000)
			for j := range recs {
				seq := uint64(i/nodes + j + 1)
				d, _ := json.Marshal(map[string]any{"ts": 0, "sensor": fmt.Sprintf("sensor-%03d", seq%500), "site": sites[seq%4],
					"temp": 15 + rng.Float64()*20, "humidity": 30 + rng.Float64()*50,
					"gps": map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()}, "status": "ok"})
				recs[j] = stream.Record{Seq: seq, TS: base + int64(i+j*nodes+k)*int64(86400e9)/n, Data: d}
			}
			msgs = append(msgs, index.Message{Frame: &stream.Frame{Kind: stream.KindEvents, Node: node, Epoch: "e", Stream: "bench", Events: recs}, At: 1})
		}
		if _, err := x.Apply(context.Background(), msgs, false); err != nil {
			b.Fatal(err)
		}
	}
	p, err := aggregate.Prepare(aggregate.Request{Pattern: "all", From: stream.FormatTime(base), To: stream.FormatTime(base + int64(86400e9)),
		Window: "1m", GroupBy: []string{"node"}, Aggregates: []string{"avg(temp)"}})
	if err != nil {
		b.Fatal(err)
	}
	idx := knownNodes{Index: x, nodes: names}
	b.ResetTimer()
	var scanned int64
	for range b.N {
		res, err := aggregate.Execute(context.Background(), idx, p, func(string) bool { return true })
		if err != nil {
			b.Fatal(err)
		}
		scanned += res.Scanned
	}
	b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "events/s")
}
