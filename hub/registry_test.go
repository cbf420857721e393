package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/internal/fleetsim"
	"github.com/tributary-edge/tributary/stream"
)

func testRegistry() (*registry, int64) {
	r := newRegistry()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 30 {
		node := fmt.Sprintf("n%02d", i)
		if i%3 != 0 {
			r.heartbeat(node, "e", stream.Heartbeat{Buffered: int64(i % 5)}, now-int64(time.Second))
		}
		r.applied(&index.Applied{Nodes: []index.NodeSeen{{Node: node, At: now}},
			Epochs: []index.EpochRow{{Node: node, Epoch: "e", Received: int64(i), HighSeq: int64(i + i%4), LastSeen: now}}}, now-int64(i)*int64(time.Second))
	}
	return r, now
}

func TestRegistryPages(t *testing.T) {
	r, now := testRegistry()
	yes, no := true, false
	tests := []struct {
		name  string
		q     NodeQuery
		first string
		count int
	}{
		{"by name", NodeQuery{}, "n00", 30},
		{"prefix", NodeQuery{Prefix: "n1"}, "n10", 10},
		{"online", NodeQuery{Online: &yes}, "n01", 20},
		{"offline", NodeQuery{Online: &no}, "n00", 10},
		{"offline first", NodeQuery{Sort: SortOffline}, "n00", 30},
		{"largest backlog first", NodeQuery{Sort: SortBacklog}, "n04", 30},
		{"most missing first", NodeQuery{Sort: SortMissing}, "n03", 30},
		{"fastest first", NodeQuery{Sort: SortRate}, "n29", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []NodeInfo
			q := tt.q
			q.Limit = 4
			for pages := 0; ; pages++ {
				p, err := r.page(q, now)
				if err != nil {
					t.Fatal(err)
				}
				if p.Totals.Nodes != 30 || p.Totals.Online != 20 || p.Totals.Events != 435 {
					t.Fatalf("totals %+v", p.Totals)
				}
				all = append(all, p.Nodes...)
				if p.Next == "" {
					break
				}
				q.After = p.Next
			}
			if len(all) != tt.count || all[0].Node != tt.first {
				t.Fatalf("%d nodes, first %s; want %d, first %s", len(all), all[0].Node, tt.count, tt.first)
			}
			seen := map[string]bool{}
			for _, n := range all {
				if seen[n.Node] {
					t.Fatalf("%s listed twice", n.Node)
				}
				seen[n.Node] = true
			}
		})
	}
	for _, bad := range []NodeQuery{{Limit: -1}, {Limit: MaxNodeLimit + 1}, {Sort: "size"}, {After: "!!"}} {
		if _, err := r.page(bad, now); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%+v: %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func TestRegistryNodeRecord(t *testing.T) {
	r, now := testRegistry()
	p, _ := r.page(NodeQuery{Prefix: "n07"}, now)
	n := p.Nodes[0]
	if n.Events != 7 || n.HighSeq != 10 || n.Missing != 3 || n.Buffered != 2 || !n.Online || n.Epoch != "e" || n.Rate <= 0 {
		t.Fatalf("n07 %+v", n)
	}
	later, _ := r.page(NodeQuery{Prefix: "n07"}, now+int64(time.Minute))
	if later.Nodes[0].Online || later.Nodes[0].Rate >= n.Rate {
		t.Fatalf("a minute later %+v: want offline and a lower rate", later.Nodes[0])
	}
	// An older heartbeat does not replace a newer one.
	r.heartbeat("n07", "old", stream.Heartbeat{Buffered: 99}, now-int64(time.Hour))
	if p, _ := r.page(NodeQuery{Prefix: "n07"}, now); p.Nodes[0].Buffered != 2 {
		t.Fatalf("an old heartbeat replaced the newest: %+v", p.Nodes[0])
	}
}

// TestRegistryUplinkBytesPerEvent checks that a node's uplink figures are
// kept from its heartbeats, shown as bytes per event, and kept across a
// restart of the registry from the index's heartbeat rows.
func TestRegistryUplinkBytesPerEvent(t *testing.T) {
	r, now := testRegistry()
	r.heartbeat("n01", "e", stream.Heartbeat{UplinkBytes: 50_123, UplinkEvents: 1000}, now)
	r.heartbeat("n02", "e", stream.Heartbeat{UplinkBytes: 480}, now)
	check := func(r *registry, when string) {
		t.Helper()
		p, _ := r.page(NodeQuery{Prefix: "n0", Limit: 3}, now)
		got := map[string]*float64{}
		for _, n := range p.Nodes {
			got[n.Node] = n.UplinkBytesPerEvent
		}
		if v := got["n01"]; v == nil || *v != 50.1 {
			t.Fatalf("%s: n01 uplink bytes per event %v, want 50.1", when, v)
		}
		// Heartbeats alone, or no heartbeat: no events to divide by.
		if got["n02"] != nil || got["n00"] != nil {
			t.Fatalf("%s: n02 %v and n00 %v, want null for nodes that sent no event", when, got["n02"], got["n00"])
		}
	}
	check(r, "live")
	var rows []index.NodeRow
	for _, h := range r.takeDirty() {
		rows = append(rows, index.NodeRow{Node: h.Node, LastHB: h.At, Epoch: h.Epoch, Heartbeat: h.Heartbeat})
	}
	again := newRegistry()
	again.load(rows, []index.EpochRow{{Node: "n00", Epoch: "e"}})
	check(again, "reloaded")
}

// TestHeartbeatsOnControlSubjects sends heartbeats the way edges do, on
// ctl.<node>.hb: the hub applies them, ignores one whose frame names another
// node, stores them in batches and still knows them after a restart.
func TestHeartbeatsOnControlSubjects(t *testing.T) {
	dir := t.TempDir()
	h := openHub(t, dir)
	h.HeartbeatFlush = 50 * time.Millisecond
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f := fleetsim.Default(300)
	if _, err := fleetsim.Heartbeats(nc, f, time.Now(), nil, func(i int) int64 { return int64(i) }); err != nil {
		t.Fatal(err)
	}
	forged, _ := f.Heartbeat(1, 12345, time.Now())
	if err := nc.Publish(stream.HeartbeatSubject(f.Node(2)), forged); err != nil {
		t.Fatal(err)
	}
	nc.Publish(stream.HeartbeatSubject(f.Node(3)), []byte("garbage"))
	nc.Flush()
	ctx := context.Background()
	waitUntil(t, "300 nodes online", func() bool {
		p, _ := h.Nodes(ctx, NodeQuery{Limit: 1})
		return p.Totals.Online == 300
	})
	p, _ := h.Nodes(ctx, NodeQuery{Limit: 5})
	if p.Nodes[2].Buffered != 2 || p.Nodes[3].Buffered != 3 || p.Totals.Buffered != 299*300/2 {
		t.Fatalf("forged or garbage heartbeats were applied: %+v, totals %+v", p.Nodes[:4], p.Totals)
	}
	h.Close()
	h = openHub(t, dir)
	defer h.Close()
	p, _ = h.Nodes(ctx, NodeQuery{Limit: 1})
	if p.Totals.Nodes != 300 || p.Totals.Buffered != 299*300/2 || !strings.HasPrefix(p.Nodes[0].Node, "sim-") {
		t.Fatalf("after a restart: %+v", p.Totals)
	}
}
