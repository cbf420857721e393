package hubapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/internal/fleetsim"
	"github.com/tributary-edge/tributary/web"
)

// BenchmarkFleet times, in process, what bench/fleet.go times over a hub
// process: the first page of all, any with a predicate, a counted scan of all
// with a predicate, and the node list, over a simulated fleet (10,000 nodes ×
// 100 events; TRIBUTARY_BENCH_FLEET_NODES and _EVENTS change it). With
// TRIBUTARY_BENCH_FLEET_DIR set, the hub keeps its data there and a later run
// reuses it instead of publishing the fleet again. Run it with -cpuprofile to
// see where a query's time goes; with one node of 1,000,000 events the
// single sub-benchmark is the bench's single(n) figure.
func BenchmarkFleet(b *testing.B) {
	f := fleetsim.Default(envInt("TRIBUTARY_BENCH_FLEET_NODES", 10000))
	f.Events = envInt("TRIBUTARY_BENCH_FLEET_EVENTS", 100)
	f.Batch = min(f.Events, 1000)
	dir := os.Getenv("TRIBUTARY_BENCH_FLEET_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	h := hub.New()
	h.DataDir, h.NATSAddr, h.MaxStore = dir, "127.0.0.1:0", 8<<30
	s := web.NewServer("127.0.0.1:0")
	Mount(s, h)
	ctx := context.Background()
	if err := h.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	total := int64(f.Nodes * f.Events)
	if p, err := h.Nodes(ctx, hub.NodeQuery{Limit: 1}); err != nil || p.Totals.Events < total {
		js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
		if err := fleetsim.Publish(ctx, js, f, nil); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := fleetsim.Heartbeats(nc, f, time.Now(), nil, nil); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		p, err := h.Nodes(ctx, hub.NodeQuery{Limit: 1})
		if err == nil && p.Totals.Events >= total && p.Totals.Online == f.Nodes {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the hub holds %+v of %d events", p.Totals, total)
		}
	}
	get := func(b *testing.B, what string, q url.Values) {
		// CPU time per query, the hub's and the client's: on a shared
		// machine it moves less than the wall time.
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op") }()
		for b.Loop() {
			resp, err := http.Get(s.URL() + "/api/v1/" + what + "?" + q.Encode())
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d", what, resp.StatusCode)
			}
			b.SetBytes(n)
		}
	}
	b.Run("all", func(b *testing.B) { get(b, "query", url.Values{"pattern": {"all"}}) })
	b.Run("any", func(b *testing.B) { get(b, "query", url.Values{"pattern": {"any"}, "where": {"temp > 30"}}) })
	b.Run("all-count", func(b *testing.B) {
		get(b, "query", url.Values{"pattern": {"all"}, "where": {`temp > 1000 && site == "north"`}, "count": {"true"}})
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("nodes", func(b *testing.B) { get(b, "nodes", url.Values{"limit": {"50"}}) })
	// The bench's single(n) figure: the first page of one node's hour.
	from := f.Start.Add(time.Hour)
	b.Run("single", func(b *testing.B) {
		get(b, "query", url.Values{"pattern": {"single(" + f.Node(0) + ")"}, "from": {from.Format(time.RFC3339)}, "to": {from.Add(time.Hour).Format(time.RFC3339)}})
	})
}

// cpuTime is the process's user and system CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
