// Command bench measures Tributary end to end and, in the same run, the peer
// figure it is judged against: publishing the same events one JetStream message
// each, with async publish, to the same kind of embedded server (file storage,
// sync always). It prints medians of several alternating rounds and the ratio.
//
//	go run ./bench --bin bin
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the hub and edge-agent binaries")
	events := flag.Int("events", 200_000, "events per round")
	rounds := flag.Int("rounds", 3, "alternating rounds of ours and the peer")
	stored := flag.Int("stored", 1_000_000, "events stored before the query figures are taken (at least one round's worth)")
	queries := flag.Int("queries", 50, "single(n) queries timed for the p50")
	peerOn := flag.Bool("peer", true, "measure the JetStream peer too (false: only Tributary, for quick checks)")
	flag.Parse()
	withPeer = *peerOn
	if err := run(*bin, *events, *rounds, *stored, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var withPeer = true

func run(bin string, n, rounds, stored, queries int) error {
	dir, err := os.MkdirTemp("", "tributary-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	hubHTTP, hubNATS, edgeHTTP := freePort(), freePort(), freePort()
	hub, err := startProc(filepath.Join(bin, "hub"), "--data", filepath.Join(dir, "hub"),
		"--http", fmt.Sprintf("127.0.0.1:%d", hubHTTP), "--nats", fmt.Sprintf("127.0.0.1:%d", hubNATS), "--max-store", "8GiB")
	if err != nil {
		return err
	}
	defer hub.stop()
	hubURL := fmt.Sprintf("http://127.0.0.1:%d", hubHTTP)
	if err := waitHealthy(hubURL); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	edge, err := startProc(filepath.Join(bin, "edge-agent"), "--node", "bench", "--data", filepath.Join(dir, "edge"),
		"--hub", fmt.Sprintf("nats://127.0.0.1:%d", hubNATS), "--listen", fmt.Sprintf("127.0.0.1:%d", edgeHTTP),
		"--buffer-max-bytes", "8GiB")
	if err != nil {
		return err
	}
	defer edge.stop()
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgeHTTP)
	if err := waitHealthy(edgeURL); err != nil {
		return fmt.Errorf("edge: %w", err)
	}

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Printf("%d events of ~%d bytes per round, %d rounds, on %d-core %s\n", n, len(makeEvent(rand.New(rand.NewSource(1)), 0, start)), rounds, numCPU(), goarch())
	var ours, peer []float64
	total := 0
	for r := 0; r < rounds; r++ {
		body := makeBodies(n, 2000, int64(r), start.Add(dayShare(total, stored)), stored)
		rate, err := endToEnd(edgeURL, hubURL, body, total+n)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		total += n
		ours = append(ours, rate)
		prate := 0.0
		if withPeer {
			if prate, err = peerPublish(filepath.Join(dir, fmt.Sprintf("peer-%d", r)), body); err != nil {
				return fmt.Errorf("peer round %d: %w", r, err)
			}
		}
		peer = append(peer, prate)
		if !withPeer {
			fmt.Printf("  round %d: tributary end to end %9.0f events/s\n", r+1, rate)
			continue
		}
		fmt.Printf("  round %d: tributary end to end %9.0f events/s   jetstream async publish, 1 msg/event %9.0f events/s   ratio %.2f\n", r+1, rate, prate, rate/prate)
	}
	mo, mp := median(ours), median(peer)
	fmt.Printf("\nmedian: tributary end to end (ingest until queryable) %.0f events/s\n", mo)
	if withPeer {
		fmt.Printf("median: jetstream async publish, one message per event  %.0f events/s\n", mp)
		fmt.Printf("ratio (tributary / jetstream): %.2f\n", mo/mp)
	}
	fmt.Println()

	// Fill the hub to the stored count, spread over 24 hours of event time.
	for total < stored {
		k := min(n, stored-total)
		body := makeBodies(k, 2000, int64(total), start.Add(dayShare(total, stored)), stored)
		if _, err := endToEnd(edgeURL, hubURL, body, total+k); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		total += k
	}
	var lat []float64
	for i := 0; i < queries; i++ {
		from := start.Add(time.Duration(i%23) * time.Hour)
		q := url.Values{"pattern": {"single(bench)"}, "from": {from.Format(time.RFC3339)}, "to": {from.Add(time.Hour).Format(time.RFC3339)}}
		t0 := time.Now()
		var res struct {
			Matches []json.RawMessage `json:"matches"`
		}
		if err := getJSON(hubURL+"/api/v1/query?"+q.Encode(), &res); err != nil {
			return err
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		if len(res.Matches) == 0 {
			return fmt.Errorf("one-hour query %s found nothing", q.Encode())
		}
	}
	fmt.Printf("single(n), one hour of %d stored events, first page of 100: p50 %.1f ms (%d queries)\n", total, median(lat), queries)
	var scans []float64
	for i := 0; i < 3; i++ {
		var res struct {
			Scanned int64  `json:"scanned"`
			Count   *int64 `json:"count"`
		}
		t0 := time.Now()
		q := url.Values{"pattern": {"all"}, "where": {`temp > 1000 && site == "north"`}, "count": {"true"}}
		if err := getJSON(hubURL+"/api/v1/query?"+q.Encode(), &res); err != nil {
			return err
		}
		scans = append(scans, float64(res.Scanned)/time.Since(t0).Seconds())
	}
	fmt.Printf("all with a predicate over %d events: scan rate %.0f events/s (median of 3)\n", total, median(scans))
	return nil
}

// dayShare is the offset of event number i when stored events spread over 24 hours.
func dayShare(i, stored int) time.Duration {
	return time.Duration(float64(i) / float64(stored) * float64(24*time.Hour))
}

func makeEvent(rng *rand.Rand, i int, ts time.Time) []byte {
	sites := []string{"north", "south", "east", "west"}
	b, _ := json.Marshal(map[string]any{
		"ts":       ts.UnixMilli(),
		"sensor":   fmt.Sprintf("sensor-%03d", i%500),
		"site":     sites[i%4],
		"temp":     15 + rng.Float64()*20,
		"humidity": 30 + rng.Float64()*50,
		"gps":      map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()},
		"status":   "ok",
	})
	return b
}

// makeBodies returns NDJSON request bodies of per events each.
func makeBodies(n, per int, seed int64, start time.Time, spread int) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	step := 24 * time.Hour / time.Duration(spread)
	var out [][]byte
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		buf.Write(makeEvent(rng, i, start.Add(time.Duration(i)*step)))
		buf.WriteByte('\n')
		if (i+1)%per == 0 || i == n-1 {
			out = append(out, append([]byte(nil), buf.Bytes()...))
			buf.Reset()
		}
	}
	return out
}

// endToEnd posts every body to the edge (four at a time) and waits until the hub
// holds want events; it returns the events per second of the whole.
func endToEnd(edgeURL, hubURL string, bodies [][]byte, want int) (float64, error) {
	count := 0
	for _, b := range bodies {
		count += bytes.Count(b, []byte{'\n'})
	}
	t0 := time.Now()
	work := make(chan []byte)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				resp, err := http.Post(edgeURL+"/api/v1/events?stream=bench", "application/x-ndjson", bytes.NewReader(b))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("ingest: status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var res struct {
			Nodes []struct {
				Node   string `json:"node"`
				Events int64  `json:"events"`
			} `json:"nodes"`
		}
		if err := getJSON(hubURL+"/api/v1/nodes", &res); err != nil {
			return 0, err
		}
		var have int64
		for _, nd := range res.Nodes {
			if nd.Node == "bench" {
				have = nd.Events
			}
		}
		if have >= int64(want) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("hub holds %d of %d events after 5 minutes", have, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return float64(count) / time.Since(t0).Seconds(), nil
}

// peerPublish publishes every event as its own JetStream message with async
// publish to a fresh embedded server configured like the hub's, and returns
// events per second until the last ack.
func peerPublish(dir string, bodies [][]byte) (float64, error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		JetStreamMaxStore: 8 << 30, SyncAlways: true, NoSigs: true, NoLog: true})
	if err != nil {
		return 0, err
	}
	s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }()
	if !s.ReadyForConnections(10 * time.Second) {
		return 0, errors.New("peer server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PEER", Subjects: []string{"peer.>"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	var msgs [][]byte
	for _, b := range bodies {
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
			msgs = append(msgs, line)
		}
	}
	t0 := time.Now()
	// A window of 4,000 outstanding publishes, as nats.go recommends for async
	// publishing; every ack is checked.
	const window = 4000
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	wait := func(f jetstream.PubAckFuture) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return err
		}
	}
	acked := 0
	for _, m := range msgs {
		if len(futures)-acked >= window {
			if err := wait(futures[acked]); err != nil {
				return 0, err
			}
			acked++
		}
		f, err := js.PublishAsync("peer.bench", m)
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
	}
	for _, f := range futures[acked:] {
		if err := wait(f); err != nil {
			return 0, err
		}
	}
	return float64(len(msgs)) / time.Since(t0).Seconds(), nil
}

type proc struct{ cmd *exec.Cmd }

func startProc(path string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func waitHealthy(base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s/healthz not ready after 60s", base)
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
