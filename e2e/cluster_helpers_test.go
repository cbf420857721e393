package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// clusterInfo is GET /api/v1/cluster as the contract names its fields.
type clusterInfo struct {
	Name      string `json:"name"`
	Clustered bool   `json:"clustered"`
	Cluster   string `json:"cluster"`
	Peers     []struct {
		Name    string `json:"name"`
		Current bool   `json:"current"`
		Active  bool   `json:"active"`
	} `json:"peers"`
	StreamLeader string  `json:"stream_leader"`
	Replicas     int     `json:"replicas"`
	Consumer     string  `json:"consumer"`
	Pending      *uint64 `json:"pending"`
}

// cluster returns the hub's view of its cluster, or false when it does not
// answer.
func (h *hubProc) cluster() (clusterInfo, bool) {
	var c clusterInfo
	return c, tryGetJSON(h.url()+"/api/v1/cluster", &c)
}

// healthy reports whether the hub answers /healthz with 200.
func (h *hubProc) healthy() bool {
	resp, err := http.Get(h.url() + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// hubCluster is hubs started with --cluster and --peers on loopback, or
// started against an external deployment with --nats-url.
type hubCluster struct {
	t    *testing.T
	hubs []*hubProc
	by   map[string]*hubProc
}

// startHubCluster starts n hubs named hub-1 … hub-n that form one cluster,
// all at once (each waits for a quorum before it is ready), and waits until
// every one is ready.
func startHubCluster(t *testing.T, n int, extra ...string) *hubCluster {
	t.Helper()
	var routes []string
	for i := 0; i < n; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(t)))
	}
	c := &hubCluster{t: t, by: map[string]*hubProc{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("hub-%d", i+1)
		args := append([]string{"--name", name, "--cluster", strings.TrimPrefix(routes[i], "nats://"),
			"--peers", strings.Join(routes, ",")}, extra...)
		c.add(name, t.TempDir(), args...)
	}
	c.waitReady(c.hubs...)
	return c
}

// add starts one hub process with --data, --http, --nats and --max-store
// chosen here, and args.
func (c *hubCluster) add(name, dir string, args ...string) *hubProc {
	h := &hubProc{dir: dir, httpPort: proctest.FreePort(c.t), nats: proctest.FreePort(c.t)}
	all := append([]string{"--data", dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "1GiB"}, args...)
	h.proc = startProc(c.t, name, "hub", all...)
	c.hubs = append(c.hubs, h)
	c.by[name] = h
	return h
}

// waitReady waits until each hub answers /healthz, all of them at once.
func (c *hubCluster) waitReady(hs ...*hubProc) {
	c.t.Helper()
	waitFor(c.t, "hubs ready", 90*time.Second, func() bool {
		for _, h := range hs {
			if !h.healthy() {
				return false
			}
		}
		return true
	})
}

// natsURLs is every hub's NATS URL, comma-separated: what edges get in --hub.
func (c *hubCluster) natsURLs() string {
	var us []string
	for _, h := range c.hubs {
		us = append(us, h.natsURL())
	}
	return strings.Join(us, ",")
}

// streamLeader asks the hubs that answer which hub leads the EDGE stream,
// waiting until one names a leader that is one of the hubs in up.
func (c *hubCluster) streamLeader(up ...*hubProc) *hubProc {
	c.t.Helper()
	var leader *hubProc
	waitFor(c.t, "a stream leader", 60*time.Second, func() bool {
		for _, h := range up {
			if st, ok := h.cluster(); ok && c.by[st.StreamLeader] != nil {
				for _, u := range up {
					if u == c.by[st.StreamLeader] {
						leader = u
						return true
					}
				}
			}
		}
		return false
	})
	return leader
}

// name returns the hub's name in the cluster.
func (c *hubCluster) name(h *hubProc) string {
	for n, x := range c.by {
		if x == h {
			return n
		}
	}
	return "?"
}

// ackedSeqs returns every edge's acked_seq: how far JetStream has
// acknowledged its batches.
func ackedSeqs(t *testing.T, edges []*edgeProc) []uint64 {
	t.Helper()
	out := make([]uint64, len(edges))
	for i, e := range edges {
		out[i] = e.status(t).AckedSeq
	}
	return out
}

// lastSeqs returns every edge's last_seq: the last event it took in.
func lastSeqs(t *testing.T, edges []*edgeProc) []uint64 {
	t.Helper()
	out := make([]uint64, len(edges))
	for i, e := range edges {
		out[i] = e.status(t).LastSeq
	}
	return out
}

// waitAcked waits until every edge's acked_seq has reached from[i]+n, and
// returns how long that took.
func waitAcked(t *testing.T, what string, edges []*edgeProc, from []uint64, n uint64, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	waitFor(t, what, timeout, func() bool {
		for i, s := range ackedSeqs(t, edges) {
			if s < from[i]+n {
				return false
			}
		}
		return true
	})
	return time.Since(t0)
}

// pacedIngest sends 25 events with unique ids to e every 40 ms until stop
// closes, recording what was sent and acknowledged in l. The pace keeps two
// shared cores able to run three hubs beside it.
func pacedIngest(e *edgeProc, l *ledger, streamName string, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		l.send(e, streamName, n)
	}
}

// workload runs pacedIngest into streamName and, unless counter is empty,
// incrLoop on counter on every edge until halt is called (halt may be called
// again; it also runs at the test's end). acked and unanswered are each
// edge's counter increments.
type workload struct {
	ledgers           []*ledger
	acked, unanswered []int64
	halt              func()
}

func startWorkload(t *testing.T, edges []*edgeProc, streamName, counter string) *workload {
	w := &workload{acked: make([]int64, len(edges)), unanswered: make([]int64, len(edges))}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, e := range edges {
		w.ledgers = append(w.ledgers, newLedger())
		wg.Add(1)
		go pacedIngest(e, w.ledgers[i], streamName, stop, &wg)
		if counter != "" {
			wg.Add(1)
			go incrLoop(e, counter, &w.acked[i], &w.unanswered[i], &mu, stop, &wg)
		}
	}
	var once sync.Once
	w.halt = func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(w.halt)
	return w
}

// incrLoop adds 1 to counter name on e every 100 ms until stop closes,
// counting the increments the edge acknowledged and those it did not answer.
func incrLoop(e *edgeProc, name string, acked, unanswered *int64, mu *sync.Mutex, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		resp, err := client.Post(e.url()+"/api/v1/counters/"+name, "application/json", bytes.NewReader([]byte(`{"delta":1}`)))
		mu.Lock()
		if err != nil {
			*unanswered++
		} else {
			if resp.StatusCode == http.StatusOK {
				*acked++
			} else {
				*unanswered++
			}
			resp.Body.Close()
		}
		mu.Unlock()
	}
}

// checkExactlyOnce checks that hub h holds every event l acknowledged for e,
// once, nothing that was never sent, and exactly the edge's committed seqs.
func checkExactlyOnce(t *testing.T, hname string, h *hubProc, e *edgeProc, l *ledger, streamName string, st edgeStatus) {
	t.Helper()
	got := h.all(t, map[string]string{"pattern": "single(" + e.node + ")", "stream": streamName})
	seen := map[string]int{}
	seqs := map[uint64]bool{}
	for _, ev := range got {
		var d struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("%s: event data %s: %v", hname, ev.Data, err)
		}
		seen[d.ID]++
		if seqs[ev.Seq] {
			t.Errorf("%s: %s seq %d twice", hname, e.node, ev.Seq)
		}
		seqs[ev.Seq] = true
	}
	extra, twice, lost := 0, 0, 0
	for id, n := range seen {
		if n != 1 {
			twice++
		}
		if !l.sent[id] {
			extra++
		}
	}
	for id := range l.acked {
		if seen[id] == 0 {
			lost++
		}
	}
	if extra+twice+lost > 0 || uint64(len(got)) != st.LastSeq {
		t.Errorf("%s, %s: %d events (edge committed %d), %d acknowledged lost, %d held twice, %d never sent",
			hname, e.node, len(got), st.LastSeq, lost, twice, extra)
	}
}

// sameAnswers checks that every hub answers a set of queries exactly as the
// first one does: every event of every node with its receive time, counts
// under a predicate, the node list's figures, the gaps and the counters.
func sameAnswers(t *testing.T, names []string, hubs []*hubProc, nodes []string, streamName string) {
	t.Helper()
	answers := func(h *hubProc) map[string]string {
		out := map[string]string{}
		for _, n := range nodes {
			evs := h.all(t, map[string]string{"pattern": "single(" + n + ")", "stream": streamName})
			b, _ := json.Marshal(evs)
			out["events of "+n] = string(b)
			_, gaps := httpGet(t, h.url()+"/api/v1/nodes/"+n+"/gaps")
			out["gaps of "+n] = string(gaps)
		}
		for _, q := range []map[string]string{
			{"pattern": "all", "where": "v > 50", "stream": streamName},
			{"pattern": "any", "where": "v == 99"},
			{"pattern": "multiple(" + strings.Join(nodes[:2], ",") + ")", "where": "v % 7 == 0"},
		} {
			r := h.query(t, map[string]string{"pattern": q["pattern"], "where": q["where"], "stream": q["stream"], "count": "true", "limit": "50"})
			r.Scanned = 0
			b, _ := json.Marshal(r)
			out[fmt.Sprint(q)] = string(b)
		}
		var page struct {
			Nodes []map[string]any `json:"nodes"`
		}
		getJSON(t, h.url()+"/api/v1/nodes", &page)
		var rows []string
		for _, n := range page.Nodes {
			rows = append(rows, fmt.Sprint(n["node"], n["events"], n["epochs"], n["high_seq"], n["dropped"], n["missing"]))
		}
		sort.Strings(rows)
		out["nodes"] = strings.Join(rows, "\n")
		_, ctrs := httpGet(t, h.url()+"/api/v1/counters")
		out["counters"] = string(ctrs)
		return out
	}
	want := answers(hubs[0])
	for i, h := range hubs[1:] {
		got := answers(h)
		if !reflect.DeepEqual(got, want) {
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("%s answers %s unlike %s:\n%s\nagainst\n%s", names[i+1], k, names[0], tail(got[k], 400), tail(want[k], 400))
				}
			}
		}
	}
}

// checkHoldsAll waits until every edge has drained, then checks every hub: it
// holds each edge's events in streamName exactly once (against w's ledgers),
// and its counter equals the increments each edge acknowledged, node by node
// and in total. No edge of w may have left an increment unanswered. It returns
// the edges' node names.
func (c *hubCluster) checkHoldsAll(t *testing.T, edges []*edgeProc, w *workload, streamName, counter string) []string {
	t.Helper()
	sts := make([]edgeStatus, len(edges))
	var nodes []string
	var want int64
	for i, e := range edges {
		nodes = append(nodes, e.node)
		waitFor(t, e.node+" to drain", 60*time.Second, func() bool {
			sts[i] = e.status(t)
			return sts[i].Buffered == 0 && sts[i].AckedSeq == sts[i].LastSeq
		})
		if w.unanswered[i] > 0 {
			t.Errorf("%s: %d counter increments unanswered by an edge that never died", e.node, w.unanswered[i])
		}
		want += w.acked[i]
	}
	for _, h := range c.hubs {
		for i, e := range edges {
			waitFor(t, c.name(h)+" to hold every event of "+e.node, 60*time.Second, func() bool {
				return h.count(t, map[string]string{"pattern": "single(" + e.node + ")", "stream": streamName}) == int64(sts[i].LastSeq)
			})
			checkExactlyOnce(t, c.name(h), h, e, w.ledgers[i], streamName, sts[i])
		}
		pollUntil(t, c.name(h)+"'s counter to equal the acknowledged increments", 60*time.Second, func() string {
			var ctr struct {
				Value int64            `json:"value"`
				Nodes map[string]int64 `json:"nodes"`
			}
			if !tryGetJSON(h.url()+"/api/v1/counters/"+counter, &ctr) {
				return "no answer"
			}
			for i, e := range edges {
				if ctr.Nodes[e.node] != w.acked[i] {
					return fmt.Sprintf("%s: %d, acknowledged %d", e.node, ctr.Nodes[e.node], w.acked[i])
				}
			}
			if ctr.Value != want {
				return fmt.Sprintf("value %d, acknowledged %d", ctr.Value, want)
			}
			return ""
		})
	}
	var events uint64
	for _, st := range sts {
		events += st.LastSeq
	}
	t.Logf("%d events from %d edges and %d increments, on each of %d hubs exactly once", events, len(edges), want, len(c.hubs))
	return nodes
}
