package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/fleetsim"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// fleetEvent is one simulated event as the oracle sees it.
type fleetEvent struct {
	node string
	seq  uint64
	ts   int64
	r    fleetsim.Reading
}

func fleetLess(a, b fleetEvent) int {
	if c := cmp.Compare(a.ts, b.ts); c != 0 {
		return c
	}
	if c := cmp.Compare(a.node, b.node); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// TestFleetOfTenThousandNodes runs a hub with 10,000 simulated nodes: every
// pattern answers as an oracle computed from the simulator says, the node
// list pages through all of them in each order, the totals are exact, and 20
// concurrent queries over the whole fleet all answer.
func TestFleetOfTenThousandNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of 10,000 nodes takes a while")
	}
	h := openHub(t, t.TempDir())
	defer h.Close()
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	f := fleetsim.Default(10000)
	f.Events, f.Batch = 10, 10
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := fleetsim.Publish(ctx, js, f, nil); err != nil {
		t.Fatal(err)
	}
	online := func(i int) bool { return i%4 != 0 }
	backlog := func(i int) int64 { return int64(i % 7) }
	sent, err := fleetsim.Heartbeats(nc, f, time.Now(), online, backlog)
	if err != nil {
		t.Fatal(err)
	}
	var wantBuffered int64
	for i := range f.Nodes {
		if online(i) {
			wantBuffered += backlog(i)
		}
	}
	total := int64(f.Nodes * f.Events)
	waitUntil(t, "every event and heartbeat at the hub", func() bool {
		p, err := h.Nodes(ctx, NodeQuery{Limit: 1})
		return err == nil && p.Totals.Events == total && p.Totals.Online == sent
	})

	// Totals, over the whole fleet whatever the page.
	page, err := h.Nodes(ctx, NodeQuery{Limit: 5, Prefix: "sim-00"})
	if err != nil {
		t.Fatal(err)
	}
	tot := page.Totals
	if tot.Nodes != f.Nodes || tot.Online != 7500 || tot.Events != total || tot.Buffered != wantBuffered || tot.Dropped != 0 || tot.Missing != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if len(page.Nodes) != 5 || page.Nodes[0].Node != "sim-0000" || page.Next == "" {
		t.Fatalf("prefix page %+v", page.Nodes)
	}
	// Every order pages through every node once.
	for _, sortBy := range []NodeSort{SortName, SortOffline, SortBacklog, SortMissing, SortRate} {
		seen := map[string]bool{}
		var list []NodeInfo
		q := NodeQuery{Limit: 777, Sort: sortBy}
		for {
			p, err := h.Nodes(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range p.Nodes {
				if seen[n.Node] {
					t.Fatalf("sort %s: node %s on two pages", sortBy, n.Node)
				}
				seen[n.Node] = true
				list = append(list, n)
			}
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		if len(seen) != f.Nodes {
			t.Fatalf("sort %s: %d nodes listed, want %d", sortBy, len(seen), f.Nodes)
		}
		for i := 1; i < len(list); i++ {
			a, b := list[i-1], list[i]
			bad := false
			switch sortBy {
			case SortName:
				bad = a.Node >= b.Node
			case SortOffline:
				bad = a.Online && !b.Online
			case SortBacklog:
				bad = a.Buffered < b.Buffered
			}
			if bad {
				t.Fatalf("sort %s: %+v before %+v", sortBy, a, b)
			}
		}
	}
	off := false
	if p, _ := h.Nodes(ctx, NodeQuery{Online: &off, Limit: MaxNodeLimit}); len(p.Nodes) != 2500 || p.Nodes[0].Online {
		t.Fatalf("offline filter: %d nodes", len(p.Nodes))
	}
	if _, err := h.Nodes(ctx, NodeQuery{Limit: MaxNodeLimit + 1}); err == nil {
		t.Fatal("a page over the limit was served")
	}

	// The oracle: every event, in merge order.
	var all []fleetEvent
	for i := range f.Nodes {
		for seq := 1; seq <= f.Events; seq++ {
			ts, r := f.Event(i, seq)
			all = append(all, fleetEvent{f.Node(i), uint64(seq), ts, r})
		}
	}
	slices.SortFunc(all, fleetLess)
	named := []string{f.Node(17), f.Node(4242), f.Node(9999), f.Node(0), f.Node(5000)}
	for _, tt := range []struct {
		pattern, where string
		keep           func(e fleetEvent) bool
		scope          func(node string) bool
	}{
		{"all", "", func(fleetEvent) bool { return true }, nil},
		{"all", `temp > 39.5`, func(e fleetEvent) bool { return e.r.Temp > 39.5 }, nil},
		{"any", `temp > 39.8 && site == "north"`, func(e fleetEvent) bool { return e.r.Temp > 39.8 && e.r.Site == "north" }, nil},
		{"any", `temp > 1000`, func(fleetEvent) bool { return false }, nil},
		{"multiple(" + joinNodes(named) + ")", `site == "north"`, func(e fleetEvent) bool { return e.r.Site == "north" },
			func(n string) bool { return slices.Contains(named, n) }},
		{"single(" + f.Node(1234) + ")", "", func(fleetEvent) bool { return true }, func(n string) bool { return n == f.Node(1234) }},
	} {
		t.Run(tt.pattern+" where "+tt.where, func(t *testing.T) {
			var want []fleetEvent
			perNode := map[string]int64{}
			for _, e := range all {
				if (tt.scope == nil || tt.scope(e.node)) && tt.keep(e) {
					want = append(want, e)
					perNode[e.node]++
				}
			}
			scope := f.Nodes
			if tt.scope != nil {
				scope = 0
				for i := range f.Nodes {
					if tt.scope(f.Node(i)) {
						scope++
					}
				}
			}
			wantHolds := len(perNode) == scope
			if tt.pattern[:3] == "any" {
				wantHolds = len(perNode) > 0
			}
			for _, count := range []bool{true, false} {
				req := pattern.Request{Pattern: tt.pattern, Where: tt.where, Limit: 10000, Count: count}
				var got []stream.Event
				for pages := 0; ; pages++ {
					q, err := pattern.Prepare(req)
					if err != nil {
						t.Fatal(err)
					}
					res, err := h.Query(ctx, q)
					if err != nil {
						t.Fatalf("count %v page %d: %v", count, pages, err)
					}
					if res.Holds != wantHolds {
						t.Fatalf("count %v: holds %v, want %v", count, res.Holds, wantHolds)
					}
					if len(res.Nodes) != scope {
						t.Fatalf("count %v: %d nodes in the answer, want %d", count, len(res.Nodes), scope)
					}
					if count {
						if *res.Count != int64(len(want)) {
							t.Fatalf("count %d, want %d", *res.Count, len(want))
						}
						for n, nr := range res.Nodes {
							if nr.Matched != perNode[n] {
								t.Fatalf("node %s matched %d, want %d", n, nr.Matched, perNode[n])
							}
						}
					}
					got = append(got, res.Matches...)
					if res.Next == "" {
						break
					}
					req.After = res.Next
				}
				if len(got) != len(want) {
					t.Fatalf("count %v: %d matches over every page, want %d", count, len(got), len(want))
				}
				for i := range got {
					w := want[i]
					if got[i].Node != w.node || got[i].Seq != w.seq || got[i].TS != w.ts {
						t.Fatalf("count %v: match %d is %s/%d@%d, want %s/%d@%d", count, i, got[i].Node, got[i].Seq, got[i].TS, w.node, w.seq, w.ts)
					}
				}
				if len(got) > 0 {
					var r fleetsim.Reading
					if err := json.Unmarshal(got[0].Data, &r); err != nil || r != want[0].r {
						t.Fatalf("first match data %s, want %+v", got[0].Data, want[0].r)
					}
				}
			}
		})
	}

	// Twenty queries over the whole fleet at once: none waits for another.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, _ := pattern.Prepare(pattern.Request{Pattern: "all", Where: fmt.Sprintf("temp > %d", 20+i%10), Count: i%2 == 0})
			res, err := h.Query(ctx, q)
			if err == nil && (len(res.Nodes) != f.Nodes || len(res.Matches) == 0) {
				err = fmt.Errorf("query %d: %d nodes, %d matches", i, len(res.Nodes), len(res.Matches))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func joinNodes(ns []string) string {
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}
