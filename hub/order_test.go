package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// TestMaterializerAppliesTheStreamInOrder has the consumer deliver a batch
// before the one ahead of it in the stream, as it does after a failover or a
// restart (the earlier one is pending, its acknowledgement wait not over),
// with a deleted message between them: the events both batches hold keep the
// earlier batch's received time, as a hub that read the stream in order
// stores them, the earlier batch is applied at once, not after the
// acknowledgement wait, and the deleted message is passed over.
func TestMaterializerAppliesTheStreamInOrder(t *testing.T) {
	ns := natstest.Start(t, "")
	dir := t.TempDir()
	open := func() *Hub {
		h := New()
		h.DataDir, h.NATSURL = dir, ns.ClientURL()
		if err := h.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return h
	}
	open().Close() // the stream, the consumer and an index that is not replayed

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishEvents(t, js, "o1", "ep", 1, 10) // stream seq 1: seqs 1–10
	publishEvents(t, js, "o2", "ep", 1, 2)  // stream seq 2, deleted below
	publishEvents(t, js, "o1", "ep", 5, 11) // stream seq 3: seqs 5–15, sent again with more
	str, _ := js.Stream(ctx, stream.JetStreamName)
	if err := str.DeleteMsg(ctx, 2); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, stream.JetStreamName, ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var first jetstream.Msg
	for msg := range batch.Messages() {
		first = msg // delivered, never acknowledged: pending for AckWait
	}
	if first == nil {
		t.Fatal("the consumer delivered nothing")
	}
	md, _ := first.Metadata()
	if md.Sequence.Stream != 1 {
		t.Fatalf("fetched stream seq %d, want 1", md.Sequence.Stream)
	}
	second, err := str.GetMsg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}

	h := open()
	defer h.Close()
	// Well inside the consumer's AckWait of 30 s: the first batch is not
	// waited for.
	deadline := time.Now().Add(20 * time.Second)
	for nodeEvents(t, h, "o1").Events != 15 || h.mat.Stats().Messages != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 15 events indexed, %d messages applied after 20 s", nodeEvents(t, h, "o1").Events, h.mat.Stats().Messages)
		}
		time.Sleep(20 * time.Millisecond)
	}
	q, err := pattern.Prepare(pattern.Request{Pattern: "single(o1)", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 15 {
		t.Fatalf("%d events, want 15", len(res.Matches))
	}
	for _, ev := range res.Matches {
		want := md.Timestamp.UnixNano()
		if ev.Seq > 10 {
			want = second.Time.UnixNano()
		}
		if ev.Received != want {
			t.Errorf("seq %d received %d, want %d (the first copy in the stream)", ev.Seq, ev.Received, want)
		}
	}
	if st := h.mat.Stats(); st.Refetched != 1 || st.Duplicates != 6 {
		t.Errorf("refetched %d messages and skipped %d duplicate events, want 1 and 6", st.Refetched, st.Duplicates)
	}
	if n := nodeEvents(t, h, "o2").Events; n != 0 {
		t.Errorf("%d events of the deleted message indexed", n)
	}
}

// TestMaterializerReportsARunThatKeepsFailing: a full disk at once, any
// other failure of the same run once it has lasted StuckAfter, since nothing
// after the run is applied meanwhile.
func TestMaterializerReportsARunThatKeepsFailing(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := &Materializer{Now: func() time.Time { return now }}
	done, cancel := context.WithCancel(context.Background())
	cancel() // pause records and returns at once
	m.pause(done, nil, errors.New("merge counters of n1: no quorum"))
	if err := m.Healthy(); err != nil {
		t.Fatalf("healthy after one failure: %v", err)
	}
	now = now.Add(StuckAfter + time.Second)
	m.pause(done, nil, errors.New("merge counters of n1: no quorum"))
	if err := m.Healthy(); err == nil || !strings.Contains(err.Error(), "stuck for 31s") {
		t.Fatalf("after %v of failures: %v", StuckAfter+time.Second, err)
	}
	m = &Materializer{Now: func() time.Time { return now }}
	m.pause(done, nil, fmt.Errorf("%w: insert chunk: %w", index.ErrIndex, index.ErrFull))
	if err := m.Healthy(); err == nil || !errors.Is(err, index.ErrFull) {
		t.Fatalf("a full disk: %v", err)
	}
}
