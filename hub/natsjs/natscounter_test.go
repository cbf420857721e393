package natsjs_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

// TestNATSCounterDoubleCountsAfterDuplicateWindow is the worked example of the
// package documentation, on a real server. Edge A counts 5 door openings and
// sends them; it sends them again at once (a retry), and once more after the
// duplicate window has passed (a re-send after a long outage, the
// acknowledgement of the first send having been lost).
//
// A NATS message counter (a stream with AllowMsgCounter, deltas in the
// Nats-Incr header, nats-server 2.12+) drops the retry by its Nats-Msg-Id, but
// adds the late re-send again: 10. Tributary's hub receives the whole state
// {p: 5} each time and merges by maximum: 5. The window here is 200 ms instead
// of the minutes of a real deployment; only its length differs.
func TestNATSCounterDoubleCountsAfterDuplicateWindow(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	js := connect(t, url)
	ctx := testCtx(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:            "NATS_COUNTERS",
		Subjects:        []string{"natscounter.>"},
		Storage:         jetstream.FileStorage,
		AllowMsgCounter: true,
		Duplicates:      200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("create counter stream (needs nats-server 2.12+): %v", err)
	}

	// incr publishes a delta to a NATS counter with a message ID, as an edge
	// that retries a send would, and reports whether the server saw a repeat.
	incr := func(subject, id string, delta int64) bool {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Header.Set("Nats-Incr", strconv.FormatInt(delta, 10))
		ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		if err != nil {
			t.Fatalf("publish increment: %v", err)
		}
		return ack.Duplicate
	}
	natsValue := func() int64 {
		t.Helper()
		m, err := s.GetLastMsgForSubject(ctx, "natscounter.doors")
		if err != nil {
			t.Fatalf("read NATS counter: %v", err)
		}
		var v struct {
			Val string `json:"val"`
		}
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("NATS counter body %q: %v", m.Data, err)
		}
		n, err := strconv.ParseInt(v.Val, 10, 64)
		if err != nil {
			t.Fatalf("NATS counter value %q: %v", v.Val, err)
		}
		return n
	}

	h := openHub(t, url)
	kv := bucket(t, url)
	ours := func() int64 {
		t.Helper()
		if err := h.Merge(ctx, "edge-a", []stream.CounterState{{Name: "doors", P: 5}}); err != nil {
			t.Fatalf("merge: %v", err)
		}
		c, err := h.Get(ctx, "doors")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got, _ := stored(t, kv, counters.Key("doors", "edge-a")); got != (counters.PN{P: 5}) {
			t.Fatalf("bucket holds %+v, want {P:5}", got)
		}
		return c.Value.Int
	}

	// The first send, then a probe message whose ID enters the duplicate window
	// after the send's: once the probe is no longer a repeat, neither is the send.
	if incr("natscounter.doors", "edge-a:doors:1", 5) {
		t.Fatal("the first send was taken for a repeat")
	}
	incr("natscounter.probe", "probe", 1)
	if got := ours(); got != 5 {
		t.Fatalf("ours after the first send: %d, want 5", got)
	}

	// A retry inside the window: both count it once.
	if !incr("natscounter.doors", "edge-a:doors:1", 5) {
		t.Fatal("the retry inside the duplicate window was not recognized")
	}
	if got := natsValue(); got != 5 {
		t.Fatalf("NATS counter after a retry inside the window: %d, want 5", got)
	}
	if got := ours(); got != 5 {
		t.Fatalf("ours after a retry inside the window: %d, want 5", got)
	}

	eventually(t, "the duplicate window passes", func() string {
		if incr("natscounter.probe", "probe", 1) {
			return "the probe is still a repeat"
		}
		return ""
	})

	// The same send after the window, as after a long outage.
	if incr("natscounter.doors", "edge-a:doors:1", 5) {
		t.Fatal("the re-send after the window was still taken for a repeat")
	}
	if got := natsValue(); got != 10 {
		t.Fatalf("NATS counter after a re-send outside the window: %d; the double count is 10", got)
	}
	if got := ours(); got != 5 {
		t.Fatalf("ours after a re-send outside the window: %d, want exactly 5", got)
	}
}
