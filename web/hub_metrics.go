package web

import (
	"context"
	"time"
)

// collect returns the hub's figures for /metrics.
func (a *hubAPI) collect() []Sample {
	m := a.h.Materializer
	out := []Sample{
		{Name: "tributary_hub_messages_total", Help: "Stream messages materialized.", Type: "counter", Value: float64(m.Messages.Load())},
		{Name: "tributary_hub_events_total", Help: "Events newly indexed.", Type: "counter", Value: float64(m.Events.Load())},
		{Name: "tributary_hub_duplicate_events_total", Help: "Events received again and ignored by the unique index.", Type: "counter", Value: float64(m.Duplicates.Load())},
		{Name: "tributary_hub_bad_frames_total", Help: "Messages on edge subjects rejected as malformed.", Type: "counter", Value: float64(m.BadFrames.Load())},
		{Name: "tributary_hub_apply_errors_total", Help: "Index transactions that failed and were retried.", Type: "counter", Value: float64(m.Errors.Load())},
		{Name: "tributary_hub_live_subscribers", Help: "Open live queries.", Type: "gauge", Value: float64(a.h.Live.Count())},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p, err := m.Pending(ctx); err == nil {
		out = append(out, Sample{Name: "tributary_hub_pending_messages", Help: "Stream messages not yet materialized.", Type: "gauge", Value: float64(p)})
	}
	if nodes, err := a.h.Nodes(ctx); err == nil {
		for _, n := range nodes {
			l := [][2]string{{"node", n.Node}}
			online := 0.0
			if n.Online {
				online = 1
			}
			out = append(out,
				Sample{Name: "tributary_node_online", Help: "1 when the node sent a heartbeat within 15 s.", Type: "gauge", Labels: l, Value: online},
				Sample{Name: "tributary_node_events", Help: "Events the hub holds for the node.", Type: "gauge", Labels: l, Value: float64(n.Events)},
				Sample{Name: "tributary_node_buffered", Help: "The edge's backlog as last reported.", Type: "gauge", Labels: l, Value: float64(n.Buffered)},
				Sample{Name: "tributary_node_dropped", Help: "Events the edge discarded and reported.", Type: "gauge", Labels: l, Value: float64(n.Dropped)},
				Sample{Name: "tributary_node_missing", Help: "Seqs neither received nor reported dropped.", Type: "gauge", Labels: l, Value: float64(n.Missing)},
				Sample{Name: "tributary_node_bad_frames", Help: "Rejected messages under the node's subjects.", Type: "gauge", Labels: l, Value: float64(n.BadFrames)},
			)
		}
	}
	if list, err := a.h.Counters.List(ctx); err == nil {
		for _, c := range list {
			out = append(out, Sample{Name: "tributary_counter_value", Help: "Fleet-wide value of each distributed counter.", Type: "gauge", Labels: [][2]string{{"name", c.Name}}, Value: float64(c.Value)})
		}
	}
	return out
}
