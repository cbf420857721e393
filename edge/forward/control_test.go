package forward

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge/buffer"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

// counterFrames returns, byte for byte, every counter frame node published.
func counterFrames(t *testing.T, url, node string) [][]byte {
	t.Helper()
	m := natstest.ReadEdge(t, url, node)
	var out [][]byte
	for i, f := range m.Frames {
		if f.Kind == stream.KindCounters {
			out = append(out, m.Raw[i])
		}
	}
	return out
}

// TestForwarderSendsRegistersInFramesOfTheirOwn checks that sums travel in
// frames with sums only, byte for byte what edges sent before counter kinds (a
// hub of that time refuses a whole frame with a "kind" in it), and that the
// other kinds follow in frames of their own, with their values and stamps.
func TestForwarderSendsRegistersInFramesOfTheirOwn(t *testing.T) {
	srv := natstest.Start(t, "")
	b := buffer.New(filepath.Join(t.TempDir(), "buffer.db"))
	b.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	ctx := context.Background()
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.Incr(ctx, "alarms", 1)
	must(err)
	_, err = b.Set(ctx, "battery", counters.KindMin, 41.5)
	must(err)
	_, err = b.Incr(ctx, "doors", 3)
	must(err)
	_, err = b.Incr(ctx, "doors", -1)
	must(err)
	_, err = b.Set(ctx, "firmware", counters.KindLast, 7)
	must(err)

	testForwarder(t, b, srv.ClientURL(), "n1", nil)
	proctest.WaitFor(t, "counter states to be sent", 10*time.Second, func() bool {
		rows, err := b.PendingCounters(ctx)
		return err == nil && len(rows) == 0
	})
	frames := counterFrames(t, srv.ClientURL(), "n1")
	if len(frames) != 2 {
		t.Fatalf("%d counter frames, want one of sums and one of registers", len(frames))
	}
	// The sums' payload is the JSON the first edges sent, in its own frame.
	want, err := stream.EncodeControlV2(stream.KindCounters, stream.CodecNone, "n1", b.Epoch(), []stream.CounterState{{Name: "alarms", P: 1}, {Name: "doors", P: 3, N: 1}})
	must(err)
	sums, err := stream.Decode(frames[0])
	must(err)
	again, err := stream.EncodeControlV2(stream.KindCounters, stream.CodecNone, sums.Node, sums.Epoch, sums.Counters)
	must(err)
	if !bytes.Equal(again, want) || !bytes.Contains(want, []byte(`[{"name":"alarms","p":1,"n":0},{"name":"doors","p":3,"n":1}]`)) {
		t.Fatalf("the sums' frame holds\n%q\nwant, as before counter kinds,\n%q", again, want)
	}
	f, err := stream.Decode(frames[1])
	must(err)
	wantRegs := []stream.CounterState{
		{Name: "battery", Kind: stream.CounterMin, Value: 41.5, Set: true},
		{Name: "firmware", Kind: stream.CounterLast, Value: 7, Set: true, Wall: 1_700_000_000_000},
	}
	if len(f.Counters) != 2 || f.Counters[0] != wantRegs[0] || f.Counters[1] != wantRegs[1] {
		t.Fatalf("the registers' frame holds %+v, want %+v", f.Counters, wantRegs)
	}
}
