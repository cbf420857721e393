package main

// The uplink's figures: bytes on the wire per event (zstd, none, and JSON
// with one NATS message per event beside them), and the edge agent's
// resident memory idle, while a large backlog drains and after the drain.
//
//	go run ./bench --bin bin --only uplink                    # amd64
//	go run ./bench --bin bin --only uplink --uplink-backlog 0 \
//	    --uplink-edge bin/smoke/arm64/edge-agent --uplink-qemu qemu-aarch64-static
//
// scripts/edge-memory.sh runs both.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	uplinkEvents  = flag.Int("uplink-events", 50_000, "bench events sent by each edge for the wire figures")
	uplinkBacklog = flag.String("uplink-backlog", "1GiB", "event data in the backlog whose drain is measured (0: idle only; units KiB, MiB, GiB)")
	uplinkRest    = flag.Duration("uplink-rest", time.Minute, "how long the edge's memory is watched after the drain")
	uplinkEdge    = flag.String("uplink-edge", "", "edge-agent binary whose memory is measured (default: the one in --bin)")
	uplinkQEMU    = flag.String("uplink-qemu", "", "run that binary under this emulator (qemu-aarch64-static for an arm64 build)")
	uplinkEnv     = flag.String("uplink-env", "", "extra environment of the measured edge, comma-separated VAR=value (GOMEMLIMIT=…, GOGC=…)")
	uplinkArgs    = flag.String("uplink-args", "", "extra flags of the measured edge, space-separated (--memory-limit 0, …)")
)

// Targets of the edge's footprint, MiB (issue 17), and the peers' figures
// beside which they are set: a nats-server leaf node holds 17 MB and eKuiper
// 20 MB on a Raspberry Pi 3B+.
const (
	targetIdleMiB       = 12
	targetDrainMiB      = 32
	targetAfterDrainMiB = 16
	targetWireRatio     = 0.25
)

// uplinkResult holds the uplink's figures.
type uplinkResult struct {
	Events                       int
	JSONBytes                    float64 // the events' own JSON, per event
	WireZstd, WireNone, PeerWire float64 // bytes on the wire per event
	Edge                         string  // what was measured, for the report
	Idle                         memFigure
	IdleParts                    string // under an emulator: whose the resident set is
	Backlog                      int64  // event data bytes drained; 0: no drain measured
	BacklogEvents                int64
	Held                         memFigure // with the backlog ingested, before the drain
	Drain                        memFigure
	DrainTook                    time.Duration
	After                        memFigure     // at the end of the rest
	AfterWithin                  time.Duration // when RSS first fell to the target after the drain; -1: never
	Rest                         time.Duration
}

// memFigure is the resident set of the edge in one phase, MiB: the peak of
// VmRSS (or VmHWM, the kernel's own peak, where it applies), and the anonymous
// and file-backed parts of the last reading.
type memFigure struct {
	RSS, Anon, File float64
}

func (m memFigure) String() string {
	return fmt.Sprintf("%.1f MiB (anon %.1f, file %.1f)", m.RSS, m.Anon, m.File)
}

// uplinkFigures measures the uplink with the binaries in bin.
func uplinkFigures(bin string) (uplinkResult, error) {
	var r uplinkResult
	backlog, err := parseBytes(*uplinkBacklog)
	if err != nil {
		return r, fmt.Errorf("--uplink-backlog: %w", err)
	}
	dir, err := os.MkdirTemp("", "tributary-bench-uplink")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	hub, err := startUplinkHub(bin, filepath.Join(dir, "hub"))
	if err != nil {
		return r, err
	}
	defer func() { hub.proc.stop() }()

	if err := wireFigures(&r, bin, dir, hub); err != nil {
		return r, err
	}
	if err := memoryFigures(&r, bin, dir, hub, backlog); err != nil {
		return r, err
	}
	return r, nil
}

// uplinkHub is a running hub and its ports, which survive a restart.
type uplinkHub struct {
	proc           *proc
	bin, dir       string
	httpPort, nats int
}

func startUplinkHub(bin, dir string) (*uplinkHub, error) {
	h := &uplinkHub{bin: bin, dir: dir, httpPort: freePort(), nats: freePort()}
	return h, h.start()
}

func (h *uplinkHub) start() error {
	p, err := startProc(filepath.Join(h.bin, "hub"), "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "8GiB")
	if err != nil {
		return err
	}
	h.proc = p
	if err := waitHealthy(h.url()); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

func (h *uplinkHub) url() string     { return fmt.Sprintf("http://127.0.0.1:%d", h.httpPort) }
func (h *uplinkHub) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", h.nats) }

// benchEdge is a running edge agent.
type benchEdge struct {
	proc *proc
	url  string
}

// startBenchEdge starts an edge agent (under the emulator when qemu is set)
// and waits until it is connected to the hub.
func startBenchEdge(qemu, binary, node, dir, hubURL string, env []string, extra ...string) (*benchEdge, error) {
	port := freePort()
	args := append([]string{"--node", node, "--data", dir, "--hub", hubURL, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, extra...)
	path := binary
	if qemu != "" {
		path, args = qemu, append([]string{binary}, args...)
	}
	p, err := startProcEnv(env, path, args...)
	if err != nil {
		return nil, err
	}
	e := &benchEdge{proc: p, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := waitHealthy(e.url); err != nil {
		p.stop()
		return nil, fmt.Errorf("edge %s: %w", node, err)
	}
	if err := until(2*time.Minute, func() (bool, error) {
		st, err := e.status()
		return st.HubConnected, err
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("edge %s: connect to the hub: %w", node, err)
	}
	return e, nil
}

// startProcEnv is startProc with extra environment variables.
func startProcEnv(env []string, path string, args ...string) (*proc, error) {
	if len(env) == 0 {
		return startProc(path, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd}, nil
}

type edgeStatus struct {
	HubConnected  bool   `json:"hub_connected"`
	Buffered      int64  `json:"buffered"`
	BufferedBytes int64  `json:"buffered_bytes"`
	LastSeq       uint64 `json:"last_seq"`
	Sent          uint64 `json:"sent"`
	UplinkBytes   uint64 `json:"uplink_bytes"`
}

func (e *benchEdge) status() (edgeStatus, error) {
	var s edgeStatus
	err := getJSON(e.url+"/api/v1/status", &s)
	return s, err
}

func (e *benchEdge) post(body []byte) error {
	resp, err := http.Post(e.url+"/api/v1/events?stream=bench", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("ingest: %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// until polls cond every 100 ms until it holds, fails, or timeout passes.
func until(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wireFigures sends the bench's sensor events through an edge with zstd and
// one without, and reads what each wrote to its connection per event; the
// peer publishes the same events' JSON one NATS message each (JetStream async
// publish, as in the throughput figure) through a connection that counts its
// bytes the same way.
func wireFigures(r *uplinkResult, bin, dir string, hub *uplinkHub) error {
	n := *uplinkEvents
	if n <= 0 {
		return nil
	}
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	bodies := makeBodies(n, 2000, 42, start, n)
	var jsonBytes int
	for _, b := range bodies {
		jsonBytes += len(b) - bytes.Count(b, []byte{'\n'})
	}
	r.Events, r.JSONBytes = n, float64(jsonBytes)/float64(n)
	for _, c := range []struct {
		codec string
		out   *float64
	}{{"zstd", &r.WireZstd}, {"none", &r.WireNone}} {
		node := "wire-" + c.codec
		e, err := startBenchEdge("", filepath.Join(bin, "edge-agent"), node, filepath.Join(dir, node), hub.natsURL(), nil, "--compress", c.codec)
		if err != nil {
			return err
		}
		st0, err := e.status()
		if err != nil {
			e.proc.stop()
			return err
		}
		for _, b := range bodies {
			if err := e.post(b); err != nil {
				e.proc.stop()
				return err
			}
		}
		var st edgeStatus
		err = until(5*time.Minute, func() (bool, error) {
			var err error
			st, err = e.status()
			return st.Buffered == 0 && st.Sent >= uint64(n), err
		})
		e.proc.stop()
		if err != nil {
			return fmt.Errorf("%s edge: drain: %w", c.codec, err)
		}
		*c.out = float64(st.UplinkBytes-st0.UplinkBytes) / float64(n)
	}
	peer, err := peerWire(filepath.Join(dir, "peer"), bodies)
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	r.PeerWire = peer
	return nil
}

// peerWire publishes every event's JSON as its own JetStream message to a
// fresh embedded server configured like the hub's, on a subject as long as
// the edge's, and returns the bytes written to the connection per event.
func peerWire(dir string, bodies [][]byte) (float64, error) {
	s, err := startPeerServer(dir, -1, true)
	if err != nil {
		return 0, err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }()
	var written atomic.Int64
	nc, err := nats.Connect(s.ClientURL(), nats.SetCustomDialer(countingDialer{&written}))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PEER", Subjects: []string{"edge.>"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	// One publish first, so that the reply subscription is not counted.
	if _, err := js.Publish(ctx, "edge.warm.up", []byte("{}")); err != nil {
		return 0, err
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	before := written.Load()
	// A window of outstanding publishes, as in peerPublish; every ack is
	// checked.
	msgs := ndjsonLines(bodies)
	if err := publishWindow(js, "edge.bench.bench", msgs, 2000); err != nil {
		return 0, err
	}
	return float64(written.Load()-before) / float64(len(msgs)), nil
}

// countingDialer counts the bytes written to the connections it dials.
type countingDialer struct{ n *atomic.Int64 }

func (d countingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return countingConn{c, d.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// memoryFigures measures the edge agent's resident set: connected with an
// empty buffer; then, with the hub stopped, a backlog is ingested, the hub
// starts again and the drain and the rest after it are watched.
func memoryFigures(r *uplinkResult, bin, dir string, hub *uplinkHub, backlog int64) error {
	binary := *uplinkEdge
	if binary == "" {
		binary = filepath.Join(bin, "edge-agent")
	}
	r.Edge = binary
	if *uplinkQEMU != "" {
		r.Edge = *uplinkQEMU + " " + binary
	}
	var env []string
	if *uplinkEnv != "" {
		env = strings.Split(*uplinkEnv, ",")
		r.Edge += " with " + *uplinkEnv
	}
	args := append([]string{"--buffer-max-bytes", "8GiB"}, strings.Fields(*uplinkArgs)...)
	if *uplinkArgs != "" {
		r.Edge += " " + *uplinkArgs
	}
	e, err := startBenchEdge(*uplinkQEMU, binary, "mem", filepath.Join(dir, "mem"), hub.natsURL(), env, args...)
	if err != nil {
		return err
	}
	defer func() { e.proc.stop() }()
	pid := e.proc.cmd.Process.Pid

	// Idle: connected, nothing buffered; the peak over 20 s after 10 s.
	time.Sleep(10 * time.Second)
	r.Idle = watch(pid, 20*time.Second, 250*time.Millisecond, nil)
	if *uplinkQEMU != "" {
		r.IdleParts = qemuParts(pid, binary)
	}
	if backlog <= 0 {
		return nil
	}

	hub.proc.stop()
	if err := until(30*time.Second, func() (bool, error) {
		st, err := e.status()
		return !st.HubConnected, err
	}); err != nil {
		return fmt.Errorf("the edge did not see the hub stop: %w", err)
	}
	var st edgeStatus
	rng := rand.New(rand.NewSource(7))
	for id := 0; st.BufferedBytes < backlog; id += 1000 {
		if err := e.post(backlogBody(rng, id, 1000)); err != nil {
			return err
		}
		if st, err = e.status(); err != nil {
			return err
		}
	}
	r.Backlog, r.BacklogEvents = st.BufferedBytes, st.Buffered
	r.Held = watch(pid, 5*time.Second, 250*time.Millisecond, nil)

	// Drain: the kernel's peak is reset when the hub comes back.
	if err := hub.start(); err != nil {
		return err
	}
	resetPeak(pid)
	t0 := time.Now()
	drained := false
	r.Drain = watch(pid, 2*time.Hour, 250*time.Millisecond, func() bool {
		st, err := e.status()
		drained = err == nil && st.Buffered == 0
		return drained
	})
	r.DrainTook = time.Since(t0)
	if !drained {
		return errors.New("the backlog did not drain within 2 hours")
	}
	if _, hwm, _, _ := procStatus(pid); hwm > r.Drain.RSS {
		r.Drain.RSS = hwm
	}

	// After the drain: when the resident set falls to the target, and where
	// it is at the end of the rest.
	r.Rest, r.AfterWithin = *uplinkRest, -1
	t1 := time.Now()
	r.After = watch(pid, r.Rest, time.Second, func() bool {
		if rss, _, _, _ := procStatus(pid); r.AfterWithin < 0 && rss <= targetAfterDrainMiB {
			r.AfterWithin = time.Since(t1)
		}
		return false
	})
	rss, _, anon, file := procStatus(pid)
	r.After = memFigure{RSS: rss, Anon: anon, File: file}
	return nil
}

// backlogBody is an NDJSON body of n events of about 1 KiB: a few sensor
// fields and a pad of random hex, which zstd halves.
func backlogBody(rng *rand.Rand, first, n int) []byte {
	var b bytes.Buffer
	pad := make([]byte, 470)
	for i := 0; i < n; i++ {
		rng.Read(pad)
		fmt.Fprintf(&b, `{"id":%d,"sensor":"sensor-%03d","temp":%.1f,"pad":"%x"}`+"\n", first+i, (first+i)%500, 15+rng.Float64()*20, pad)
	}
	return b.Bytes()
}

// print writes the figures for people, beside the peers and the targets.
func (r uplinkResult) print(w io.Writer) {
	if r.Events > 0 {
		fmt.Fprintf(w, "\nuplink: %d bench events of %.1f bytes of JSON each\n", r.Events, r.JSONBytes)
		fmt.Fprintf(w, "  bytes on the wire per event: zstd %.1f, none %.1f; JSON with one NATS message per event %.1f\n", r.WireZstd, r.WireNone, r.PeerWire)
		fmt.Fprintf(w, "  ratio zstd / peer %.2f (target ≤ %.2f), none / peer %.2f\n", r.WireZstd/r.PeerWire, targetWireRatio, r.WireNone/r.PeerWire)
	}
	fmt.Fprintf(w, "edge memory (%s); peers on a Raspberry Pi 3B+: nats-server leaf node 17 MB, eKuiper 20 MB\n", r.Edge)
	fmt.Fprintf(w, "  idle, connected, empty buffer: %v (target ≤ %d MiB)\n", r.Idle, targetIdleMiB)
	if r.IdleParts != "" {
		fmt.Fprintf(w, "    of which %s\n", r.IdleParts)
	}
	if r.Backlog == 0 {
		return
	}
	fmt.Fprintf(w, "  holding the backlog, hub down, after its ingest: %v\n", r.Held)
	fmt.Fprintf(w, "  draining %d events, %.0f MiB of data, in %v (%.0f events/s): peak %v (target ≤ %d MiB)\n",
		r.BacklogEvents, float64(r.Backlog)/(1<<20), r.DrainTook.Round(time.Second), float64(r.BacklogEvents)/r.DrainTook.Seconds(), r.Drain, targetDrainMiB)
	within := "not within the rest"
	if r.AfterWithin >= 0 {
		within = fmt.Sprintf("%v after the drain", r.AfterWithin.Round(time.Second))
	}
	fmt.Fprintf(w, "  after the drain: ≤ %d MiB %s; %v after it: %v (target ≤ %d MiB within a minute)\n",
		targetAfterDrainMiB, within, r.Rest, r.After, targetAfterDrainMiB)
}

// addTo adds the figures to the bench's JSON line.
func (r uplinkResult) addTo(f *figures) {
	// The default codec's figure; none's beside it.
	if r.Events > 0 {
		f.add("wire_bytes_per_event", r.WireZstd)
		f.add("wire_bytes_per_event_none", r.WireNone)
		f.add("peer_wire_bytes_per_event", r.PeerWire)
	}
	f.add("edge_idle_rss_mib", r.Idle.RSS)
	if r.Backlog > 0 {
		f.add("edge_drain_rss_mib", r.Drain.RSS)
		f.add("edge_after_drain_rss_mib", r.After.RSS)
	}
}
