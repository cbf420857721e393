package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

// heartbeat publishes the buffer's and the uplink's figures on ctl.<node>.hb,
// outside the EDGE stream, once the pacer lets it. It is a plain NATS
// publish: a lost heartbeat is replaced by the next one. It returns an error
// only when ctx ends while it waits for the pacer.
func (f *Forwarder) heartbeat(ctx context.Context) error {
	st := f.Buffer.Stats()
	hb := stream.Heartbeat{
		Buffered:      st.Buffered,
		BufferedBytes: st.BufferedBytes,
		Dropped:       st.Dropped,
		LastSeq:       st.LastSeq,
		AckedSeq:      st.AckedSeq,
		Sent:          f.sent.Load(),
		UplinkBytes:   f.uplinkBytes.Load(),
		UplinkEvents:  f.uplinkEvents.Load(),
		Time:          f.Now().UnixNano(),
	}
	if off, rtt, ok := f.ClockOffset(); ok {
		hb.ClockOffset, hb.ClockRTT = int64(off), int64(rtt)
	}
	frame, err := stream.EncodeControlV2(stream.KindHeartbeat, stream.CodecNone, f.Node, f.epoch, hb)
	if err != nil {
		f.log.Error().Err(err).Msg("encode heartbeat")
		return nil
	}
	subject := stream.HeartbeatSubject(f.Node)
	if err := f.pace.wait(ctx, pubCost(subject, nil, frame, false)); err != nil {
		return err
	}
	if err := f.nc.Publish(subject, frame); err != nil {
		f.log.Debug().Err(err).Msg("heartbeat not sent")
		return nil
	}
	f.heartbeats.Add(1)
	return nil
}

// sendControl publishes pending drop reports and counter states and marks them
// sent after their acks.
func (f *Forwarder) sendControl(ctx context.Context) error {
	drops, err := f.Buffer.PendingDrops(ctx)
	if err != nil {
		return fmt.Errorf("read drop reports: %w", err)
	}
	for len(drops) > 0 {
		chunk := drops[:min(len(drops), controlChunk)]
		drops = drops[len(chunk):]
		list := make([]stream.Drop, len(chunk))
		ids := make([]int64, len(chunk))
		for i, d := range chunk {
			list[i], ids[i] = d.Drop, d.ID
		}
		id := stream.MsgID(f.Node, f.epoch, stream.DropsStream, uint64(ids[0]), uint64(ids[len(ids)-1]))
		if err := f.publishControl(ctx, stream.KindDrops, stream.DropsStream, list, id); err != nil {
			return err
		}
		if err := f.Buffer.MarkDropsSent(ctx, ids); err != nil {
			return fmt.Errorf("mark drop reports sent: %w", err)
		}
	}
	rows, err := f.Buffer.PendingCounters(ctx)
	if err != nil {
		return fmt.Errorf("read counter states: %w", err)
	}
	// A hub from before counter kinds refuses a whole frame that holds a state
	// with a "kind": sums go in frames of their own, byte for byte as before, so
	// such a hub still takes them; the other kinds follow in theirs.
	sums, registers := splitSums(rows)
	for _, group := range [][]edge.CounterRow{sums, registers} {
		if err := f.sendCounters(ctx, group); err != nil {
			return err
		}
	}
	return nil
}

// splitSums returns the sums of rows and the states of other kinds, each in
// the order of rows.
func splitSums(rows []edge.CounterRow) (sums, registers []edge.CounterRow) {
	for _, r := range rows {
		if r.State.Kind == counters.KindSum {
			sums = append(sums, r)
		} else {
			registers = append(registers, r)
		}
	}
	return sums, registers
}

// sendCounters publishes counter states in frames of at most controlChunk and
// marks each frame's states sent after its ack.
func (f *Forwarder) sendCounters(ctx context.Context, rows []edge.CounterRow) error {
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), controlChunk)]
		rows = rows[len(chunk):]
		list := make([]stream.CounterState, len(chunk))
		for i, r := range chunk {
			list[i] = r.State.Wire(r.Name)
		}
		// Counter states merge by maximum, so a repeat is harmless: no message ID.
		if err := f.publishControl(ctx, stream.KindCounters, stream.CountersStream, list, ""); err != nil {
			return err
		}
		if err := f.Buffer.MarkCountersSent(ctx, chunk); err != nil {
			return fmt.Errorf("mark counter states sent: %w", err)
		}
	}
	return nil
}

// publishControl publishes one control frame through JetStream and waits for
// its ack.
func (f *Forwarder) publishControl(ctx context.Context, kind stream.Kind, subject string, v any, msgID string) error {
	frame, err := stream.EncodeControlV2(kind, f.Compress, f.Node, f.epoch, v)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(stream.Subject(f.Node, subject))
	msg.Data = frame
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if err := f.pace.wait(ctx, pubCost(msg.Subject, msg.Header, frame, true)); err != nil {
		return err
	}
	// Async publish, because its future fails with ErrDisconnected as soon as
	// the connection drops; a synchronous request would wait out AckTimeout
	// and hold up the whole session.
	fut, err := f.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("publish %v: %w", kind, domainError(err))
	}
	timeout := time.NewTimer(f.AckTimeout)
	defer timeout.Stop()
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("publish %v: %w", kind, domainError(err))
	case <-timeout.C:
		return fmt.Errorf("publish %v: no acknowledgement within %v", kind, f.AckTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// domainError marks the NATS errors that mean the hub cannot be reached now.
func domainError(err error) error {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return fmt.Errorf("%w: %v", ErrHubDisconnected, err)
	}
	return err
}
