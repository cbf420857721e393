package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/edge/source"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

func TestAgentForwardsEverything(t *testing.T) {
	srv := natstest.Start(t, "")
	dir := t.TempDir()
	ctx := context.Background()
	a := New("n1", dir, srv.ClientURL())
	a.Sources = []string{"sim:seed=1&interval=10ms"}
	a.Forwarder.FlushInterval = 5 * time.Millisecond
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("not ready after Open: %v", err)
	}
	res, err := a.Ingest(ctx, "app", strings.NewReader(`[{"x":1},{"x":2}]`), -1, "application/json")
	if err != nil || res.Accepted != 2 || res.LastSeq != res.FirstSeq+1 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	if pn, err := a.Incr(ctx, "visits", 3); err != nil || pn.Value() != 3 {
		t.Fatalf("incr: %+v, %v", pn, err)
	}
	proctest.WaitFor(t, "ingested events, readings and the counter at the hub", 30*time.Second, func() bool {
		r := natstest.ReadEdge(t, srv.ClientURL(), "n1")
		sensors := 0
		for _, name := range r.Streams {
			if name == source.SimSensorsStream {
				sensors++
			}
		}
		// The hub holds a batch a moment before the edge sees its ack.
		return a.Status().Sent >= 2 && r.Data[res.FirstSeq] == `{"x":1}` && r.Data[res.LastSeq] == `{"x":2}` && r.Streams[res.LastSeq] == "app" &&
			sensors >= 3 && len(r.Counters) > 0 && r.Counters[len(r.Counters)-1] == stream.CounterState{Name: "visits", P: 3}
	})
	st := a.Status()
	if st.Node != "n1" || !st.HubConnected || st.Sent < 2 || st.Epoch != a.Buffer.Epoch() {
		t.Fatalf("status %+v", st)
	}
	epoch := st.Epoch
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(a.Ready(), edge.ErrNotReady) {
		t.Fatal("ready after Close")
	}

	// Reopened on the same directory it is the same epoch, and seqs go on.
	b := New("n1", dir, srv.ClientURL())
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res2, err := b.Ingest(ctx, "app", strings.NewReader(`{"x":3}`), -1, "")
	if err != nil || b.Status().Epoch != epoch || res2.FirstSeq <= res.LastSeq {
		t.Fatalf("after reopen: %+v, %v, epoch %s was %s", res2, err, b.Status().Epoch, epoch)
	}
	if r, ok, err := b.Counter(ctx, "visits"); err != nil || !ok || r.PN.Value() != 3 {
		t.Fatalf("counter after reopen: %+v %v %v", r, ok, err)
	}
}

func TestAgentOpenFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, tc := range []struct {
		node, source, msg string
		tune              func(*Agent)
	}{
		{"bad node", "", "node name", nil},
		{"n1", "sim:speed=3", "option", nil},
		// Fails after the buffer is open: the buffer must be closed again.
		{"n1", "", "max events", func(a *Agent) { a.Forwarder.MaxEvents = 0 }},
		{"n1", "", "no hub URL", func(a *Agent) { a.Forwarder.Hub = " , " }},
	} {
		a := New(tc.node, dir, "nats://127.0.0.1:1")
		if tc.source != "" {
			a.Sources = []string{tc.source}
		}
		if tc.tune != nil {
			tc.tune(a)
		}
		if err := a.Open(ctx); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Fatalf("Open with node %q source %q: %v, want %q", tc.node, tc.source, err, tc.msg)
		}
		if a.Ready() == nil {
			t.Fatal("ready after a failed Open")
		}
	}
	// Nothing was left holding the buffer file.
	a := New("n1", dir, "nats://127.0.0.1:1")
	if err := a.Open(ctx); err != nil {
		t.Fatalf("open after failed opens: %v", err)
	}
	defer a.Close()
	if _, err := a.Ingest(ctx, "s", strings.NewReader("x"), -1, ""); !errors.Is(err, edge.ErrBadBody) {
		t.Fatalf("bad body: %v", err)
	}
	a.MaxBodyBytes = 10
	if _, err := a.Ingest(ctx, "s", strings.NewReader(`{"a":"0123456789"}`), -1, ""); !errors.Is(err, edge.ErrBodyTooLarge) {
		t.Fatalf("large body: %v", err)
	}
	if _, err := a.Ingest(ctx, "a.b", strings.NewReader(`{}`), -1, ""); !errors.Is(err, stream.ErrInvalidName) {
		t.Fatalf("bad stream: %v", err)
	}
	if a.Status().LastSeq != 0 {
		t.Fatal("refused ingests stored events")
	}
}

// TestAgentStampsLastWritesWithItsClock checks that the agent's clock is the
// one that stamps last writes, that the stamps reach the hub, and that a clock
// set back across a restart of the agent never makes a stamp older than one
// already sent.
func TestAgentStampsLastWritesWithItsClock(t *testing.T) {
	srv := natstest.Start(t, "")
	dir := t.TempDir()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_900_000)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	open := func() *Agent {
		t.Helper()
		a := New("n1", dir, srv.ClientURL())
		a.Now = clock
		a.Forwarder.FlushInterval = 5 * time.Millisecond
		if err := a.Open(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	first, err := a.Set(ctx, "fw", counters.KindLast, 3)
	if err != nil || first.Stamp != (counters.HLC{Wall: 1_700_000_900_000}) {
		t.Fatalf("first write %+v, %v; want it stamped at the agent's clock", first, err)
	}
	if _, err := a.Incr(ctx, "fw", 1); !errors.Is(err, edge.ErrKindConflict) {
		t.Fatalf("a delta to a last counter: %v, want edge.ErrKindConflict", err)
	}
	a.Close()

	mu.Lock()
	now = now.Add(-time.Hour)
	mu.Unlock()
	a = open()
	defer a.Close()
	second, err := a.Set(ctx, "fw", counters.KindLast, 4)
	if err != nil || !first.Stamp.Less(second.Stamp) {
		t.Fatalf("after the clock went back an hour: %+v, %v; want a stamp after %v", second, err, first.Stamp)
	}
	want := stream.CounterState{Name: "fw", Kind: stream.CounterLast, Value: 4, Set: true, Wall: second.Stamp.Wall, Logical: second.Stamp.Logical}
	proctest.WaitFor(t, "the second write at the hub", 30*time.Second, func() bool {
		c := natstest.ReadEdge(t, srv.ClientURL(), "n1").Counters
		return len(c) > 0 && c[len(c)-1] == want
	})
}
