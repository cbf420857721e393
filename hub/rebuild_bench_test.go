package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// BenchmarkRebuild is the bench's "index rebuilt from JetStream" in process:
// a hub whose EDGE stream holds events shaped like bench/main.go's (about 181
// bytes each, in zstd frames of 1000, one node over a day) has its index
// deleted and is opened again; it reports the events per second from Open
// until the materializer has indexed them all, the median of
// TRIB_REBUILD_ROUNDS rebuilds (3) of TRIB_REBUILD_EVENTS events (1,000,000).
// The stream is filled once, whatever b.N: run it with -benchtime 1x.
// TRIB_REBUILD_PROFILE names a file for a CPU profile of the rebuilds alone.
func BenchmarkRebuild(b *testing.B) {
	n, rounds := envInt(b, "TRIB_REBUILD_EVENTS", 1_000_000), envInt(b, "TRIB_REBUILD_ROUNDS", 3)
	dir := b.TempDir()
	h := openHubB(b, dir)
	publishBench(b, h, n)
	waitIndexed(b, h, n)
	h.Close()
	if p := os.Getenv("TRIB_REBUILD_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	var rates, cpus []float64
	for i := 0; i < b.N*rounds; i++ {
		for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
			os.Remove(filepath.Join(dir, f))
		}
		t0, c0 := time.Now(), cpuTime()
		h := openHubB(b, dir)
		waitIndexed(b, h, n)
		rates = append(rates, float64(n)/time.Since(t0).Seconds())
		cpus = append(cpus, (cpuTime()-c0).Seconds()*1e6/float64(n))
		b.StopTimer()
		h.Close()
		b.StartTimer()
	}
	var size int64
	for _, f := range []string{"index.db", "index.db-wal"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			size += st.Size()
		}
	}
	b.Logf("rebuilds of %d events: %.0f events/s, %.2f µs of CPU per event; index %.1f bytes per event", n, rates, cpus, float64(size)/float64(n))
	slices.Sort(rates)
	slices.Sort(cpus)
	b.ReportMetric(rates[len(rates)/2], "events/s")
	b.ReportMetric(cpus[len(cpus)/2], "cpu-µs/event")
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return v
}

func openHubB(b *testing.B, dir string) *Hub {
	b.Helper()
	h := New()
	h.DataDir, h.NATSAddr, h.MaxStore = dir, "127.0.0.1:0", 8<<30
	if err := h.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	return h
}

// publishBench publishes n events of node "bench" as the edge does: version
// 2 frames of 1000 events, zstd.
func publishBench(b *testing.B, h *Hub, n int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	sites := []string{"north", "south", "east", "west"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / time.Duration(n)
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		recs := make([]stream.Record, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			ts := start.Add(time.Duration(j) * step)
			d, _ := json.Marshal(map[string]any{
				"ts": ts.UnixMilli(), "sensor": fmt.Sprintf("sensor-%03d", j%500), "site": sites[j%4],
				"temp": 15 + rng.Float64()*20, "humidity": 30 + rng.Float64()*50,
				"gps":    map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()},
				"status": "ok",
			})
			recs = append(recs, stream.Record{Seq: uint64(j + 1), TS: ts.UnixMilli() * 1e6, Ingest: ts.UnixNano(), Data: d})
		}
		frame, err := stream.EncodeEventsV2(nil, stream.CodecZstd, "bench", "e1", "bench", recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.js.Publish(ctx, stream.Subject("bench", "bench"), frame); err != nil {
			b.Fatal(err)
		}
	}
}

func waitIndexed(b *testing.B, h *Hub, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for h.mat.Stats().Events < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("indexed %d of %d events", h.mat.Stats().Events, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// cpuTime is the process's user and system time so far: on a shared machine
// it says more of a change than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
