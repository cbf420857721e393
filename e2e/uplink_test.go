package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

// TestHubReadsV1BatchesFromAnOldEdge plays an edge from before wire format
// v2: it publishes version 1 frames (stream.EncodeEvents and
// stream.EncodeControl, as such edges did) straight to a running hub's NATS,
// with their message IDs, and checks that the hub answers queries with those
// events exactly, reports the drop, and takes the heartbeat, while an edge of
// this build (v2, zstd) goes on beside it.
func TestHubReadsV1BatchesFromAnOldEdge(t *testing.T) {
	h := startHub(t, t.TempDir())
	nc, err := nats.Connect(h.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const node, epoch = "old-edge", "0123456789abcdef"
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var want []stream.Event
	publish := func(subject, msgID string, frame []byte) {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Data = frame
		if msgID != "" {
			msg.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish on %s: %v", subject, err)
		}
	}
	// Seqs 1-40 on "a", 41-50 dropped by the old edge, 51-80 on "b", in
	// batches of 10 as an old forwarder would cut them.
	for first := uint64(1); first <= 80; first += 10 {
		if first >= 41 && first <= 50 {
			continue
		}
		name := "a"
		if first > 50 {
			name = "b"
		}
		var recs []stream.Record
		for seq := first; seq < first+10; seq++ {
			ts := base.Add(time.Duration(seq) * time.Second).UnixNano()
			data := fmt.Sprintf(`{"seq":%d,"temp":%d.5,"site":"n\u00f8rth","tags":["x","y"],"nested":{"k":%d}}`, seq, seq%30, seq*3)
			recs = append(recs, stream.Record{Seq: seq, TS: ts, Data: json.RawMessage(data)})
			want = append(want, stream.Event{Node: node, Epoch: epoch, Seq: seq, Stream: name, TS: ts, Data: json.RawMessage(data)})
		}
		frame, err := stream.EncodeEvents(nil, node, epoch, name, recs)
		if err != nil {
			t.Fatal(err)
		}
		if frame[0] != stream.Version1 {
			t.Fatalf("EncodeEvents wrote version %d", frame[0])
		}
		id := stream.MsgID(node, epoch, name, first, first+9)
		publish(stream.Subject(node, name), id, frame)
		// An old edge re-sent a batch after a lost ack: same message ID.
		if first == 21 {
			publish(stream.Subject(node, name), id, frame)
		}
	}
	drops, _ := stream.EncodeControl(stream.KindDrops, node, epoch,
		[]stream.Drop{{Epoch: epoch, FirstSeq: 41, LastSeq: 50, Count: 10, Reason: stream.ReasonBufferFull}})
	publish(stream.Subject(node, stream.DropsStream), stream.MsgID(node, epoch, stream.DropsStream, 1, 1), drops)
	hb, _ := stream.EncodeControl(stream.KindHeartbeat, node, epoch,
		stream.Heartbeat{Buffered: 7, LastSeq: 80, AckedSeq: 80, Sent: 70, Time: time.Now().UnixNano()})
	publish(stream.Subject(node, stream.HeartbeatStream), "", hb)

	// A current edge beside it.
	e := startEdge(t, "new-edge", t.TempDir(), h.natsURL())
	if r, ok := e.ingest("a", []map[string]any{{"v": 1}, {"v": 2}}); !ok || r.Accepted != 2 {
		t.Fatalf("ingest into the new edge: %+v", r)
	}

	waitFor(t, "the old edge's events to be indexed", 60*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "single(old-edge)"}) == int64(len(want)) &&
			h.count(t, map[string]string{"pattern": "single(new-edge)"}) == 2
	})
	got := h.all(t, map[string]string{"pattern": "single(old-edge)"})
	if len(got) != len(want) {
		t.Fatalf("%d events of the old edge, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Node != w.Node || g.Epoch != w.Epoch || g.Seq != w.Seq || g.Stream != w.Stream || g.TS != w.TS || !jsonEqual(t, g.Data, w.Data) {
			t.Fatalf("event %d: got %+v (data %s), want %+v (data %s)", i, g, g.Data, w, w.Data)
		}
	}
	if n := h.count(t, map[string]string{"pattern": "single(old-edge)", "where": `site == "nørth" && nested.k > 200`}); n != 80-66 {
		t.Fatalf("a predicate over v1 data matched %d events, want %d", n, 80-66)
	}

	var nodes struct {
		Nodes []struct {
			Node     string `json:"node"`
			Events   int64  `json:"events"`
			Buffered int64  `json:"buffered"`
			Dropped  int64  `json:"dropped"`
			Missing  int64  `json:"missing"`
			HighSeq  int64  `json:"high_seq"`
		} `json:"nodes"`
	}
	waitFor(t, "the old edge's drop report and heartbeat", 30*time.Second, func() bool {
		getJSON(t, h.url()+"/api/v1/nodes?prefix=old-edge", &nodes)
		return len(nodes.Nodes) == 1 && nodes.Nodes[0].Dropped == 10 && nodes.Nodes[0].Buffered == 7
	})
	if n := nodes.Nodes[0]; n.Events != 70 || n.Missing != 0 || n.HighSeq != 80 {
		t.Fatalf("the old edge's record: %+v, want 70 events, 10 dropped, none missing, high seq 80", n)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// uplinkStatus is the part of the edge's status about its uplink.
type uplinkStatus struct {
	Buffered    int64  `json:"buffered"`
	LastSeq     uint64 `json:"last_seq"`
	Sent        uint64 `json:"sent"`
	UplinkBytes uint64 `json:"uplink_bytes"`
}

func (e *edgeProc) uplink(t testing.TB) uplinkStatus {
	t.Helper()
	var s uplinkStatus
	getJSON(t, e.url()+"/api/v1/status", &s)
	return s
}

// metric returns the value of an unlabelled metric on the edge's /metrics.
func (e *edgeProc) metric(t testing.TB, name string) float64 {
	t.Helper()
	code, body := httpGet(t, e.url()+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// TestCompressedEdgeEventsEqualIngested ingests the same varied events into
// an edge that compresses (the default, zstd) and one that does not: the
// hub holds zstd frames from the first, and answers queries for both with
// exactly the events ingested; the compressed uplink carried far fewer bytes,
// and its figures in the status, /metrics and the hub's node list agree.
func TestCompressedEdgeEventsEqualIngested(t *testing.T) {
	h := startHub(t, t.TempDir())
	zst := startEdge(t, "zstd-edge", t.TempDir(), h.natsURL())
	raw := startEdge(t, "plain-edge", t.TempDir(), h.natsURL(), "--compress", "none")

	rng := rand.New(rand.NewSource(17))
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var events []map[string]any
	for i := 0; i < 3000; i++ {
		ev := map[string]any{
			"ts":       base.Add(time.Duration(i) * 250 * time.Millisecond).UnixMilli(),
			"sensor":   fmt.Sprintf("sensor-%03d", i%50),
			"temp":     15 + float64(rng.Intn(2000))/100,
			"humidity": rng.Intn(100),
			"ok":       i%7 != 0,
			"note":     []string{"", "ünïcødé ✓", `quote " and \ backslash`, strings.Repeat("z", 300)}[i%4],
			"gps":      map[string]any{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()},
		}
		if i%11 == 0 {
			ev["big"] = 9007199254740993 // over 2^53: must survive as written
		}
		events = append(events, ev)
	}
	for _, e := range []*edgeProc{zst, raw} {
		for k := 0; k < len(events); k += 500 {
			if r, ok := e.ingest("mix", events[k:k+500]); !ok || r.Accepted != 500 {
				t.Fatalf("ingest into %s: %+v", e.node, r)
			}
		}
	}
	for _, e := range []*edgeProc{zst, raw} {
		waitFor(t, e.node+" to deliver every event", 60*time.Second, func() bool {
			return h.count(t, map[string]string{"pattern": "single(" + e.node + ")"}) == int64(len(events))
		})
		got := h.all(t, map[string]string{"pattern": "single(" + e.node + ")"})
		epoch := e.status(t).Epoch
		for i, g := range got {
			want, _ := json.Marshal(events[i])
			if g.Seq != uint64(i+1) || g.Epoch != epoch || g.Stream != "mix" || g.TS != base.Add(time.Duration(i)*250*time.Millisecond).UnixNano() {
				t.Fatalf("%s event %d: %+v", e.node, i, g)
			}
			if !jsonEqual(t, g.Data, want) || !bytes.Contains(g.Data, []byte("9007199254740993")) == (i%11 == 0) {
				t.Fatalf("%s event %d: data %s, ingested %s", e.node, i, g.Data, want)
			}
		}
	}

	// What the hub's stream holds: zstd frames from one, codec none from the other.
	for _, c := range []struct {
		e     *edgeProc
		codec stream.Codec
	}{{zst, stream.CodecZstd}, {raw, stream.CodecNone}} {
		r := natstest.ReadEdge(t, h.natsURL(), c.e.node)
		frames := 0
		for _, f := range r.Frames {
			if f.Kind != stream.KindEvents {
				continue
			}
			frames++
			if f.Version != stream.Version2 || f.Codec != c.codec {
				t.Fatalf("%s sent a v%d %v frame, want v2 %v", c.e.node, f.Version, f.Codec, c.codec)
			}
		}
		if frames == 0 || len(r.Events) != len(events) {
			t.Fatalf("%s: %d frames holding %d events in the hub's stream", c.e.node, frames, len(r.Events))
		}
	}

	// The uplink's figures: status and /metrics agree, zstd carried well under
	// half the bytes, and the hub shows each node's bytes per event.
	var perEvent = map[string]float64{}
	for _, e := range []*edgeProc{zst, raw} {
		st := e.uplink(t)
		if b := e.metric(t, "tributary_edge_uplink_bytes_total"); b < float64(st.UplinkBytes) {
			t.Fatalf("%s: /metrics says %v uplink bytes, after the status said %d", e.node, b, st.UplinkBytes)
		}
		if n := e.metric(t, "tributary_edge_uplink_events_total"); n != float64(len(events)) {
			t.Fatalf("%s: %v uplink events, want %d", e.node, n, len(events))
		}
		perEvent[e.node] = float64(st.UplinkBytes) / float64(len(events))
	}
	if perEvent["zstd-edge"] > 0.5*perEvent["plain-edge"] || perEvent["plain-edge"] < 100 {
		t.Fatalf("uplink bytes per event: zstd %.1f, none %.1f; want zstd under half", perEvent["zstd-edge"], perEvent["plain-edge"])
	}
	waitFor(t, "the hub to show each node's uplink bytes per event", 30*time.Second, func() bool {
		var nodes struct {
			Nodes []struct {
				Node     string   `json:"node"`
				PerEvent *float64 `json:"uplink_bytes_per_event"`
			} `json:"nodes"`
		}
		getJSON(t, h.url()+"/api/v1/nodes", &nodes)
		ok := 0
		for _, n := range nodes.Nodes {
			// A heartbeat after the last batch reports at least the bytes so far.
			if n.PerEvent != nil && *n.PerEvent >= perEvent[n.Node]-0.05 && *n.PerEvent < perEvent[n.Node]*1.2 {
				ok++
			}
		}
		return ok == 2
	})
	t.Logf("uplink bytes per event: zstd %.1f, none %.1f", perEvent["zstd-edge"], perEvent["plain-edge"])
}

// byteProxy forwards TCP connections to a target and counts the bytes that
// go from its clients to the target.
type byteProxy struct {
	ln     net.Listener
	target string
	up     atomic.Int64
	wg     sync.WaitGroup
}

func startByteProxy(t testing.TB, target string) *byteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &byteProxy{ln: ln, target: target}
	var conns sync.Map
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, s)
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				io.Copy(countingWriter{s, &p.up}, c)
				s.Close()
			}()
			go func() {
				defer p.wg.Done()
				io.Copy(c, s)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(c, s any) bool {
			c.(net.Conn).Close()
			s.(net.Conn).Close()
			return true
		})
		p.wg.Wait()
	})
	return p
}

func (p *byteProxy) url() string { return "nats://" + p.ln.Addr().String() }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// TestCappedEdgeKeepsToItsRate runs an edge with --uplink-max-rate behind a
// proxy that counts the bytes it sends to the hub, while a client ingests at
// 24 times the cap. Over 15 seconds of a full backlog the edge sends
// within 25 % of the cap, no 5-second window goes over it by more than 25 %,
// the edge's own uplink_bytes agrees with the proxy, and ingest kept up with
// what the client offered: the cap slows the uplink, never the ingest.
func TestCappedEdgeKeepsToItsRate(t *testing.T) {
	const capRate = 32 << 10
	h := startHub(t, t.TempDir())
	px := startByteProxy(t, fmt.Sprintf("127.0.0.1:%d", h.nats))
	e := startEdge(t, "capped", t.TempDir(), px.url(), "--uplink-max-rate", "32KiB")
	waitFor(t, "the edge to connect", 30*time.Second, func() bool { return e.status(t).HubConnected })

	// Ingest: bodies of 48 events of about 1 KB that zstd halves at best, 16
	// a second (768 KB/s offered), each answered before the next.
	const bodyEvents, perSecond = 48, 16
	rng := rand.New(rand.NewSource(3))
	body := func(first int) []byte {
		var b bytes.Buffer
		pad := make([]byte, 480)
		for i := 0; i < bodyEvents; i++ {
			rng.Read(pad)
			fmt.Fprintf(&b, `{"i":%d,"pad":"%x"}`+"\n", first+i, pad)
		}
		return b.Bytes()
	}
	type ingestStat struct {
		offered, accepted int
		failed            error
	}
	var ist ingestStat
	var imu sync.Mutex
	stop := make(chan struct{})
	ingestDone := make(chan struct{})
	go func() {
		defer close(ingestDone)
		tick := time.NewTicker(time.Second / perSecond)
		defer tick.Stop()
		for n := 0; ; n += bodyEvents {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			imu.Lock()
			ist.offered += bodyEvents
			imu.Unlock()
			code, reply, err := limTryPost(e, "s", body(n))
			imu.Lock()
			if err != nil || code != http.StatusAccepted {
				ist.failed = fmt.Errorf("ingest: %d %s %v", code, reply, err)
				imu.Unlock()
				return
			}
			ist.accepted += bodyEvents
			imu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-ingestDone
	}()

	// Let the backlog build, then watch the proxy for 15 s.
	waitFor(t, "a backlog", 30*time.Second, func() bool { return e.uplink(t).Buffered > 2000 })
	type sample struct {
		at time.Time
		up int64
	}
	var series []sample
	imu.Lock()
	accepted0, offered0 := ist.accepted, ist.offered
	imu.Unlock()
	tick := time.NewTicker(100 * time.Millisecond)
	start := time.Now()
	series = append(series, sample{start, px.up.Load()})
	for time.Since(start) < 15*time.Second {
		<-tick.C
		series = append(series, sample{time.Now(), px.up.Load()})
	}
	tick.Stop()
	close(stop)
	<-ingestDone
	imu.Lock()
	accepted, offered, failed := ist.accepted-accepted0, ist.offered-offered0, ist.failed
	imu.Unlock()
	if failed != nil {
		t.Fatal(failed)
	}

	last := series[len(series)-1]
	secs := last.at.Sub(start).Seconds()
	rate := float64(last.up-series[0].up) / secs
	t.Logf("uplink over %.1f s: %.0f bytes/s against a cap of %d (%.2f×)", secs, rate, capRate, rate/capRate)
	if rate < 0.75*capRate || rate > 1.25*capRate {
		t.Fatalf("the capped edge sent %.0f bytes/s over %.1f s; want within 25 %% of %d", rate, secs, capRate)
	}
	// Every 5-second window of the series.
	worst := 0.0
	for i, s := range series {
		for j := i + 1; j < len(series); j++ {
			if d := series[j].at.Sub(s.at); d >= 5*time.Second {
				worst = max(worst, float64(series[j].up-s.up)/d.Seconds())
				break
			}
		}
	}
	if worst > 1.25*capRate {
		t.Fatalf("a 5-second window carried %.0f bytes/s; want at most 25 %% over the cap of %d", worst, capRate)
	}
	// The edge counts what reached the socket: at least what the proxy saw,
	// and no more than what can be on its way.
	st := e.uplink(t)
	if seen := px.up.Load(); int64(st.UplinkBytes) < seen || int64(st.UplinkBytes) > seen+2*capRate {
		t.Fatalf("the edge says it sent %d bytes, the proxy saw %d", st.UplinkBytes, seen)
	}
	// Ingest: the client offered up to 16 bodies a second, 24 times the cap
	// in bytes (fewer where the machine is slow: a ticker drops the ticks a
	// slow post misses), and the edge took them while the uplink crawled.
	sent := float64(last.up - series[0].up)
	ingested := float64(accepted) * 980
	t.Logf("ingest: %d events offered, %d accepted in the window (%.0f bytes/s of data, %.1f× the uplink)", offered, accepted, ingested/secs, ingested/sent)
	if accepted < offered-bodyEvents || ingested < 8*sent {
		t.Fatalf("ingest was slowed: %d of %d offered events accepted in %.1f s, %.0f bytes of data against %.0f sent", accepted, offered, secs, ingested, sent)
	}
	if b := e.uplink(t).Buffered; b < int64(accepted)/2 {
		t.Fatalf("buffered %d after %d events were accepted: the backlog should hold most of them", b, accepted)
	}
}
