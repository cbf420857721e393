package hubapi

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/web"
)

// collect returns the hub's figures for /metrics.
func (a *hubAPI) collect() []web.Sample {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := a.h.Stats(ctx)
	m := st.Materializer
	out := []web.Sample{
		{Name: "tributary_hub_messages_total", Help: "Stream messages materialized.", Type: prometheus.CounterValue, Value: float64(m.Messages)},
		{Name: "tributary_hub_events_total", Help: "Events newly indexed.", Type: prometheus.CounterValue, Value: float64(m.Events)},
		{Name: "tributary_hub_duplicate_events_total", Help: "Events received again and ignored by the unique index.", Type: prometheus.CounterValue, Value: float64(m.Duplicates)},
		{Name: "tributary_hub_bad_frames_total", Help: "Messages on edge subjects rejected as malformed.", Type: prometheus.CounterValue, Value: float64(m.BadFrames)},
		{Name: "tributary_hub_apply_errors_total", Help: "Index transactions and counter merges that failed and were tried again.", Type: prometheus.CounterValue, Value: float64(m.Errors)},
		{Name: "tributary_hub_refetched_messages_total", Help: "Stream messages read by the materializer itself to apply the stream in order where its consumer's delivery skipped ahead.", Type: prometheus.CounterValue, Value: float64(m.Refetched)},
		{Name: "tributary_hub_live_subscribers", Help: "Open live queries.", Type: prometheus.GaugeValue, Value: float64(st.LiveSubscribers)},
	}
	full := 0.0
	if st.StoreFull {
		full = 1
	}
	out = append(out,
		web.Sample{Name: "tributary_hub_store_full", Help: "1 while the hub's JetStream store is under its free-space reserve and refuses batches.", Type: prometheus.GaugeValue, Value: full},
		web.Sample{Name: "tributary_hub_store_free_bytes", Help: "Free space on the file system of the hub's JetStream store.", Type: prometheus.GaugeValue, Value: float64(st.StoreFreeBytes)})
	for _, reason := range slices.Sorted(maps.Keys(st.AuthFailures)) {
		out = append(out, web.Sample{Name: "tributary_hub_auth_failures_total", Help: "NATS connections and messages the hub refused, by reason.",
			Type: prometheus.CounterValue, Labels: [][2]string{{"reason", reason}}, Value: float64(st.AuthFailures[reason])})
	}
	if st.PendingErr == nil {
		out = append(out, web.Sample{Name: "tributary_hub_pending_messages", Help: "Stream messages not yet materialized.", Type: prometheus.GaugeValue, Value: float64(st.Pending)})
	}
	q := hub.NodeQuery{Limit: hub.MaxNodeLimit}
	for first := true; first || q.After != ""; first = false {
		page, err := a.h.Nodes(ctx, q)
		if err != nil {
			break
		}
		if first {
			t := page.Totals
			out = append(out,
				web.Sample{Name: "tributary_fleet_nodes", Help: "Nodes the hub has heard of.", Type: prometheus.GaugeValue, Value: float64(t.Nodes)},
				web.Sample{Name: "tributary_fleet_online", Help: "Nodes that sent a heartbeat within 15 s.", Type: prometheus.GaugeValue, Value: float64(t.Online)},
				web.Sample{Name: "tributary_fleet_events", Help: "Events the hub received from every node.", Type: prometheus.GaugeValue, Value: float64(t.Events)},
				web.Sample{Name: "tributary_fleet_buffered", Help: "The edges' backlogs as last reported, summed.", Type: prometheus.GaugeValue, Value: float64(t.Buffered)},
				web.Sample{Name: "tributary_fleet_dropped", Help: "Events the edges discarded and reported, summed.", Type: prometheus.GaugeValue, Value: float64(t.Dropped)},
				web.Sample{Name: "tributary_fleet_missing", Help: "Seqs neither received nor reported dropped, summed.", Type: prometheus.GaugeValue, Value: float64(t.Missing)},
			)
		}
		for _, n := range page.Nodes {
			l := [][2]string{{"node", n.Node}}
			online := 0.0
			if n.Online {
				online = 1
			}
			out = append(out,
				web.Sample{Name: "tributary_node_online", Help: "1 when the node sent a heartbeat within 15 s.", Type: prometheus.GaugeValue, Labels: l, Value: online},
				web.Sample{Name: "tributary_node_events", Help: "Events the hub holds for the node.", Type: prometheus.GaugeValue, Labels: l, Value: float64(n.Events)},
				web.Sample{Name: "tributary_node_buffered", Help: "The edge's backlog as last reported.", Type: prometheus.GaugeValue, Labels: l, Value: float64(n.Buffered)},
				web.Sample{Name: "tributary_node_dropped", Help: "Events the edge discarded and reported.", Type: prometheus.GaugeValue, Labels: l, Value: float64(n.Dropped)},
				web.Sample{Name: "tributary_node_missing", Help: "Seqs neither received nor reported dropped.", Type: prometheus.GaugeValue, Labels: l, Value: float64(n.Missing)},
				web.Sample{Name: "tributary_node_bad_frames", Help: "Rejected messages under the node's subjects.", Type: prometheus.GaugeValue, Labels: l, Value: float64(n.BadFrames)},
			)
		}
		q.After = page.Next
	}
	out = append(out, clusterSamples(ctx, a.h)...)
	out = append(out, web.Sample{Name: "tributary_hub_counter_kind_conflicts_total", Help: "Counter states ignored because a node reported a counter under another kind than the hub holds for it.", Type: prometheus.CounterValue, Value: float64(st.CounterKindConflicts)})
	// Counters whose sums overflow are left out; List returns the others.
	list, _ := a.h.Counters(ctx)
	for _, c := range list {
		out = append(out, counterSamples(c)...)
	}
	return out
}

// clusterSamples returns the cluster's health as this hub sees it, from the
// same view as GET /api/v1/cluster: how many peers there are, how many are
// active and current, and whether the EDGE stream has a leader and it is this
// hub. Nothing while the view is not to be had (a hub not yet open).
func clusterSamples(ctx context.Context, h Hub) []web.Sample {
	st, err := h.Cluster(ctx)
	if err != nil {
		return nil
	}
	var active, current int
	for _, p := range st.Peers {
		if p.Active {
			active++
		}
		if p.Current {
			current++
		}
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	help := "Servers of the hub's JetStream cluster: all, active (reachable) and current (the EDGE stream caught up with its leader)."
	return []web.Sample{
		{Name: "tributary_hub_cluster_peers", Help: help, Type: prometheus.GaugeValue, Labels: [][2]string{{"state", "all"}}, Value: float64(len(st.Peers))},
		{Name: "tributary_hub_cluster_peers", Help: help, Type: prometheus.GaugeValue, Labels: [][2]string{{"state", "active"}}, Value: float64(active)},
		{Name: "tributary_hub_cluster_peers", Help: help, Type: prometheus.GaugeValue, Labels: [][2]string{{"state", "current"}}, Value: float64(current)},
		{Name: "tributary_hub_stream_has_leader", Help: "1 while the EDGE stream has a leader (0: no quorum, or an election).", Type: prometheus.GaugeValue, Value: flag(st.StreamLeader != "")},
		{Name: "tributary_hub_stream_leader", Help: "1 when this hub's server leads the EDGE stream.", Type: prometheus.GaugeValue, Value: flag(st.StreamLeader != "" && st.StreamLeader == st.Server)},
	}
}

// counterSamples returns one counter's series: its kind as an info gauge, its
// value when it has one (a sum beyond ±2⁵³ loses precision as a float), and
// for a last counter the time of the write that is its value.
func counterSamples(c counters.Counter) []web.Sample {
	name := [][2]string{{"name", c.Name}}
	out := []web.Sample{{Name: "tributary_counter_info", Help: "1 for each distributed counter, with its kind: sum, max, min or last.", Type: prometheus.GaugeValue,
		Labels: [][2]string{{"name", c.Name}, {"kind", c.Kind.String()}}, Value: 1}}
	if v, ok := c.Value.Float64(); ok {
		out = append(out, web.Sample{Name: "tributary_counter_value", Help: "Fleet-wide value of each distributed counter: the sum, the largest, the smallest or the newest value.", Type: prometheus.GaugeValue, Labels: name, Value: v})
	}
	if c.Kind == counters.KindLast && c.Value.Set {
		out = append(out, web.Sample{Name: "tributary_counter_updated_timestamp_seconds", Help: "Wall time of the write that is a last counter's value, in Unix seconds.", Type: prometheus.GaugeValue, Labels: name, Value: float64(c.Updated) / 1000})
	}
	return out
}
