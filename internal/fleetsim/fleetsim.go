// Package fleetsim simulates a fleet of edge agents by publishing what they
// would — events frames, heartbeats and counter states — straight to a hub's
// NATS, so that tests and the benchmark can run fleets of 10,000 nodes without
// 10,000 processes. Every event is a pure function of its node and seq, so a
// test can compute what the hub must answer.
package fleetsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// Fleet describes a simulated fleet.
type Fleet struct {
	// Nodes is the number of nodes, named Prefix + a zero-padded index.
	Nodes  int
	Prefix string
	// Events is the number of events per node, sent in frames of Batch.
	Events, Batch int
	// Stream is the stream the events are sent on.
	Stream string
	// Start is the event time of the fleet's first event; Spacing the event
	// time between two events of one node. Node i starts i*Spacing/Nodes
	// after Start, so the nodes' events interleave in time.
	Start   time.Time
	Spacing time.Duration
	// Epoch is every node's buffer epoch.
	Epoch string
	// Codec compresses the frames (wire format v2).
	Codec stream.Codec
	// Window is the most publishes awaiting their acks at once.
	Window int
}

// Default returns a fleet of n nodes with 100 events each, one event per
// second per node, from 2026-01-01T00:00:00Z.
func Default(n int) Fleet {
	return Fleet{Nodes: n, Prefix: "sim-", Events: 100, Batch: 100, Stream: "sensors",
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Spacing: time.Second, Epoch: "sim0", Codec: stream.CodecZstd, Window: 256}
}

// Node returns the name of node i.
func (f Fleet) Node(i int) string {
	width := len(fmt.Sprint(max(f.Nodes-1, 0)))
	return fmt.Sprintf("%s%0*d", f.Prefix, width, i)
}

// Sites are the values of the events' site field.
var Sites = []string{"north", "south", "east", "west"}

// Reading is one simulated event's data.
type Reading struct {
	Temp     float64 `json:"temp"`
	Humidity float64 `json:"humidity"`
	Site     string  `json:"site"`
	Sensor   string  `json:"sensor"`
	Status   string  `json:"status"`
}

// Event returns node i's event seq (1-based): its event time and data.
func (f Fleet) Event(i, seq int) (int64, Reading) {
	ts := f.Start.UnixNano() + int64(i)*int64(f.Spacing)/int64(max(f.Nodes, 1)) + int64(seq-1)*int64(f.Spacing)
	h := uint64(i)*2654435761 ^ uint64(seq)*40503
	r := Reading{
		Temp:     float64(150+int(h%250)) / 10, // 15.0 to 39.9
		Humidity: float64(300+int((h>>8)%500)) / 10,
		Site:     Sites[(i+seq)%len(Sites)],
		Sensor:   fmt.Sprintf("s-%d", i%50),
		Status:   "ok",
	}
	return ts, r
}

// Frame returns node i's events frame holding seqs first to last.
func (f Fleet) Frame(i, first, last int) ([]byte, error) {
	recs := make([]stream.Record, 0, last-first+1)
	for seq := first; seq <= last; seq++ {
		ts, r := f.Event(i, seq)
		data, _ := json.Marshal(r)
		recs = append(recs, stream.Record{Seq: uint64(seq), TS: ts, Ingest: ts, Data: data})
	}
	return stream.EncodeEventsV2(nil, f.Codec, f.Node(i), f.Epoch, f.Stream, recs)
}

// Publish publishes every node's events through JetStream, Window at a time,
// and returns once every one is acknowledged. It reports progress to
// progress, when set, with the number of events acknowledged so far.
func Publish(ctx context.Context, js jetstream.JetStream, f Fleet, progress func(events int)) error {
	if f.Batch < 1 || f.Events < 0 || f.Nodes < 0 {
		return errors.New("fleetsim: batch must be positive")
	}
	window := max(f.Window, 1)
	type sent struct {
		fut jetstream.PubAckFuture
		n   int
	}
	var q []sent
	acked := 0
	wait := func(s sent) error {
		select {
		case <-s.fut.Ok():
		case err := <-s.fut.Err():
			return fmt.Errorf("fleetsim: publish: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
		acked += s.n
		if progress != nil {
			progress(acked)
		}
		return nil
	}
	// Batch by batch across the fleet, as live nodes would send them.
	for first := 1; first <= f.Events; first += f.Batch {
		last := min(first+f.Batch-1, f.Events)
		for i := range f.Nodes {
			b, err := f.Frame(i, first, last)
			if err != nil {
				return err
			}
			m := nats.NewMsg(stream.Subject(f.Node(i), f.Stream))
			m.Data = b
			m.Header.Set(jetstream.MsgIDHeader, stream.MsgID(f.Node(i), f.Epoch, f.Stream, uint64(first), uint64(last)))
			fut, err := js.PublishMsgAsync(m)
			if err != nil {
				return fmt.Errorf("fleetsim: publish: %w", err)
			}
			q = append(q, sent{fut, last - first + 1})
			if len(q) >= window {
				if err := wait(q[0]); err != nil {
					return err
				}
				q = q[1:]
			}
		}
	}
	for _, s := range q {
		if err := wait(s); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeat returns node i's heartbeat frame with the given backlog, stamped
// with now.
func (f Fleet) Heartbeat(i int, buffered int64, now time.Time) ([]byte, error) {
	hb := stream.Heartbeat{Buffered: buffered, LastSeq: uint64(f.Events), AckedSeq: uint64(f.Events), Sent: uint64(f.Events), Time: now.UnixNano()}
	return stream.EncodeControlV2(stream.KindHeartbeat, stream.CodecNone, f.Node(i), f.Epoch, hb)
}

// Heartbeats publishes one heartbeat per node for which online returns true
// (every node when online is nil), with backlog(i) as its backlog, and
// flushes. It returns the number sent.
func Heartbeats(nc *nats.Conn, f Fleet, now time.Time, online func(i int) bool, backlog func(i int) int64) (int, error) {
	n := 0
	for i := range f.Nodes {
		if online != nil && !online(i) {
			continue
		}
		var buffered int64
		if backlog != nil {
			buffered = backlog(i)
		}
		b, err := f.Heartbeat(i, buffered, now)
		if err != nil {
			return n, err
		}
		if err := nc.Publish(stream.HeartbeatSubject(f.Node(i)), b); err != nil {
			return n, fmt.Errorf("fleetsim: heartbeat: %w", err)
		}
		n++
	}
	return n, nc.Flush()
}
