package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

func openIndex(t *testing.T) *Index {
	t.Helper()
	x := NewIndex(filepath.Join(t.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func eventsMsg(node, epoch, strm string, seqs ...uint64) Received {
	recs := make([]stream.Record, len(seqs))
	for i, s := range seqs {
		recs[i] = stream.Record{Seq: s, TS: int64(s) * 1e9, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, s))}
	}
	return Received{Frame: &stream.Frame{Kind: stream.KindEvents, Node: node, Epoch: epoch, Stream: strm, Events: recs}, At: 1}
}

func dropMsg(node string, d stream.Drop) Received {
	return Received{Frame: &stream.Frame{Kind: stream.KindDrops, Node: node, Epoch: d.Epoch, Drops: []stream.Drop{d}}, At: 1}
}

func nodeInfo(t *testing.T, x *Index, node string) NodeInfo {
	t.Helper()
	infos, err := x.NodeInfos(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, ni := range infos {
		if ni.Node == node {
			return ni
		}
	}
	t.Fatalf("node %s not listed in %+v", node, infos)
	return NodeInfo{}
}

func TestApplyIsIdempotent(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	m := eventsMsg("a", "e1", "s", 1, 2, 3)
	first, err := x.Apply(ctx, []Received{m})
	if err != nil {
		t.Fatal(err)
	}
	again, err := x.Apply(ctx, []Received{m, eventsMsg("a", "e1", "s", 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Inserted) != 3 || len(again.Inserted) != 1 || again.Duplicates != 4 {
		t.Fatalf("inserted %d then %d (dupes %d)", len(first.Inserted), len(again.Inserted), again.Duplicates)
	}
	ni := nodeInfo(t, x, "a")
	if ni.Events != 4 || ni.HighSeq != 4 || ni.Missing != 0 || ni.Epoch != "e1" {
		t.Fatalf("node info %+v", ni)
	}
}

func TestGapsAccountForEverySeq(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	// seqs 1-3 received, 4-6 dropped (buffer-full), 7 missing, 8-9 received on
	// another stream, 10-11 dropped by max-age but 11 arrived anyway.
	msgs := []Received{
		eventsMsg("a", "e1", "s", 1, 2, 3),
		dropMsg("a", stream.Drop{Epoch: "e1", FirstSeq: 4, LastSeq: 6, Count: 3, Reason: stream.ReasonBufferFull}),
		eventsMsg("a", "e1", "t", 8, 9),
		dropMsg("a", stream.Drop{Epoch: "e1", FirstSeq: 10, LastSeq: 11, Count: 2, Reason: stream.ReasonMaxAge}),
	}
	if _, err := x.Apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Apply(ctx, []Received{eventsMsg("a", "e1", "s", 11)}); err != nil {
		t.Fatal(err)
	}
	gaps, err := x.Gaps(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Gap{
		{Epoch: "e1", FirstSeq: 4, LastSeq: 6, Count: 3, Reason: stream.ReasonBufferFull},
		{Epoch: "e1", FirstSeq: 7, LastSeq: 7, Count: 1, Reason: stream.ReasonMissing},
		{Epoch: "e1", FirstSeq: 10, LastSeq: 11, Count: 1, Reason: stream.ReasonMaxAge},
	}
	if !reflect.DeepEqual(gaps, want) {
		t.Fatalf("gaps\n got %+v\nwant %+v", gaps, want)
	}
	ni := nodeInfo(t, x, "a")
	if ni.Events+ni.Dropped+ni.Missing != ni.HighSeq || ni.Dropped != 4 || ni.Missing != 1 {
		t.Fatalf("received %d + dropped %d + missing %d != high %d", ni.Events, ni.Dropped, ni.Missing, ni.HighSeq)
	}
	// The same drop report again changes nothing.
	if _, err := x.Apply(ctx, msgs[1:2]); err != nil {
		t.Fatal(err)
	}
	if again := nodeInfo(t, x, "a"); again.Dropped != 4 {
		t.Fatalf("repeated drop report counted twice: %+v", again)
	}
	if _, err := x.Gaps(ctx, "nobody"); err == nil {
		t.Fatal("gaps of an unknown node: no error")
	}
}

func TestBadFramesCountOnKnownNodesOnly(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	bad := func(node string) Received { return Received{Node: node, Bad: fmt.Errorf("garbage"), At: 1} }
	if _, err := x.Apply(ctx, []Received{bad("ghost"), eventsMsg("a", "e1", "s", 1), bad("a"), bad("a")}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := x.Nodes(ctx)
	if !reflect.DeepEqual(nodes, []string{"a"}) {
		t.Fatalf("nodes %v: a bad frame must not register a node", nodes)
	}
	if ni := nodeInfo(t, x, "a"); ni.BadFrames != 2 {
		t.Fatalf("bad frames %d, want 2", ni.BadFrames)
	}
}

func TestHeartbeatKeepsNewest(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	hb := func(at int64, buffered int64) Received {
		return Received{Frame: &stream.Frame{Kind: stream.KindHeartbeat, Node: "a", Epoch: "e1", Heartbeat: &stream.Heartbeat{Buffered: buffered}}, At: at}
	}
	now := time.Now().UnixNano()
	if _, err := x.Apply(ctx, []Received{hb(now, 7), hb(now-int64(time.Minute), 99)}); err != nil {
		t.Fatal(err)
	}
	ni := nodeInfo(t, x, "a")
	if ni.Buffered != 7 || !ni.Online {
		t.Fatalf("node info %+v: want the newest heartbeat (buffered 7) and online", ni)
	}
	infos, _ := x.NodeInfos(ctx, time.Now().Add(time.Minute))
	if infos[0].Online {
		t.Fatal("online a minute after the last heartbeat")
	}
}

// BenchmarkApply measures the index's write path: one transaction per 10 frames
// of 1,000 events of about 180 bytes, as the materializer applies them.
func BenchmarkApply(b *testing.B) {
	x := NewIndex(filepath.Join(b.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	data := json.RawMessage(`{"sensor":"sensor-001","site":"north","temp":21.52,"humidity":50.5,"gps":{"lat":50.1,"lon":4.2},"status":"ok","battery":0.87,"fw":"1.4.2-rc1"}`)
	seq := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs := make([]Received, 10)
		for m := range msgs {
			recs := make([]stream.Record, 1000)
			for r := range recs {
				recs[r] = stream.Record{Seq: seq, TS: int64(seq) * 1e6, Data: data}
				seq++
			}
			msgs[m] = Received{Frame: &stream.Frame{Kind: stream.KindEvents, Node: "n", Epoch: "e", Stream: "s", Events: recs}, At: 1}
		}
		if _, err := x.Apply(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "events/s")
}
