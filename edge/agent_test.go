package edge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

func TestAgentForwardsEverything(t *testing.T) {
	srv := natstest.Start(t, "")
	dir := t.TempDir()
	ctx := context.Background()
	a := NewAgent("n1", dir, srv.ClientURL())
	a.Sources = []string{"sim:seed=1&interval=10ms"}
	a.Forwarder.FlushInterval = 5 * time.Millisecond
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("not ready after Open: %v", err)
	}
	res, err := a.Ingest(ctx, "app", strings.NewReader(`[{"x":1},{"x":2}]`), "application/json")
	if err != nil || res.Accepted != 2 || res.LastSeq != res.FirstSeq+1 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	if pn, err := a.Incr(ctx, "visits", 3); err != nil || pn.Value() != 3 {
		t.Fatalf("incr: %+v, %v", pn, err)
	}
	waitFor(t, "ingested events, readings and the counter at the hub", 30*time.Second, func() bool {
		r := readEdge(t, srv.ClientURL(), "n1")
		sensors := 0
		for _, name := range r.streams {
			if name == SimSensorsStream {
				sensors++
			}
		}
		return r.data[res.FirstSeq] == `{"x":1}` && r.data[res.LastSeq] == `{"x":2}` && r.streams[res.LastSeq] == "app" &&
			sensors >= 3 && len(r.counters) > 0 && r.counters[len(r.counters)-1] == stream.CounterState{Name: "visits", P: 3}
	})
	st := a.Status()
	if st.Node != "n1" || !st.HubConnected || st.Sent < 2 || st.Epoch != a.Buffer.Epoch() {
		t.Fatalf("status %+v", st)
	}
	epoch := st.Epoch
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(a.Ready(), ErrNotReady) {
		t.Fatal("ready after Close")
	}

	// Reopened on the same directory it is the same epoch, and seqs go on.
	b := NewAgent("n1", dir, srv.ClientURL())
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res2, err := b.Ingest(ctx, "app", strings.NewReader(`{"x":3}`), "")
	if err != nil || b.Status().Epoch != epoch || res2.FirstSeq <= res.LastSeq {
		t.Fatalf("after reopen: %+v, %v, epoch %s was %s", res2, err, b.Status().Epoch, epoch)
	}
	if pn, ok, err := b.Counter(ctx, "visits"); err != nil || !ok || pn.Value() != 3 {
		t.Fatalf("counter after reopen: %+v %v %v", pn, ok, err)
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
		a := NewAgent(tc.node, dir, "nats://127.0.0.1:1")
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
	a := NewAgent("n1", dir, "nats://127.0.0.1:1")
	if err := a.Open(ctx); err != nil {
		t.Fatalf("open after failed opens: %v", err)
	}
	defer a.Close()
	if _, err := a.Ingest(ctx, "s", strings.NewReader("x"), ""); !errors.Is(err, ErrBadBody) {
		t.Fatalf("bad body: %v", err)
	}
	a.MaxBodyBytes = 10
	if _, err := a.Ingest(ctx, "s", strings.NewReader(`{"a":"0123456789"}`), ""); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("large body: %v", err)
	}
	if _, err := a.Ingest(ctx, "a.b", strings.NewReader(`{}`), ""); !errors.Is(err, stream.ErrInvalidName) {
		t.Fatalf("bad stream: %v", err)
	}
	if a.Status().LastSeq != 0 {
		t.Fatal("refused ingests stored events")
	}
}
