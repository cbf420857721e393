package edge

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// readLeased reads the next rows after `after` and leases them, so that neither
// drop-oldest nor MaxAge takes them while they are in flight.
func (f *Forwarder) readLeased(ctx context.Context, after uint64) ([]Row, error) {
	rows, err := f.Buffer.Read(ctx, after, f.MaxEvents, min(f.MaxBytes, f.inflightBudget()))
	if err != nil {
		return nil, fmt.Errorf("read buffer: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	last := rows[len(rows)-1].Seq
	f.Buffer.Lease(last)
	if !f.mayDrop() {
		return rows, nil
	}
	// A drop that saw the previous lease may have taken some of these rows
	// between the read and the new lease. Read them again: that read waits for
	// such a drop to finish, and the lease keeps whatever it finds.
	again, err := f.Buffer.Read(ctx, after, len(rows), 0)
	if err != nil {
		return nil, fmt.Errorf("read buffer: %w", err)
	}
	n := 0
	for n < len(again) && again[n].Seq <= last {
		n++
	}
	if n == 0 {
		// Everything read was dropped: go on after it.
		return f.readLeased(ctx, last)
	}
	return again[:n], nil
}

// mayDrop reports whether the buffer may drop events now: it has a MaxAge, or
// it drops the oldest events when full and is at least half full.
func (f *Forwarder) mayDrop() bool {
	b := f.Buffer
	return b.MaxAge > 0 || (b.Policy != Reject && b.MaxBytes > 0 && b.Stats().FileBytes >= b.MaxBytes/2)
}

// groupByStream splits rows (in seq order) into one run per stream, each in seq
// order, in the order the streams first appear.
func groupByStream(rows []Row) [][]Row {
	idx := map[string]int{}
	var out [][]Row
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

// publish sends rows of one stream as one events frame, or as several when the
// frame would be over the connection's maximum payload. It returns the batches
// it published, even with an error.
func (f *Forwarder) publish(rows []Row) ([]*batch, error) {
	recs := make([]stream.Record, len(rows))
	for i, r := range rows {
		recs[i] = stream.Record{Seq: r.Seq, TS: r.TS, Data: r.Data}
	}
	name := rows[0].Stream
	frame, err := stream.EncodeEvents(nil, f.Node, f.epoch, name, recs)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if limit := f.nc.MaxPayload(); limit > 0 && int64(len(frame)) > limit {
		if len(rows) == 1 {
			return nil, fmt.Errorf("event seq %d is %d bytes framed, over the hub's %d byte limit on messages", rows[0].Seq, len(frame), limit)
		}
		half := len(rows) / 2
		a, err := f.publish(rows[:half])
		if err != nil {
			return a, err
		}
		b, err := f.publish(rows[half:])
		return append(a, b...), err
	}
	first, last := rows[0].Seq, rows[len(rows)-1].Seq
	msg := nats.NewMsg(stream.Subject(f.Node, name))
	msg.Data = frame
	msg.Header.Set(jetstream.MsgIDHeader, stream.MsgID(f.Node, f.epoch, name, first, last))
	fut, err := f.js.PublishMsgAsync(msg)
	if err != nil {
		return nil, fmt.Errorf("publish batch %d-%d of stream %s: %w", first, last, name, domainError(err))
	}
	return []*batch{{stream: name, first: first, last: last, count: len(rows), bytes: len(frame), fut: fut}}, nil
}

// acked deletes an acknowledged batch's rows.
func (f *Forwarder) acked(ctx context.Context, b *batch) error {
	if err := f.Buffer.Delete(ctx, b.stream, b.first, b.last); err != nil {
		return fmt.Errorf("delete acknowledged batch %d-%d of stream %s: %w", b.first, b.last, b.stream, err)
	}
	f.sent.Add(uint64(b.count))
	f.batches.Add(1)
	return nil
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
