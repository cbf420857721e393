package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// clusterFigures are the cluster's figures and the single hub's, measured the
// same way in the same run.
type clusterFigures struct {
	events, rounds int
	// single and first: end to end into one edge until queryable at the one
	// hub, or at the first of three clustered hubs (R3); every: until each of
	// the three holds every event. Events per second, one per round.
	single, first, every []float64
	// failover: from a stream leader's SIGKILL to the ack, through the other
	// hubs, of the first event the edge took in after it, one per kill.
	failover []time.Duration
	// stored is the number of events each hub holds after the rounds;
	// jsBytes and indexBytes what one hub's JetStream store and index take
	// on disk for them.
	stored              int
	jsBytes, indexBytes int64
	// rawR1 and rawR3: the same events as frames an edge sends, published
	// straight to a stream at R1 on the single hub's server and at R3 on the
	// cluster, with nothing reading them.
	rawR1, rawR3 float64
}

func (f clusterFigures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncluster: %d events per round, %d rounds, one edge; 3 hubs on loopback, EDGE and COUNTERS at R3\n", f.events, f.rounds)
	for i := range f.single {
		fmt.Fprintf(&b, "  round %d: single hub %9.0f events/s   3-hub cluster %9.0f events/s (first hub), %9.0f (every hub)   ratio %.2f\n",
			i+1, f.single[i], f.first[i], f.every[i], f.first[i]/f.single[i])
	}
	ms, mf, me := median(f.single), median(f.first), median(f.every)
	fmt.Fprintf(&b, "median: single hub (ingest until queryable)           %.0f events/s\n", ms)
	fmt.Fprintf(&b, "median: 3-hub R3 cluster, until queryable at one hub  %.0f events/s (ratio to the single hub %.2f)\n", mf, mf/ms)
	fmt.Fprintf(&b, "median: 3-hub R3 cluster, until every hub holds all   %.0f events/s (ratio %.2f)\n", me, me/ms)
	if f.stored > 0 {
		fmt.Fprintf(&b, "stored per hub: %d events; JetStream %.1f MiB (%.0f bytes/event), index %.1f MiB (%.0f bytes/event)\n",
			f.stored, float64(f.jsBytes)/(1<<20), float64(f.jsBytes)/float64(f.stored),
			float64(f.indexBytes)/(1<<20), float64(f.indexBytes)/float64(f.stored))
	}
	if f.rawR1 > 0 {
		fmt.Fprintf(&b, "JetStream alone, the same events as 1000-event frames, nothing reading: R1 on the single hub's server %.0f events/s, R3 on the cluster %.0f events/s (ratio %.2f)\n",
			f.rawR1, f.rawR3, f.rawR3/f.rawR1)
	}
	var secs []float64
	var each []string
	for _, d := range f.failover {
		secs = append(secs, d.Seconds())
		each = append(each, fmt.Sprintf("%.2f s", d.Seconds()))
	}
	fmt.Fprintf(&b, "failover: stream leader SIGKILLed under steady ingest → first event taken in after it acknowledged through the others: median %.2f s (%s)\n",
		median(secs), strings.Join(each, ", "))
	return b.String()
}

// clusterProc is one process of the cluster bench that can be killed and
// started again.
type clusterProc struct {
	path string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *clusterProc) start() error {
	p.cmd = exec.Command(p.path, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, io.Discard
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
	return nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *clusterProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *clusterProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// benchHub is one hub of the bench with its addresses.
type benchHub struct {
	*clusterProc
	name, http, nats string
}

// startBenchHubs starts n hubs (a single one for n == 1, else a cluster) in
// dir, all at once, and waits until every one is healthy.
func startBenchHubs(bin, dir string, n int) ([]*benchHub, error) {
	var routes []string
	for i := 0; i < n; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", freePort()))
	}
	var hubs []*benchHub
	for i := 0; i < n; i++ {
		h := &benchHub{name: fmt.Sprintf("hub-%d", i+1), http: fmt.Sprintf("http://127.0.0.1:%d", freePort()),
			nats: fmt.Sprintf("nats://127.0.0.1:%d", freePort())}
		args := []string{"--name", h.name, "--data", filepath.Join(dir, h.name), "--http", strings.TrimPrefix(h.http, "http://"),
			"--nats", strings.TrimPrefix(h.nats, "nats://"), "--max-store", "8GiB"}
		if n > 1 {
			args = append(args, "--cluster", strings.TrimPrefix(routes[i], "nats://"), "--peers", strings.Join(routes, ","))
		}
		h.clusterProc = &clusterProc{path: filepath.Join(bin, "hub"), args: args}
		if err := h.start(); err != nil {
			stopAll(hubs)
			return nil, err
		}
		hubs = append(hubs, h)
	}
	for _, h := range hubs {
		if err := waitHealthy(h.http); err != nil {
			stopAll(hubs)
			return nil, fmt.Errorf("%s: %w", h.name, err)
		}
	}
	return hubs, nil
}

func stopAll(hubs []*benchHub) {
	for _, h := range hubs {
		h.stop()
	}
}

// hubEvents returns how many events of node the hub at base holds.
func hubEvents(base, node string) (int64, error) {
	var res struct {
		Nodes []struct {
			Node   string `json:"node"`
			Events int64  `json:"events"`
		} `json:"nodes"`
	}
	if err := getJSON(base+"/api/v1/nodes?prefix="+node, &res); err != nil {
		return 0, err
	}
	for _, nd := range res.Nodes {
		if nd.Node == node {
			return nd.Events, nil
		}
	}
	return 0, nil
}

// clusterRun is one deployment under test: its hubs and one edge that lists
// every hub.
type clusterRun struct {
	hubs  []*benchHub
	edge  *clusterProc
	edgeH string
	total int
}

func startClusterRun(bin, dir string, n int) (*clusterRun, error) {
	hubs, err := startBenchHubs(bin, dir, n)
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, h := range hubs {
		urls = append(urls, h.nats)
	}
	port := freePort()
	r := &clusterRun{hubs: hubs, edgeH: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.edge = &clusterProc{path: filepath.Join(bin, "edge-agent"), args: []string{"--node", "bench", "--data", filepath.Join(dir, "edge"),
		"--hub", strings.Join(urls, ","), "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--buffer-max-bytes", "8GiB"}}
	if err := r.edge.start(); err != nil {
		r.close()
		return nil, err
	}
	if err := waitHealthy(r.edgeH); err != nil {
		r.close()
		return nil, fmt.Errorf("edge: %w", err)
	}
	return r, nil
}

func (r *clusterRun) close() {
	if r.edge != nil && r.edge.cmd != nil {
		r.edge.stop()
	}
	stopAll(r.hubs)
}

// round ingests bodies and returns events per second until the first hub
// holds them (endToEnd, as the main figure is measured) and until every hub
// does.
func (r *clusterRun) round(bodies [][]byte, n int) (first, every float64, err error) {
	t0 := time.Now()
	r.total += n
	if first, err = endToEnd(r.edgeH, r.hubs[0].http, bodies, r.total); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, h := range r.hubs[1:] {
		for {
			have, err := hubEvents(h.http, "bench")
			if err != nil {
				return 0, 0, err
			}
			if have >= int64(r.total) {
				break
			}
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("%s holds %d of %d events after 5 minutes", h.name, have, r.total)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return first, float64(n) / time.Since(t0).Seconds(), nil
}

// ackedSeq returns the edge's acked_seq: it has every event up to it
// acknowledged.
func (r *clusterRun) ackedSeq() (uint64, error) {
	var st struct {
		AckedSeq uint64 `json:"acked_seq"`
	}
	err := getJSON(r.edgeH+"/api/v1/status", &st)
	return st.AckedSeq, err
}

// lastSeq returns the edge's last_seq: the last event it has taken in.
func (r *clusterRun) lastSeq() (uint64, error) {
	var st struct {
		LastSeq uint64 `json:"last_seq"`
	}
	err := getJSON(r.edgeH+"/api/v1/status", &st)
	return st.LastSeq, err
}

// streamLeader returns the hub that leads the EDGE stream and has every
// peer active and caught up, waiting up to a minute for such a cluster.
func (r *clusterRun) streamLeader() (*benchHub, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var st struct {
			StreamLeader string `json:"stream_leader"`
			Peers        []struct {
				Active, Current bool
			} `json:"peers"`
		}
		if err := getJSON(r.hubs[0].http+"/api/v1/cluster", &st); err == nil && len(st.Peers) == len(r.hubs) {
			whole := true
			for _, p := range st.Peers {
				whole = whole && p.Active && p.Current
			}
			for _, h := range r.hubs {
				if whole && h.name == st.StreamLeader {
					return h, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no stream leader with every hub caught up after a minute")
}

// failover SIGKILLs the stream leader while a steady ingest runs, kills
// times, and returns the time from each kill until the edge has an event it
// took in after the kill acknowledged (and so every event before it). Each killed hub is started again and the cluster
// allowed to heal before the next kill.
func (r *clusterRun) failover(kills int) ([]time.Duration, error) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(99))
		start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var body bytes.Buffer
			for j := 0; j < 50; j++ {
				body.Write(makeEvent(rng, i*50+j, start.Add(time.Duration(i*50+j)*time.Millisecond)))
				body.WriteByte('\n')
			}
			if resp, err := http.Post(r.edgeH+"/api/v1/events?stream=failover", "application/x-ndjson", &body); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	var out []time.Duration
	for k := 0; k < kills; k++ {
		leader, err := r.streamLeader()
		if err != nil {
			return out, err
		}
		// Let the edge settle into steady forwarding first.
		if err := r.waitAcked(1000, time.Minute); err != nil {
			return out, err
		}
		t0 := time.Now()
		leader.kill()
		// An ack the leader sent just before it died may still arrive through
		// another hub: count only the ack of an event the edge took in after
		// the kill, which no batch published before it can hold.
		at, err := r.lastSeq()
		if err != nil {
			return out, err
		}
		for {
			s, err := r.ackedSeq()
			if err != nil {
				return out, err
			}
			if s > at {
				break
			}
			if time.Since(t0) > 2*time.Minute {
				return out, fmt.Errorf("no batch acknowledged 2 minutes after %s's SIGKILL", leader.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		out = append(out, time.Since(t0))
		if err := leader.start(); err != nil {
			return out, err
		}
		if err := waitHealthy(leader.http); err != nil {
			return out, fmt.Errorf("%s after restart: %w", leader.name, err)
		}
	}
	return out, nil
}

// waitAcked waits until the edge's acked_seq has grown by n.
func (r *clusterRun) waitAcked(n uint64, timeout time.Duration) error {
	from, err := r.ackedSeq()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		s, err := r.ackedSeq()
		if err != nil {
			return err
		}
		if s >= from+n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("edge acked %d of %d events in %v", s-from, n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterBench measures a 3-hub R3 cluster beside a single hub, the same way
// and in the same run: rounds of n events through one edge, alternating, and
// then the failover time over three SIGKILLs of the stream leader.
func clusterBench(bin string, n, rounds int) (clusterFigures, error) {
	f := clusterFigures{events: n, rounds: rounds}
	dir, err := os.MkdirTemp("", "tributary-bench-cluster")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	single, err := startClusterRun(bin, filepath.Join(dir, "single"), 1)
	if err != nil {
		return f, fmt.Errorf("single hub: %w", err)
	}
	defer single.close()
	cluster, err := startClusterRun(bin, filepath.Join(dir, "cluster"), 3)
	if err != nil {
		return f, fmt.Errorf("cluster: %w", err)
	}
	defer cluster.close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for r := 0; r < rounds; r++ {
		bodies := makeBodies(n, 2000, int64(r), start.Add(time.Duration(r)*time.Hour), n)
		s, _, err := single.round(bodies, n)
		if err != nil {
			return f, fmt.Errorf("single hub, round %d: %w", r+1, err)
		}
		first, every, err := cluster.round(bodies, n)
		if err != nil {
			return f, fmt.Errorf("cluster, round %d: %w", r+1, err)
		}
		f.single, f.first, f.every = append(f.single, s), append(f.first, first), append(f.every, every)
		fmt.Printf("  cluster round %d: single hub %9.0f events/s   3-hub cluster %9.0f (first hub) %9.0f (every hub)\n", r+1, s, first, every)
	}
	frames, events, err := rawFrames(makeBodies(n, 2000, 42, start, n))
	if err != nil {
		return f, err
	}
	if f.rawR1, err = rawPublish(single.hubs[0].nats, 1, frames, events); err != nil {
		return f, fmt.Errorf("raw R1: %w", err)
	}
	if f.rawR3, err = rawPublish(cluster.hubs[0].nats, 3, frames, events); err != nil {
		return f, fmt.Errorf("raw R3: %w", err)
	}
	single.close()
	f.stored = cluster.total
	hub1 := filepath.Join(dir, "cluster", "hub-1")
	f.jsBytes = dirBytes(filepath.Join(hub1, "jetstream"))
	f.indexBytes = dirBytes(filepath.Join(hub1, "index.db")) + dirBytes(filepath.Join(hub1, "index.db-wal"))
	if f.failover, err = cluster.failover(3); err != nil {
		return f, fmt.Errorf("failover: %w", err)
	}
	return f, nil
}

// dirBytes returns the bytes of the files under path (a file or a directory).
func dirBytes(path string) int64 {
	var n int64
	filepath.Walk(path, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// rawFrames turns NDJSON bodies into the frames an edge would send: 1000
// events each, zstd, wire format v2.
func rawFrames(bodies [][]byte) ([][]byte, int, error) {
	var frames [][]byte
	var recs []stream.Record
	n := 0
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		b, err := stream.EncodeEventsV2(nil, stream.CodecZstd, "raw", "epoch", "bench", recs)
		if err != nil {
			return err
		}
		frames, recs = append(frames, b), recs[:0]
		return nil
	}
	for _, body := range bodies {
		for _, line := range bytes.Split(bytes.TrimSuffix(body, []byte{'\n'}), []byte{'\n'}) {
			n++
			recs = append(recs, stream.Record{Seq: uint64(n), TS: int64(n), Ingest: int64(n), Data: append([]byte(nil), line...)})
			if len(recs) == stream.MaxBatchEvents {
				if err := flush(); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	return frames, n, flush()
}

// rawPublish publishes frames, 8 in flight as an edge keeps them, to a
// stream of its own with the given replicas on the server at url (file
// storage, the server's sync always), and returns events per second until
// the last ack: what the stream's Raft group takes with no hub reading it.
func rawPublish(url string, replicas int, frames [][]byte, events int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("RAW%d", replicas)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"raw" + name + ".>"},
		Storage: jetstream.FileStorage, Replicas: replicas, MaxMsgSize: stream.MaxFrameBytes}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.Background(), name)
	t0 := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(frames))
	for _, f := range frames {
		fut, err := js.PublishAsync("raw"+name+".bench", f)
		if err != nil {
			return 0, err
		}
		futures = append(futures, fut)
	}
	for _, fut := range futures {
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return float64(events) / time.Since(t0).Seconds(), nil
}

// add puts the cluster's figures into the bench's JSON line.
func (f clusterFigures) add(figs *figures) {
	figs.add("cluster_single_events_per_s", median(f.single))
	figs.add("cluster_first_hub_events_per_s", median(f.first))
	figs.add("cluster_every_hub_events_per_s", median(f.every))
	var fo []float64
	for _, d := range f.failover {
		fo = append(fo, d.Seconds())
	}
	figs.add("cluster_failover_s", median(fo))
}
