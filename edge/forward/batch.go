package forward

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

// groupByStream splits rows (in seq order) into one run per stream, each in seq
// order, in the order the streams first appear.
func groupByStream(rows []edge.Row) [][]edge.Row {
	idx := map[string]int{}
	var out [][]edge.Row
	for _, r := range rows {
		i, ok := idx[r.Stream]
		if !ok {
			i = len(out)
			idx[r.Stream] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// outgoing is one encoded events frame, not yet published.
type outgoing struct {
	msg         *nats.Msg
	stream      string
	first, last uint64
	count       int
	bytes       int64 // the events' data
	cost        int   // the bytes it puts on the connection
	paid        bool  // its tokens are reserved with the pacer
}

// encode makes rows of one stream into one events frame, or into several when
// the frame would be over the connection's maximum payload or, with a rate
// cap, would cost more than the pacer's burst. A single event over the burst
// stays one frame (the pacer takes its tokens in several goes); one over the
// maximum payload is an error.
func (f *Forwarder) encode(rows []edge.Row) ([]*outgoing, error) {
	recs := make([]stream.Record, len(rows))
	var data int64
	for i, r := range rows {
		recs[i] = stream.Record{Seq: r.Seq, TS: r.TS, Ingest: r.Ingest, Data: r.Data}
		data += int64(len(r.Data))
	}
	name := rows[0].Stream
	frame, err := stream.EncodeEventsV2(nil, f.Compress, f.Node, f.epoch, name, recs)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	first, last := rows[0].Seq, rows[len(rows)-1].Seq
	msg := nats.NewMsg(stream.Subject(f.Node, name))
	msg.Data = frame
	msg.Header.Set(jetstream.MsgIDHeader, stream.MsgID(f.Node, f.epoch, name, first, last))
	cost := pubCost(msg.Subject, msg.Header, frame, true)
	overPayload := false
	if limit := f.nc.MaxPayload(); limit > 0 && int64(len(frame)) > limit {
		if len(rows) == 1 {
			return nil, fmt.Errorf("event seq %d is %d bytes framed, over the hub's %d byte limit on messages", rows[0].Seq, len(frame), limit)
		}
		overPayload = true
	}
	if overPayload || (len(rows) > 1 && f.pace.burst() > 0 && cost > f.pace.burst()) {
		half := len(rows) / 2
		a, err := f.encode(rows[:half])
		if err != nil {
			return nil, err
		}
		b, err := f.encode(rows[half:])
		return append(a, b...), err
	}
	return []*outgoing{{msg: msg, stream: name, first: first, last: last, count: len(rows), bytes: data, cost: cost}}, nil
}

// send publishes an encoded frame and returns the batch that waits for its
// ack. The caller has paid its cost to the pacer.
func (f *Forwarder) send(o *outgoing) (*batch, error) {
	fut, err := f.js.PublishMsgAsync(o.msg)
	if err != nil {
		return nil, fmt.Errorf("publish batch %d-%d of stream %s: %w", o.first, o.last, o.stream, domainError(err))
	}
	f.uplinkEvents.Add(uint64(o.count))
	return &batch{stream: o.stream, first: o.first, last: o.last, count: o.count, bytes: o.bytes, fut: fut}, nil
}

// acked deletes an acknowledged batch's rows.
func (f *Forwarder) acked(ctx context.Context, b *batch) error {
	if err := f.Buffer.Delete(ctx, b.stream, b.first, b.last); err != nil {
		return fmt.Errorf("delete acknowledged batch %d-%d of stream %s: %w", b.first, b.last, b.stream, err)
	}
	f.sent.Add(uint64(b.count))
	f.batches.Add(1)
	f.sinceDrained += b.bytes
	return nil
}

// drained is called by the session when nothing is in flight and nothing
// more is buffered: it calls Drained when the backlog delivered since the
// buffer was last found empty holds at least DrainedBytes of data. A steady
// stream, which empties the buffer after every few batches, never does.
func (f *Forwarder) drained() {
	backlog := f.sinceDrained
	f.sinceDrained = 0
	if f.Drained != nil && backlog >= f.DrainedBytes {
		f.Drained()
	}
}

// settle waits for the batches still in flight and deletes the rows of those
// that were acknowledged; the others stay buffered. When ctx has ended (Close)
// it waits at most closeGrace. It reports whether any batch was acknowledged.
func (f *Forwarder) settle(ctx context.Context, q []*batch) bool {
	if len(q) == 0 {
		return false
	}
	wait := f.AckTimeout + time.Second
	if ctx.Err() != nil {
		wait = closeGrace
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	dctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
	defer cancel()
	acked := false
	for _, b := range q {
		select {
		case <-b.fut.Ok():
			if err := f.acked(dctx, b); err != nil {
				f.log.Warn().Err(err).Msg("acknowledged batch stays buffered and will be sent again")
				continue
			}
			acked = true
		case <-b.fut.Err():
		case <-deadline.C:
			return acked
		}
	}
	return acked
}
