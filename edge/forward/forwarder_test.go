package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/proctest"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/edge/buffer"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

func openTestBuffer(t testing.TB, dir string) *buffer.Buffer {
	t.Helper()
	b := buffer.New(filepath.Join(dir, "buffer.db"))
	if err := b.Open(context.Background()); err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// appendEvents appends n events {"i": from+k} to name in chunks of chunk.
func appendEvents(t testing.TB, b *buffer.Buffer, name string, from, n, chunk int) {
	t.Helper()
	for k := 0; k < n; k += chunk {
		var in []edge.Input
		for i := k; i < min(n, k+chunk); i++ {
			in = append(in, edge.Input{TS: int64(from+i) * 1000, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, from+i))})
		}
		if _, _, err := b.Append(context.Background(), name, in); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

// testForwarder returns an open forwarder with quick timings, closed at the end
// of the test.
func testForwarder(t testing.TB, b *buffer.Buffer, url, node string, tune func(*Forwarder)) *Forwarder {
	t.Helper()
	f := NewForwarder(b, url, node)
	f.FlushInterval = 5 * time.Millisecond
	f.BackoffMin, f.BackoffMax = 10*time.Millisecond, 200*time.Millisecond
	f.AckTimeout = 5 * time.Second
	if tune != nil {
		tune(f)
	}
	if err := f.Open(context.Background()); err != nil {
		t.Fatalf("open forwarder: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// checkAll asserts that seqs 1..n arrived, each with its data, and at most
// maxCopies times.
func checkAll(t testing.TB, r *natstest.EdgeMessages, n int, maxCopies int) {
	t.Helper()
	lost, dup := 0, 0
	for seq := uint64(1); seq <= uint64(n); seq++ {
		c := r.Events[seq]
		if c == 0 {
			lost++
			continue
		}
		if c > maxCopies {
			dup++
		}
		if want := fmt.Sprintf(`{"i":%d}`, seq-1); r.Data[seq] != want {
			t.Fatalf("seq %d has data %s, want %s", seq, r.Data[seq], want)
		}
	}
	if lost > 0 || dup > 0 || len(r.Events) != n {
		t.Fatalf("of %d events: %d lost, %d more than %d times, %d distinct seqs received", n, lost, dup, maxCopies, len(r.Events))
	}
}

func TestForwarderDeliversEveryEventOnce(t *testing.T) {
	srv := natstest.Start(t, "")
	b := openTestBuffer(t, t.TempDir())
	// Two streams interleaved, so that reads hold both.
	for k := 0; k < 2500; k += 50 {
		name := []string{"alpha", "beta"}[(k/50)%2]
		appendEvents(t, b, name, k, 50, 50)
	}
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(f *Forwarder) {
		f.MaxEvents, f.Inflight = 300, 3
		f.HeartbeatInterval = time.Hour // new events must come by Notify
	})
	proctest.WaitFor(t, "the buffer to drain", 30*time.Second, func() bool { return b.Stats().Buffered == 0 })

	r := natstest.ReadEdge(t, srv.ClientURL(), "n1")
	checkAll(t, r, 2500, 1)
	for seq, name := range r.Streams {
		if want := []string{"alpha", "beta"}[((seq-1)/50)%2]; name != want {
			t.Fatalf("seq %d arrived on stream %s, want %s", seq, name, want)
		}
	}
	epoch := b.Epoch()
	i := 0
	for _, fr := range r.Frames {
		if fr.Kind != stream.KindEvents {
			continue
		}
		if fr.Epoch != epoch {
			t.Fatalf("frame epoch %q, want %q", fr.Epoch, epoch)
		}
		if fr.Version != stream.Version2 || fr.Codec != stream.CodecZstd {
			t.Fatalf("frame of version %d, codec %v: the default is version 2 with zstd", fr.Version, fr.Codec)
		}
		if len(fr.Events) > 300 {
			t.Fatalf("batch of %d events, over MaxEvents", len(fr.Events))
		}
		first, last := fr.Events[0].Seq, fr.Events[len(fr.Events)-1].Seq
		if want := stream.MsgID("n1", epoch, fr.Stream, first, last); r.MsgIDs[i] != want {
			t.Fatalf("Nats-Msg-Id %q, want %q", r.MsgIDs[i], want)
		}
		for _, rec := range fr.Events {
			if rec.Ingest <= 0 || rec.Ingest > time.Now().UnixNano() {
				t.Fatalf("seq %d carries ingest time %d", rec.Seq, rec.Ingest)
			}
			if rec.TS != int64(rec.Seq-1)*1000 {
				t.Fatalf("seq %d has ts %d", rec.Seq, rec.TS)
			}
		}
		i++
	}
	st := f.Stats()
	if st.Sent != 2500 || !st.Connected || b.Stats().AckedSeq != 2500 {
		t.Fatalf("stats after draining: forwarder %+v, buffer %+v", st, b.Stats())
	}

	// With no heartbeat tick to fall back on, Notify alone must wake it.
	appendEvents(t, b, "alpha", 2500, 10, 10)
	f.Notify()
	proctest.WaitFor(t, "notified events to be sent", 10*time.Second, func() bool { return b.Stats().Buffered == 0 })
	checkAll(t, natstest.ReadEdge(t, srv.ClientURL(), "n1"), 2510, 1)
}

func TestForwarderResumesAfterRestart(t *testing.T) {
	srv := natstest.Start(t, "")
	dir := t.TempDir()
	b := buffer.New(filepath.Join(dir, "buffer.db"))
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	appendEvents(t, b, "s", 0, n, 1000)
	f := NewForwarder(b, srv.ClientURL(), "n1")
	f.MaxEvents, f.Inflight = 10, 1
	if err := f.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	proctest.WaitFor(t, "some events to be sent", 30*time.Second, func() bool { return f.Stats().Sent >= 1000 })
	f.Close()
	b.Close()
	sent := f.Stats().Sent

	// A new process: the buffer file is all there is.
	b2 := openTestBuffer(t, dir)
	if got := b2.Stats().Buffered; got != int64(n)-int64(sent) {
		t.Fatalf("after restart %d buffered; %d were sent of %d", got, sent, n)
	}
	if sent == n {
		t.Fatal("the first forwarder sent everything; nothing left to resume")
	}
	testForwarder(t, b2, srv.ClientURL(), "n1", nil)
	proctest.WaitFor(t, "the rest to be sent", 60*time.Second, func() bool { return b2.Stats().Buffered == 0 })
	// Close waited for the acks in flight and batches are cut the same way
	// again, so even the Nats-Msg-Id deduplication has nothing to catch.
	checkAll(t, natstest.ReadEdge(t, srv.ClientURL(), "n1"), n, 1)
}

func TestForwarderSurvivesHubRestart(t *testing.T) {
	storeDir := t.TempDir()
	srv := natstest.StartOn(t, storeDir, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	b := openTestBuffer(t, t.TempDir())
	const n = 20000
	appendEvents(t, b, "s", 0, n, 1000)
	f := testForwarder(t, b, url, "n1", func(f *Forwarder) { f.MaxEvents, f.Inflight = 10, 2 })
	proctest.WaitFor(t, "some events to be sent", 30*time.Second, func() bool { return f.Stats().Sent >= 1000 })

	srv.Shutdown()
	srv.WaitForShutdown()
	proctest.WaitFor(t, "the forwarder to see the hub gone", 10*time.Second, func() bool {
		st := f.Stats()
		return !st.Connected && st.Inflight == 0
	})
	appendEvents(t, b, "s", n, 100, 100)
	rows, err := b.Read(context.Background(), 0, 1<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[uint64]bool{}
	for _, r := range rows {
		kept[r.Seq] = true
	}
	if len(kept) == 0 || len(kept) == n+100 {
		t.Fatalf("%d of %d events buffered when the hub went down; want some sent and some not", len(kept), n+100)
	}

	// Look at the hub's store on another port, where the forwarder cannot reach
	// it: every deleted row must already be there.
	peek := natstest.StartOn(t, storeDir, -1)
	r := natstest.ReadEdge(t, peek.ClientURL(), "n1")
	for seq := uint64(1); seq <= n; seq++ {
		if !kept[seq] && r.Events[seq] == 0 {
			t.Fatalf("seq %d was deleted from the buffer but is not in JetStream", seq)
		}
	}
	peek.Shutdown()
	peek.WaitForShutdown()

	srv2 := natstest.StartOn(t, storeDir, port)
	proctest.WaitFor(t, "the forwarder to drain after the hub returned", 60*time.Second, func() bool { return b.Stats().Buffered == 0 })
	r = natstest.ReadEdge(t, srv2.ClientURL(), "n1")
	// A batch stored just before the shutdown whose ack was lost may be stored
	// again under another message ID; the hub's index removes such repeats.
	checkAll(t, r, n+100, 2)
	if f.Stats().Reconnects == 0 || f.Stats().PublishErrors == 0 {
		t.Fatalf("stats do not show the outage: %+v", f.Stats())
	}
}

func TestForwarderWaitsForUnreachableHub(t *testing.T) {
	// Take a port and leave nothing listening on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := openTestBuffer(t, t.TempDir())
	appendEvents(t, b, "s", 0, 100, 100)
	f := testForwarder(t, b, fmt.Sprintf("nats://127.0.0.1:%d, nats://127.0.0.1:%d", port, port), "n1", nil)
	if f.Connected() {
		t.Fatal("connected to nothing")
	}
	srv := natstest.StartOn(t, t.TempDir(), port)
	proctest.WaitFor(t, "events to be sent once the hub is up", 30*time.Second, func() bool { return b.Stats().Buffered == 0 })
	checkAll(t, natstest.ReadEdge(t, srv.ClientURL(), "n1"), 100, 1)
}

func TestForwarderHeartbeats(t *testing.T) {
	srv := natstest.Start(t, "")
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(stream.HeartbeatSubject("n1"))
	if err != nil {
		t.Fatal(err)
	}
	b := openTestBuffer(t, t.TempDir())
	appendEvents(t, b, "s", 0, 7, 7)
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(f *Forwarder) {
		f.HeartbeatInterval = 20 * time.Millisecond
		f.Now = func() time.Time { return now }
	})
	next := func() *stream.Heartbeat {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
		fr, err := stream.Decode(m.Data)
		if err != nil || fr.Kind != stream.KindHeartbeat || fr.Node != "n1" || fr.Epoch != b.Epoch() {
			t.Fatalf("heartbeat frame %+v, %v", fr, err)
		}
		return fr.Heartbeat
	}
	hb := next()
	if hb.LastSeq != 7 || hb.Time != now.UnixNano() {
		t.Fatalf("first heartbeat %+v", hb)
	}
	proctest.WaitFor(t, "a heartbeat showing the events sent", 10*time.Second, func() bool {
		hb := next()
		return hb.Sent == 7 && hb.Buffered == 0 && hb.AckedSeq == 7 && hb.LastSeq == 7
	})
	if f.Stats().Heartbeats < 2 {
		t.Fatalf("heartbeats counted: %d", f.Stats().Heartbeats)
	}
}

func TestForwarderSendsCounterStates(t *testing.T) {
	srv := natstest.Start(t, "")
	b := openTestBuffer(t, t.TempDir())
	ctx := context.Background()
	for _, d := range []int64{5, -2, 4} {
		if _, err := b.Incr(ctx, "orders", d); err != nil {
			t.Fatal(err)
		}
	}
	f := testForwarder(t, b, srv.ClientURL(), "n1", nil)
	proctest.WaitFor(t, "counter states to be sent", 10*time.Second, func() bool {
		rows, err := b.PendingCounters(ctx)
		return err == nil && len(rows) == 0
	})
	got := natstest.ReadEdge(t, srv.ClientURL(), "n1").Counters
	if len(got) == 0 || got[len(got)-1] != (stream.CounterState{Name: "orders", P: 9, N: 2}) {
		t.Fatalf("counter states at the hub: %+v", got)
	}
	// A later increment is sent after Notify.
	if _, err := b.Incr(ctx, "orders", 1); err != nil {
		t.Fatal(err)
	}
	f.Notify()
	proctest.WaitFor(t, "the new state at the hub", 10*time.Second, func() bool {
		got := natstest.ReadEdge(t, srv.ClientURL(), "n1").Counters
		return got[len(got)-1] == stream.CounterState{Name: "orders", P: 10, N: 2}
	})
}

func TestForwarderReportsDropsAndNeverBothSendsAndDrops(t *testing.T) {
	srv := natstest.Start(t, "")
	b := buffer.New(filepath.Join(t.TempDir(), "buffer.db"))
	b.MaxBytes, b.Policy = buffer.MinMaxBytes, buffer.DropOldest
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pad := strings.Repeat("x", 900)
	add := func(from, n int) {
		for k := 0; k < n; k += 50 {
			var in []edge.Input
			for i := k; i < min(n, k+50); i++ {
				in = append(in, edge.Input{TS: 1, Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":%q}`, from+i, pad))})
			}
			if _, _, err := b.Append(context.Background(), "s", in); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
	}
	// Over the cap before the forwarder runs, then more while it runs.
	add(0, 2000)
	if b.Stats().Dropped == 0 {
		t.Fatal("nothing dropped; the test needs a full buffer")
	}
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(f *Forwarder) { f.MaxEvents = 20 })
	add(2000, 2000)
	f.Notify()
	proctest.WaitFor(t, "buffer drained and drops reported", 30*time.Second, func() bool {
		d, err := b.PendingDrops(context.Background())
		return err == nil && len(d) == 0 && b.Stats().Buffered == 0
	})
	r := natstest.ReadEdge(t, srv.ClientURL(), "n1")
	last := b.Stats().LastSeq
	for seq, c := range r.Events {
		if c != 1 {
			t.Fatalf("seq %d received %d times", seq, c)
		}
	}
	var dropped uint64
	for _, d := range r.Drops {
		if d.Reason != stream.ReasonBufferFull || d.Epoch != b.Epoch() {
			t.Fatalf("drop %+v", d)
		}
		dropped += d.Count
		if d.Count == d.LastSeq-d.FirstSeq+1 {
			for s := d.FirstSeq; s <= d.LastSeq; s++ {
				if r.Events[s] > 0 {
					t.Fatalf("seq %d was both sent and reported dropped (%+v)", s, d)
				}
			}
		}
	}
	if dropped != b.Stats().Dropped {
		t.Fatalf("drop reports count %d, the buffer dropped %d", dropped, b.Stats().Dropped)
	}
	if got := uint64(len(r.Events)) + dropped; got != last {
		t.Fatalf("%d received + %d dropped = %d, want every seq up to %d", len(r.Events), dropped, got, last)
	}
}

func TestForwarderKeepsRowsWhilePublishesFail(t *testing.T) {
	srv := natstest.Start(t, "")
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// Without the EDGE stream every publish fails (no responders).
	if err := js.DeleteStream(ctx, stream.JetStreamName); err != nil {
		t.Fatal(err)
	}
	b := openTestBuffer(t, t.TempDir())
	appendEvents(t, b, "s", 0, 300, 100)
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(f *Forwarder) { f.MaxEvents = 50 })
	proctest.WaitFor(t, "failed sessions", 30*time.Second, func() bool { return f.Stats().PublishErrors >= 3 })
	if st := b.Stats(); st.Buffered != 300 || f.Stats().Sent != 0 {
		t.Fatalf("rows deleted without an ack: buffer %+v, forwarder %+v", st, f.Stats())
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig(0, 1)); err != nil {
		t.Fatal(err)
	}
	proctest.WaitFor(t, "the buffer to drain once the stream exists", 30*time.Second, func() bool { return b.Stats().Buffered == 0 })
	checkAll(t, natstest.ReadEdge(t, srv.ClientURL(), "n1"), 300, 1)
}
