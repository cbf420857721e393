package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

// TestPacer runs the token bucket on a clock of its own: a burst of one
// second of the rate, first come first served, and messages over the burst
// paid for a burst at a time.
func TestPacer(t *testing.T) {
	type step struct {
		advance time.Duration // clock moves before the reservation
		n       int
		want    time.Duration
	}
	tests := []struct {
		name  string
		rate  int64
		steps []step
	}{
		{"the burst goes at once, then the rate", 1000, []step{{0, 600, 0}, {0, 400, 0}, {0, 500, 500 * time.Millisecond}, {0, 500, time.Second}}},
		{"idle time saves at most one second", 1000, []step{{0, 1000, 0}, {time.Hour, 1000, 0}, {0, 1000, time.Second}}},
		{"a message over the burst waits for all its bytes", 1000, []step{{0, 2500, 1500 * time.Millisecond}, {0, 100, 1600 * time.Millisecond}}},
		{"time pays back", 2048, []step{{0, 2048, 0}, {500 * time.Millisecond, 1024, 0}, {0, 1024, 500 * time.Millisecond}}},
		{"nothing costs nothing", 1000, []step{{0, 1000, 0}, {0, 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := newPacer(tt.rate, func() time.Time { return now })
			if p.burst() != int(tt.rate) {
				t.Fatalf("burst %d, want one second of the rate, %d", p.burst(), tt.rate)
			}
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				if got := p.reserve(s.n); got != s.want {
					t.Fatalf("step %d (%d bytes): wait %v, want %v", i, s.n, got, s.want)
				}
			}
		})
	}
	var none *pacer
	if newPacer(0, time.Now) != nil || none.reserve(1<<30) != 0 || none.burst() != 0 {
		t.Fatal("no rate must mean no pacer, and a nil pacer no wait")
	}
}

// TestPubCostCoversTheWire publishes frames the forwarder's ways through a
// counting connection to a real server, and checks that what the pacer
// charges for each is at least what went on the socket, and not much more.
func TestPubCostCoversTheWire(t *testing.T) {
	srv := natstest.Start(t, "")
	var written atomic.Uint64
	nc, err := nats.Connect(srv.ClientURL(), nats.SetCustomDialer(&countingDialer{written: &written}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// The first async publish subscribes to its reply inbox; do it before
	// counting.
	if fut, err := js.PublishAsync(stream.Subject("n1", "warm"), []byte("{}")); err != nil {
		t.Fatal(err)
	} else {
		<-fut.Ok()
	}
	flush := func() uint64 {
		t.Helper()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return written.Load() - uint64(len("PING\r\n"))
	}
	for _, size := range []int{1, 200, 9_999, 100_000} {
		frame := []byte(strings.Repeat("x", size))
		msg := nats.NewMsg(stream.Subject("n1", "s"))
		msg.Data = frame
		msg.Header.Set(jetstream.MsgIDHeader, stream.MsgID("n1", "0123456789abcdef", "s", 1, uint64(size)))
		before := written.Load()
		fut, err := js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		<-fut.Ok()
		sent := flush() - before
		cost := pubCost(msg.Subject, msg.Header, frame, true)
		if uint64(cost) < sent || uint64(cost) > sent+replyAllowance {
			t.Errorf("JetStream publish of %d bytes: %d on the wire, charged %d", size, sent, cost)
		}

		before = written.Load()
		if err := nc.Publish(stream.HeartbeatSubject("n1"), frame); err != nil {
			t.Fatal(err)
		}
		sent = flush() - before
		if cost := pubCost(stream.HeartbeatSubject("n1"), nil, frame, false); uint64(cost) != sent {
			t.Errorf("plain publish of %d bytes: %d on the wire, charged %d", size, sent, cost)
		}
	}
}

// TestForwarderKeepsToMaxRate forwards a backlog under a rate cap: every
// event arrives once, no events frame costs more than the burst, the uplink
// figures count what went, and the backlog takes at least as long as the cap
// allows (a lower bound, which a slow machine cannot break).
func TestForwarderKeepsToMaxRate(t *testing.T) {
	srv := natstest.Start(t, "")
	b := openTestBuffer(t, t.TempDir())
	const n = 600
	for k := 0; k < n; k += 100 {
		var in []edge.Input
		for i := k; i < k+100; i++ {
			in = append(in, edge.Input{TS: int64(i) * 1000, Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":"%080d"}`, i, i*7919))})
		}
		if _, _, err := b.Append(context.Background(), "s", in); err != nil {
			t.Fatal(err)
		}
	}
	const rate = 16 << 10
	start := time.Now()
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(f *Forwarder) {
		f.MaxRate, f.Compress = rate, stream.CodecNone
	})
	proctest.WaitFor(t, "the buffer to drain", 60*time.Second, func() bool { return b.Stats().Buffered == 0 })
	took := time.Since(start)

	r := natstest.ReadEdge(t, srv.ClientURL(), "n1")
	for seq := uint64(1); seq <= n; seq++ {
		if want := fmt.Sprintf(`{"i":%d,"pad":"%080d"}`, seq-1, (seq-1)*7919); r.Events[seq] != 1 || r.Data[seq] != want {
			t.Fatalf("seq %d arrived %d times with %s", seq, r.Events[seq], r.Data[seq])
		}
	}
	var framed int
	frames := 0
	for i, fr := range r.Frames {
		if fr.Kind != stream.KindEvents {
			continue
		}
		raw, _ := stream.EncodeEventsV2(nil, stream.CodecNone, fr.Node, fr.Epoch, fr.Stream, fr.Events)
		h := nats.Header{}
		h.Set(jetstream.MsgIDHeader, r.MsgIDs[frames])
		cost := pubCost(stream.Subject("n1", fr.Stream), h, raw, true)
		if cost > rate {
			t.Fatalf("frame %d of %d events costs %d bytes, over the %d byte burst", i, len(fr.Events), cost, rate)
		}
		framed += cost
		frames++
	}
	if frames < 3 {
		t.Fatalf("%d events frames: the reads did not shrink to the burst", frames)
	}
	st := f.Stats()
	if st.UplinkEvents != n || st.UplinkBytes < uint64(framed) {
		t.Fatalf("uplink figures %d events, %d bytes; want %d events and at least the %d bytes of the frames", st.UplinkEvents, st.UplinkBytes, n, framed)
	}
	if least := time.Duration(float64(framed-rate) / rate * float64(time.Second)); took < least {
		t.Fatalf("%d bytes of frames went in %v; a cap of %d bytes/s allows no less than %v", framed, took, rate, least)
	}
}

func TestForwarderRefusesATinyMaxRate(t *testing.T) {
	b := openTestBuffer(t, t.TempDir())
	f := NewForwarder(b, "nats://127.0.0.1:1", "n1")
	f.MaxRate = MinMaxRate - 1
	if err := f.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "max rate 1023 bytes/s") {
		f.Close()
		t.Fatalf("open with a max rate of %d: %v", f.MaxRate, err)
	}
}

// TestForwarderCallsDrainedAfterABacklog checks the hook the agent returns
// memory with: called once a backlog of at least DrainedBytes has been
// delivered and nothing more is buffered, not for a trickle below it, and
// the trickle does not count towards the next backlog.
func TestForwarderCallsDrainedAfterABacklog(t *testing.T) {
	srv := natstest.Start(t, "")
	b := openTestBuffer(t, t.TempDir())
	// Each backlog is one append, so that the forwarder cannot empty the
	// buffer half way through it.
	appendEvents(t, b, "s", 0, 300, 300) // 2,590 bytes of data
	calls := make(chan uint64, 10)
	f := testForwarder(t, b, srv.ClientURL(), "n1", func(fw *Forwarder) {
		fw.MaxEvents, fw.DrainedBytes = 100, 950
		fw.Drained = func() { calls <- fw.Stats().Sent }
	})
	var got []uint64
	next := func(what string) uint64 {
		t.Helper()
		select {
		case s := <-calls:
			got = append(got, s)
			return s
		case <-time.After(30 * time.Second):
			t.Fatalf("Drained was not called %s; calls so far at %v events sent", what, got)
			return 0
		}
	}
	backlog := func(from, n int) {
		t.Helper()
		appendEvents(t, b, "s", from, n, n)
		f.Notify()
		// Inflight drops to 0 only when a fill has found nothing more to
		// read, after it has judged the backlog.
		proctest.WaitFor(t, "the events to be sent", 30*time.Second, func() bool {
			st := f.Stats()
			return st.Sent == uint64(from+n) && st.Inflight == 0
		})
	}
	if s := next("after a backlog of 300 events"); s != 300 {
		t.Fatalf("Drained called with %d events sent, want the whole backlog of 300", s)
	}
	backlog(300, 10)  // 90 bytes: under DrainedBytes
	backlog(310, 100) // 900 bytes: under DrainedBytes, though 990 with the one before
	backlog(410, 200) // 1,800 bytes
	if s := next("after a backlog of 200 events"); s != 610 {
		t.Fatalf("Drained calls at %v events sent, want 300 and then 610 (none for backlogs under DrainedBytes)", got)
	}
}
