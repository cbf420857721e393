package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

func fillBench(b *testing.B, n int) *Index {
	x := New(filepath.Join(b.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	rng := rand.New(rand.NewPCG(1, 1))
	sites := []string{"north", "south", "east", "west"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	seq := uint64(0)
	var msgs []Message
	for seq < uint64(n) {
		recs := make([]stream.Record, 1000)
		for i := range recs {
			seq++
			d, _ := json.Marshal(map[string]any{"ts": 0, "sensor": fmt.Sprintf("sensor-%03d", seq%500), "site": sites[seq%4],
				"temp": 15 + rng.Float64()*20, "humidity": 30 + rng.Float64()*50,
				"gps": map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()}, "status": "ok"})
			recs[i] = stream.Record{Seq: seq, TS: base + int64(seq)*(int64(86400e9)/int64(n)), Data: d}
		}
		msgs = append(msgs, Message{Frame: &stream.Frame{Kind: stream.KindEvents, Node: "bench", Epoch: "e", Stream: "bench", Events: recs}, At: 1})
		if len(msgs) == 10 {
			if _, err := x.Apply(context.Background(), msgs, false); err != nil {
				b.Fatal(err)
			}
			msgs = nil
		}
	}
	return x
}

type qi struct{ *Index }

func (q qi) Nodes(context.Context) ([]string, error)       { return []string{"bench"}, nil }
func (q qi) HasNode(context.Context, string) (bool, error) { return true, nil }

func BenchmarkScanCount(b *testing.B) {
	x := fillBench(b, 1_000_000)
	q, err := pattern.Prepare(pattern.Request{Pattern: "all", Where: `temp > 1000 && site == "north"`, Count: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var scanned int64
	for i := 0; i < b.N; i++ {
		res, err := pattern.Execute(context.Background(), qi{x}, q)
		if err != nil {
			b.Fatal(err)
		}
		scanned += res.Scanned
	}
	b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkScanNoWhere(b *testing.B) {
	x := fillBench(b, 1_000_000)
	q, _ := pattern.Prepare(pattern.Request{Pattern: "all", Count: true})
	b.ResetTimer()
	var scanned int64
	for i := 0; i < b.N; i++ {
		res, _ := pattern.Execute(context.Background(), qi{x}, q)
		scanned += res.Scanned
	}
	b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSingleHour is the bench's single(n) figure without HTTP: the
// first page of one node's hour out of a day of stored events, and the
// page's JSON. Its cost must not grow with what is stored: compare
// -bench 'SingleHour/1M' with '/3M'.
func BenchmarkSingleHour(b *testing.B) {
	for _, n := range []int{1_000_000, 3_000_000} {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			x := fillBench(b, n)
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				from := base.Add(time.Duration(i%23) * time.Hour)
				q, err := pattern.Prepare(pattern.Request{Pattern: "single(bench)", From: from.Format(time.RFC3339), To: from.Add(time.Hour).Format(time.RFC3339)})
				if err != nil {
					b.Fatal(err)
				}
				res, err := pattern.Execute(context.Background(), qi{x}, q)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := res.AppendJSON(nil); err != nil || len(res.Matches) != 100 {
					b.Fatalf("%d matches: %v", len(res.Matches), err)
				}
			}
		})
	}
}
