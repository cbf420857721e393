package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

func openHub(t *testing.T, dir string) *Hub {
	t.Helper()
	h := New()
	h.DataDir, h.NATSAddr, h.MaxStore = dir, "127.0.0.1:0", 1<<30
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publishEvents(t *testing.T, js jetstream.JetStream, node, epoch string, first, n int) {
	t.Helper()
	recs := make([]stream.Record, n)
	for i := range recs {
		recs[i] = stream.Record{Seq: uint64(first + i), TS: int64(first+i) * 1e6, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, first+i))}
	}
	b, err := stream.EncodeEvents(nil, node, epoch, "s", recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), stream.Subject(node, "s"), b); err != nil {
		t.Fatal(err)
	}
}

func nodeEvents(t *testing.T, h *Hub, node string) NodeInfo {
	t.Helper()
	page, err := h.Nodes(context.Background(), NodeQuery{Prefix: node})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range page.Nodes {
		if n.Node == node {
			return n
		}
	}
	return NodeInfo{}
}

// TestGarbageIsRejectedWhileGoodTrafficFlows publishes garbage, truncated,
// unknown-version and mislabelled messages straight onto edge subjects with a
// plain NATS client, between good batches: every good event is indexed exactly
// once, every bad message is counted once and never redelivered.
func TestGarbageIsRejectedWhileGoodTrafficFlows(t *testing.T) {
	h := openHub(t, t.TempDir())
	defer h.Close()
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	good, _ := stream.EncodeEvents(nil, "g1", "ep", "s", []stream.Record{{Seq: 1000, Data: json.RawMessage(`{}`)}})
	garbage := [][]byte{
		[]byte("hello"),
		{},
		good[:len(good)-3],             // truncated
		append([]byte{9}, good[1:]...), // unknown version
		func() []byte {
			b, _ := stream.EncodeEvents(nil, "other", "ep", "s", []stream.Record{{Seq: 1, Data: json.RawMessage(`{}`)}})
			return b
		}(), // node mismatch
	}
	const batches, per = 20, 50
	for i := 0; i < batches; i++ {
		publishEvents(t, js, "g1", "ep", i*per+1, per)
		if i%4 == 0 {
			for _, g := range garbage {
				if _, err := js.Publish(context.Background(), "edge.g1.x", g); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The same batches again: redelivered or re-sent, they must not duplicate.
	publishEvents(t, js, "g1", "ep", 1, per)
	wantBad := int64(5 * len(garbage))
	waitUntil(t, "all messages materialized", func() bool {
		return h.mat.Stats().BadFrames == wantBad && nodeEvents(t, h, "g1").Events == batches*per
	})
	ctx := context.Background()
	waitUntil(t, "consumer to have nothing pending", func() bool {
		p, err := h.mat.Pending(ctx)
		return err == nil && p == 0
	})
	ni := nodeEvents(t, h, "g1")
	if ni.Events != batches*per || ni.Missing != 0 || ni.HighSeq != batches*per {
		t.Fatalf("node record %+v", ni)
	}
	if ni.BadFrames < wantBad-int64(len(garbage)) {
		// the first garbage round may come before the node is known
		t.Fatalf("node bad_frames %d, want at least %d", ni.BadFrames, wantBad-int64(len(garbage)))
	}
	if got := h.mat.Stats().BadFrames; got != wantBad {
		t.Fatalf("bad frames %d, want %d: a rejected message was redelivered", got, wantBad)
	}
	q, err := pattern.Prepare(pattern.Request{Pattern: "single(g1)", Count: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count == nil || *res.Count != batches*per {
		t.Fatalf("query count %v, want %d", res.Count, batches*per)
	}
}

// TestIndexIsRebuiltFromJetStream deletes the index between runs: the hub
// replays the stream and answers as before.
func TestIndexIsRebuiltFromJetStream(t *testing.T) {
	dir := t.TempDir()
	h := openHub(t, dir)
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for i := 0; i < 10; i++ {
		publishEvents(t, js, "r1", "ep", i*100+1, 100)
	}
	waitUntil(t, "events indexed", func() bool { return nodeEvents(t, h, "r1").Events == 1000 })
	nc.Close()
	h.Close()
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	h = openHub(t, dir)
	defer h.Close()
	waitUntil(t, "index rebuilt", func() bool { return nodeEvents(t, h, "r1").Events == 1000 })
	if ni := nodeEvents(t, h, "r1"); ni.HighSeq != 1000 || ni.Missing != 0 {
		t.Fatalf("after rebuild: %+v", ni)
	}
}

// TestLiveSubscribersSeeNewEventsAndSlowOnesAreCut checks the live fan-out.
func TestLiveSubscribersSeeNewEventsAndSlowOnesAreCut(t *testing.T) {
	h := openHub(t, t.TempDir())
	defer h.Close()
	h.live.Buffer = 10
	nc, _ := nats.Connect(h.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	q, err := pattern.Prepare(pattern.Request{Pattern: "all", Where: "i % 2 == 0"})
	if err != nil {
		t.Fatal(err)
	}
	fast := h.Subscribe(q)
	slow := h.Subscribe(q)
	defer fast.Close()
	publishEvents(t, js, "l1", "ep", 1, 10)
	for want := 2; want <= 10; want += 2 {
		select {
		case ev := <-fast.C:
			if ev.Seq != uint64(want) {
				t.Fatalf("live event seq %d, want %d", ev.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no live event %d", want)
		}
	}
	// slow never reads: 5 buffered, then 20 more matches overflow its buffer of 10.
	publishEvents(t, js, "l1", "ep", 11, 40)
	waitUntil(t, "slow subscriber to be cut", func() bool { return slow.Err() != nil })
	if err := slow.Err(); err != ErrSlowSubscriber {
		t.Fatalf("slow subscriber ended with %v", err)
	}
}

// TestExternalNATS runs the hub against an existing JetStream deployment
// (--nats-url) instead of its embedded server.
func TestExternalNATS(t *testing.T) {
	ns := natstest.Start(t, "")
	h := New()
	h.DataDir, h.NATSURL = t.TempDir(), ns.ClientURL()
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.nats != nil {
		t.Fatal("the embedded server started although NATSURL was set")
	}
	if h.ClientURL() != ns.ClientURL() {
		t.Fatalf("ClientURL %s, want the external %s", h.ClientURL(), ns.ClientURL())
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publishEvents(t, js, "x1", "ep", 1, 25)
	waitUntil(t, "events from the external server", func() bool { return nodeEvents(t, h, "x1").Events == 25 })
}
