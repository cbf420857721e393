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
	peerOn := flag.Bool("peer", true, "measure the peers too (false: only Tributary, for quick checks)")
	fleetNodes := flag.Int("fleet-nodes", 10_000, "nodes of the simulated fleet (0: no fleet figures)")
	fleetEvents := flag.Int("fleet-events", 100, "events per node of the simulated fleet")
	clusterOn := flag.Bool("cluster", true, "measure a 3-hub R3 cluster beside a single hub, and its failover time")
	aggEvents := flag.Int("aggregate-events", 1_000_000, "events of the aggregate figure (bench/aggregate.go)")
	aggRounds := flag.Int("aggregate-rounds", 5, "alternating rounds of the aggregate and its SQLite peer")
	uplinkOn := flag.Bool("uplink", true, "measure the uplink too: wire bytes per event and the edge's memory (bench/uplink.go)")
	only := flag.String("only", "", "comma-separated parts to run (e2e, stages, fleet, cluster, aggregate, uplink); empty runs every part")
	flag.Parse()
	withPeer = *peerOn
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts[p] = true
		}
	}
	want := func(p string) bool { return len(parts) == 0 || parts[p] }
	dir, err := os.MkdirTemp("", "tributary-bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	figs := newFigures()
	fmt.Printf("bench on %d cores, %s\n\n", numCPU(), goarch())
	err = func() error {
		if want("e2e") {
			if err := run(*bin, dir, *events, *rounds, *stored, *queries, figs); err != nil {
				return fmt.Errorf("e2e: %w", err)
			}
		}
		if want("stages") {
			if err := stagesBench(*bin, dir, *events, figs); err != nil {
				return fmt.Errorf("stages: %w", err)
			}
		}
		if want("fleet") && *fleetNodes > 0 {
			if err := fleetBench(*bin, dir, *fleetNodes, *fleetEvents, *queries, figs); err != nil {
				return fmt.Errorf("fleet: %w", err)
			}
		}
		if want("cluster") && *clusterOn {
			cf, err := clusterBench(*bin, *events, *rounds)
			if err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			fmt.Print(cf)
			cf.add(figs)
		}
		if want("aggregate") {
			if err := aggregateBench(*bin, dir, *aggEvents, *aggRounds, figs); err != nil {
				return fmt.Errorf("aggregate: %w", err)
			}
		}
		if want("uplink") && *uplinkOn {
			u, err := uplinkFigures(*bin)
			if err != nil {
				return fmt.Errorf("uplink: %w", err)
			}
			u.print(os.Stdout)
			u.addTo(figs)
		}
		return nil
	}()
	fmt.Println()
	fmt.Println(figs.line())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var withPeer, withCluster = true, true

func run(bin, dir string, n, rounds, stored, queries int, figs *figures) error {

	hubHTTP, hubNATS, edgeHTTP := freePort(), freePort(), freePort()
	hub, err := startHub(bin, filepath.Join(dir, "hub"), hubHTTP, hubNATS)
	if err != nil {
		return err
	}
	defer hub.stop()
	hubURL := fmt.Sprintf("http://127.0.0.1:%d", hubHTTP)
	edge, err := startEdge(bin, "bench", filepath.Join(dir, "edge"), edgeHTTP, hubNATS)
	if err != nil {
		return err
	}
	defer edge.stop()
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgeHTTP)

	start := benchStart
	fmt.Printf("%d events of ~%d bytes per round, %d rounds\n", n, len(makeEvent(rand.New(rand.NewSource(1)), 0, start)), rounds)
	var ours, peerSync, peerDefault []float64
	total := 0
	var rawBytes int64
	for r := 0; r < rounds; r++ {
		body := makeBodies(n, 2000, int64(r), start.Add(dayShare(total, stored)), stored)
		for _, b := range body {
			rawBytes += int64(len(b))
		}
		rate, err := endToEnd(edgeURL, hubURL, body, total+n)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		total += n
		ours = append(ours, rate)
		if !withPeer {
			fmt.Printf("  round %d: tributary end to end %9.0f events/s\n", r+1, rate)
			continue
		}
		ps, err := peerPublish(filepath.Join(dir, fmt.Sprintf("peer-sync-%d", r)), body, true)
		if err != nil {
			return fmt.Errorf("peer round %d: %w", r, err)
		}
		pd, err := peerPublish(filepath.Join(dir, fmt.Sprintf("peer-default-%d", r)), body, false)
		if err != nil {
			return fmt.Errorf("peer round %d: %w", r, err)
		}
		peerSync, peerDefault = append(peerSync, ps), append(peerDefault, pd)
		fmt.Printf("  round %d: tributary end to end %9.0f events/s   jetstream 1 msg/event: default sync %9.0f (ratio %.2f), sync always %9.0f (ratio %.2f)\n",
			r+1, rate, pd, rate/pd, ps, rate/ps)
	}
	mo := median(ours)
	figs.add("e2e_events_per_s", mo)
	fmt.Printf("\nmedian: tributary end to end (ingest until queryable, fsync at the edge and the hub) %.0f events/s\n", mo)
	if withPeer {
		md, ms := median(peerDefault), median(peerSync)
		figs.add("peer_js_default_events_per_s", md)
		figs.add("peer_js_sync_events_per_s", ms)
		figs.add("e2e_ratio_js_default", mo/md)
		fmt.Printf("median: jetstream async publish, one message per event, default sync  %.0f events/s  ratio %.2f\n", md, mo/md)
		fmt.Printf("median: jetstream async publish, one message per event, sync always   %.0f events/s  ratio %.2f\n", ms, mo/ms)
	}
	fmt.Println()

	// Fill the hub to the stored count, spread over 24 hours of event time.
	for total < stored {
		k := min(n, stored-total)
		body := makeBodies(k, 2000, int64(total), start.Add(dayShare(total, stored)), stored)
		for _, b := range body {
			rawBytes += int64(len(b))
		}
		if _, err := endToEnd(edgeURL, hubURL, body, total+k); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		total += k
		if total%(10*n) == 0 {
			fmt.Printf("  stored %d of %d events\n", total, stored)
		}
	}
	var lat, decoded, took []float64
	for i := 0; i < queries; i++ {
		from := start.Add(time.Duration(i%23) * time.Hour)
		q := url.Values{"pattern": {"single(bench)"}, "from": {from.Format(time.RFC3339)}, "to": {from.Add(time.Hour).Format(time.RFC3339)}}
		// From the request sent to the answer's last byte read, as curl's
		// time_total: decoding the answer is the client's work, timed apart.
		t0 := time.Now()
		body, err := getBody(hubURL + "/api/v1/query?" + q.Encode())
		if err != nil {
			return err
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		var res struct {
			Matches []json.RawMessage `json:"matches"`
			TookMS  float64           `json:"took_ms"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("one-hour query %s: %w", q.Encode(), err)
		}
		decoded, took = append(decoded, float64(time.Since(t0).Microseconds())/1000), append(took, res.TookMS)
		if len(res.Matches) == 0 {
			return fmt.Errorf("one-hour query %s found nothing", q.Encode())
		}
	}
	fmt.Printf("single(n), one hour of %d stored events, first page of 100: p50 %.2f ms, request to last byte (%d queries; the hub's own took_ms p50 %.2f; with this client's JSON decode of the page p50 %.2f)\n",
		total, median(lat), queries, median(took), median(decoded))
	figs.add("stored_events", float64(total))
	figs.add("single_p50_ms", median(lat))
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
	figs.add("scan_events_per_s", median(scans))
	if withPeer {
		peer, err := sqliteJSONScan(filepath.Join(dir, "peer.db"), total, start, stored)
		if err != nil {
			return fmt.Errorf("sqlite peer: %w", err)
		}
		figs.add("peer_sqlite_json_scan_events_per_s", peer)
		fmt.Printf("the same count by hand in SQLite (json_extract in WHERE) over %d events: %.0f events/s; ratio %.2f\n", total, peer, median(scans)/peer)
	}

	// The hidden cost in memory: the hub's peak resident set over ingest,
	// queries and scans.
	_, hwm, _, _ := procStatus(hub.cmd.Process.Pid)
	figs.add("hub_peak_rss_mib", hwm)
	fmt.Printf("hub peak resident set over ingest, queries and scans: %.1f MiB\n", hwm)

	// What the hub keeps per event, beside the raw JSON.
	hub.stop()
	edge.stop()
	hubBytes := duBytes(filepath.Join(dir, "hub"))
	figs.add("hub_bytes_per_event", float64(hubBytes)/float64(total))
	figs.add("raw_bytes_per_event", float64(rawBytes)/float64(total))
	fmt.Printf("hub disk: %.1f bytes per event (JetStream and index) for %.1f bytes of NDJSON per event\n",
		float64(hubBytes)/float64(total), float64(rawBytes)/float64(total))

	// The index rebuilt from JetStream: the materializer alone.
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(dir, "hub", f))
	}
	t0 := time.Now()
	hub, err = startHub(bin, filepath.Join(dir, "hub"), hubHTTP, hubNATS)
	if err != nil {
		return err
	}
	defer hub.stop()
	if err := waitEvents(hubURL, "bench", total, 30*time.Minute); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	rebuild := float64(total) / time.Since(t0).Seconds()
	_, hwm, _, _ = procStatus(hub.cmd.Process.Pid)
	figs.add("rebuild_events_per_s", rebuild)
	figs.add("hub_rebuild_peak_rss_mib", hwm)
	fmt.Printf("index rebuilt from JetStream: %.0f events/s (%d events, hub start included), hub peak resident set %.1f MiB\n", rebuild, total, hwm)
	return nil
}

// benchStart is the event time of the first stored event.
var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

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
	t0 := time.Now()
	count, err := postBodies(edgeURL, bodies)
	if err != nil {
		return 0, err
	}
	if err := waitEvents(hubURL, "bench", want, 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(count) / time.Since(t0).Seconds(), nil
}

// peerPublish publishes every event as its own JetStream message with async
// publish to a fresh embedded server — file storage, with sync always like the
// hub's or JetStream's default (sync every 2 min) — and returns events per
// second until the last ack.
func peerPublish(dir string, bodies [][]byte, syncAlways bool) (float64, error) {
	s, err := startPeerServer(dir, -1, syncAlways)
	if err != nil {
		return 0, err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }()
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
	msgs := ndjsonLines(bodies)
	t0 := time.Now()
	// A window of 4,000 outstanding publishes, as nats.go recommends for async
	// publishing; every ack is checked.
	if err := publishWindow(js, "peer.bench", msgs, 4000); err != nil {
		return 0, err
	}
	return float64(len(msgs)) / time.Since(t0).Seconds(), nil
}

// postBodies posts every body to the edge's ingest, four at a time, and
// returns the events they held.
func postBodies(edgeURL string, bodies [][]byte) (int, error) {
	count := 0
	for _, b := range bodies {
		count += bytes.Count(b, []byte{'\n'})
	}
	work := make(chan []byte)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				resp, err := http.Post(edgeURL+"/api/v1/events?stream=bench", "application/x-ndjson", bytes.NewReader(b))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("ingest: status %d", resp.StatusCode)
					}
				}
				if err != nil {
					// Keep taking work, so that the sender never blocks.
					select {
					case errs <- err:
					default:
					}
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
	return count, nil
}

// waitEvents waits until the hub holds want events of node.
func waitEvents(hubURL, node string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var res struct {
			Nodes []struct {
				Node   string `json:"node"`
				Events int64  `json:"events"`
			} `json:"nodes"`
		}
		if err := getJSON(hubURL+"/api/v1/nodes?prefix="+url.QueryEscape(node)+"&limit=1", &res); err != nil {
			return err
		}
		var have int64
		for _, nd := range res.Nodes {
			if nd.Node == node {
				have = nd.Events
			}
		}
		if have >= int64(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub holds %d of %d events after %v", have, want, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// startHub starts a hub on data with its API and NATS on the given loopback
// ports and waits until it is healthy; a hub that does not become healthy is
// stopped.
func startHub(bin, data string, httpPort, natsPort int) (*proc, error) {
	p, err := startProc(filepath.Join(bin, "hub"), "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", natsPort), "--max-store", "8GiB")
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(fmt.Sprintf("http://127.0.0.1:%d", httpPort)); err != nil {
		p.stop()
		return nil, fmt.Errorf("hub: %w", err)
	}
	return p, nil
}

// startEdge starts an edge agent named node on data, with its API on
// httpPort and the hub's NATS at natsPort, and waits until it is healthy.
func startEdge(bin, node, data string, httpPort, natsPort int) (*proc, error) {
	p, err := startProc(filepath.Join(bin, "edge-agent"), "--node", node, "--data", data,
		"--hub", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--buffer-max-bytes", "8GiB")
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(fmt.Sprintf("http://127.0.0.1:%d", httpPort)); err != nil {
		p.stop()
		return nil, fmt.Errorf("edge %s: %w", node, err)
	}
	return p, nil
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
	b, err := getBody(u)
	if err != nil {
		return err
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

// startPeerServer starts an embedded JetStream server on loopback port (-1: any)
// with file storage in dir, fsyncing every write when syncAlways, and waits
// until it takes connections; a server that does not is shut down.
func startPeerServer(dir string, port int, syncAlways bool) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		JetStreamMaxStore: 8 << 30, SyncAlways: syncAlways, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded JetStream server not ready after 10 s")
	}
	return s, nil
}

// ndjsonLines splits NDJSON bodies into their lines, one event each.
func ndjsonLines(bodies [][]byte) [][]byte {
	var lines [][]byte
	for _, b := range bodies {
		lines = append(lines, bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})...)
	}
	return lines
}

// publishWindow publishes each message on subject with async publish, keeping
// at most window unacknowledged, and returns once every one is acknowledged;
// any negative acknowledgement is the error.
func publishWindow(js jetstream.JetStream, subject string, msgs [][]byte, window int) error {
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
				return err
			}
			acked++
		}
		f, err := js.PublishAsync(subject, m)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures[acked:] {
		if err := wait(f); err != nil {
			return err
		}
	}
	return nil
}
