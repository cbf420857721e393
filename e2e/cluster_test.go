package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterLosesNothingWhenHubsDie runs three hubs (R3) and three edges
// with continuous ingest and counter increments, SIGKILLs the EDGE stream's
// leader mid-flow, later a second hub (the cluster has no quorum then, and
// edges buffer), and restarts both. Every acknowledged event is then on every
// hub exactly once and nothing else is; each hub's counter equals the
// increments the edges acknowledged; and the restarted hubs answer queries
// exactly like the one that never died.
func TestClusterLosesNothingWhenHubsDie(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster crash test")
	}
	c := startHubCluster(t, 3)
	for _, h := range c.hubs {
		st, ok := h.cluster()
		if !ok || !st.Clustered || st.Replicas != 3 || len(st.Peers) != 3 || st.Consumer != "materializer-"+c.name(h) {
			t.Fatalf("%s: cluster %+v", c.name(h), st)
		}
	}
	// /metrics says the same: three peers, every one active and current, and
	// one hub of the three leading the stream.
	clusterMetrics(t, c.hubs, 3, 3)
	var edges []*edgeProc
	for i := 1; i <= 3; i++ {
		edges = append(edges, startEdge(t, fmt.Sprintf("cl-%d", i), t.TempDir(), c.natsURLs()))
	}
	w := startWorkload(t, edges, "cl", "hits")
	ledgers, halt := w.ledgers, w.halt
	edgeAcks := func(what string, n int) {
		t.Helper()
		before := make([]int, len(ledgers))
		for i, l := range ledgers {
			before[i] = l.ackedCount()
		}
		waitFor(t, what, 60*time.Second, func() bool {
			for i, l := range ledgers {
				if l.ackedCount() < before[i]+n {
					return false
				}
			}
			return true
		})
	}

	waitAcked(t, "batches acknowledged by the cluster", edges, ackedSeqs(t, edges), 200, 60*time.Second)
	first := c.streamLeader(c.hubs...)
	t.Logf("SIGKILL %s, the stream leader", c.name(first))
	first.kill()
	// An ack sent just before the kill may still arrive: count from the
	// events taken in after it, which only the other hubs can acknowledge.
	at := lastSeqs(t, edges)
	took := waitAcked(t, "acknowledged batches through the other hubs", edges, at, 1, 60*time.Second)
	t.Logf("failover: every edge had an event taken in after the leader's SIGKILL acknowledged %v after it", took.Round(10*time.Millisecond))
	waitAcked(t, "ingest through two hubs", edges, ackedSeqs(t, edges), 200, 60*time.Second)

	var up []*hubProc
	for _, h := range c.hubs {
		if h != first {
			up = append(up, h)
		}
	}
	waitFor(t, "the survivors to see "+c.name(first)+" gone", 30*time.Second, func() bool {
		for _, h := range up {
			st, ok := h.cluster()
			if !ok || st.StreamLeader == "" || st.StreamLeader == c.name(first) {
				return false
			}
			for _, p := range st.Peers {
				if p.Active != (p.Name != c.name(first)) {
					return false
				}
			}
		}
		return true
	})
	clusterMetrics(t, up, 3, 2)
	second := c.streamLeader(up...)
	t.Logf("SIGKILL %s, the new stream leader: one hub of three is left, without a quorum", c.name(second))
	second.kill()
	edgeAcks("edges taking in events while the cluster has no quorum", 200)

	first.start()
	second.start()
	c.waitReady(first, second)
	waitAcked(t, "ingest through the restarted cluster", edges, ackedSeqs(t, edges), 200, 90*time.Second)
	halt()

	nodes := c.checkHoldsAll(t, edges, w, "cl", "hits")
	// The hub that never died first, then the two that did.
	order := []*hubProc{}
	for _, h := range c.hubs {
		if h != first && h != second {
			order = append(order, h)
		}
	}
	order = append(order, first, second)
	var names []string
	for _, h := range order {
		names = append(names, c.name(h))
	}
	sameAnswers(t, names, order, nodes, "cl")
}

// TestClusterHubRebuildsADeletedIndex deletes one hub's index file while the
// cluster runs and edges ingest: the hub notices, exits so that it is started
// again, and rebuilds its index from the replicated stream through its own
// consumer — the other hubs' consumers are not touched — until it answers
// exactly like the others.
func TestClusterHubRebuildsADeletedIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startHubCluster(t, 3)
	var edges []*edgeProc
	for i := 1; i <= 2; i++ {
		edges = append(edges, startEdge(t, fmt.Sprintf("ix-%d", i), t.TempDir(), c.natsURLs()))
	}
	w := startWorkload(t, edges, "ix", "")
	ledgers, halt := w.ledgers, w.halt
	waitAcked(t, "batches acknowledged by the cluster", edges, ackedSeqs(t, edges), 300, 60*time.Second)

	nc, err := nats.Connect(c.natsURLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	created := func(hub string) time.Time {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, "EDGE", "materializer-"+hub)
		if err != nil {
			t.Fatalf("consumer of %s: %v", hub, err)
		}
		return cons.CachedInfo().Created
	}
	before := map[string]time.Time{}
	for _, n := range []string{"hub-1", "hub-2", "hub-3"} {
		before[n] = created(n)
	}

	h2 := c.by["hub-2"]
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		if err := os.Remove(filepath.Join(h2.dir, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	waitFor(t, "hub-2 to exit on its own", 30*time.Second, func() bool {
		select {
		case <-h2.done:
			return true
		default:
			return false
		}
	})
	if code := h2.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(h2.out.String(), "index file was deleted") {
		t.Fatalf("hub-2 exited with %d; output: %s", code, tail(h2.out.String(), 2000))
	}
	// What its supervisor (systemd's Restart=always) does.
	h2.start()
	c.waitReady(h2)
	waitAcked(t, "ingest through the cluster", edges, ackedSeqs(t, edges), 200, 60*time.Second)
	halt()

	sts := make([]edgeStatus, len(edges))
	var nodes []string
	for i, e := range edges {
		nodes = append(nodes, e.node)
		waitFor(t, e.node+" to drain", 60*time.Second, func() bool {
			sts[i] = e.status(t)
			return sts[i].Buffered == 0 && sts[i].AckedSeq == sts[i].LastSeq
		})
		for _, h := range c.hubs {
			waitFor(t, c.name(h)+" to hold every event of "+e.node, 60*time.Second, func() bool {
				return h.count(t, map[string]string{"pattern": "single(" + e.node + ")", "stream": "ix"}) == int64(sts[i].LastSeq)
			})
		}
		checkExactlyOnce(t, "hub-2", h2, e, ledgers[i], "ix", sts[i])
	}
	sameAnswers(t, []string{"hub-1", "hub-2", "hub-3"}, []*hubProc{c.by["hub-1"], h2, c.by["hub-3"]}, nodes, "ix")
	if !created("hub-2").After(before["hub-2"]) {
		t.Error("hub-2's consumer was not recreated for the rebuild")
	}
	for _, n := range []string{"hub-1", "hub-3"} {
		if !created(n).Equal(before[n]) {
			t.Errorf("%s's consumer was recreated by hub-2's rebuild", n)
		}
	}
}

// clusterMetrics waits until the /metrics of every hub in hubs shows all
// peers, active of them active, a leader for the EDGE stream, and exactly one
// of hubs leading it.
func clusterMetrics(t *testing.T, hubs []*hubProc, all, active int) {
	t.Helper()
	pollUntil(t, "the cluster's health in /metrics", 30*time.Second, func() string {
		leaders := 0
		for _, h := range hubs {
			code, page := httpGet(t, h.url()+"/metrics")
			if code != 200 {
				return fmt.Sprintf("/metrics: %d", code)
			}
			for _, want := range []struct {
				series string
				v      float64
			}{
				{`tributary_hub_cluster_peers{state="all"}`, float64(all)},
				{`tributary_hub_cluster_peers{state="active"}`, float64(active)},
				{"tributary_hub_stream_has_leader", 1},
			} {
				if v, ok := metricValue(t, string(page), want.series); !ok || v != want.v {
					return fmt.Sprintf("%s: %v (present %v), want %v", want.series, v, ok, want.v)
				}
			}
			v, _ := metricValue(t, string(page), "tributary_hub_stream_leader")
			leaders += int(v)
		}
		if leaders != 1 {
			return fmt.Sprintf("%d hubs say they lead the stream", leaders)
		}
		return ""
	})
}
