package forward

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// batch is one published events frame waiting for its ack.
type batch struct {
	stream      string
	first, last uint64
	count       int
	bytes       int64 // the events' data
	fut         jetstream.PubAckFuture
}

// session is the state of one connected stretch: the batches in flight, in
// publish order, the frames read and encoded but not yet published (they wait
// for the pacer), and how far the buffer has been read.
type session struct {
	f          *Forwarder
	q          []*batch
	out        []*outgoing
	after      uint64 // the last seq read in this session
	more       bool   // rows after `after` may exist
	progressed bool   // a batch was acknowledged

	linger  *time.Timer
	lingerC <-chan time.Time
	// pace fires when the pacer lets out[0] go; paceC is nil when nothing
	// waits for it.
	pace  *time.Timer
	paceC <-chan time.Time
}

// session forwards until an error or the end of ctx. It reads the buffer from
// the oldest row, keeps up to Inflight batches waiting for their acks, deletes
// each batch's rows after its own ack, and on the way out settles what is still
// in flight and releases the lease. progressed reports whether any batch was
// acknowledged.
func (f *Forwarder) session(ctx context.Context) (progressed bool, err error) {
	s := &session{f: f, more: true}
	defer func() {
		if s.linger != nil {
			s.linger.Stop()
		}
		if s.pace != nil {
			s.pace.Stop()
		}
		if f.settle(ctx, s.q) {
			s.progressed = true
		}
		progressed = s.progressed
		f.inflight.Store(0)
		f.Buffer.Release()
	}()
	if err := f.heartbeat(ctx); err != nil {
		return false, err
	}
	if err := f.sendControl(ctx); err != nil {
		return false, err
	}
	hb := time.NewTicker(f.HeartbeatInterval)
	defer hb.Stop()
	for {
		if err := s.fill(ctx); err != nil {
			return false, err
		}
		if err := s.wait(ctx, hb.C); err != nil {
			return false, err
		}
	}
}

// fill publishes batches until Inflight are in flight, the buffer's in-flight
// budget is used up, nothing more is buffered, or the pacer holds the next
// frame back (wait publishes it when its time comes).
func (s *session) fill(ctx context.Context) error {
	f := s.f
	defer func() { f.inflight.Store(int64(len(s.q))) }()
	for s.paceC == nil && len(s.q) < f.Inflight {
		if len(s.out) == 0 {
			if !s.more {
				return nil
			}
			rows, err := f.Buffer.ReadLeased(ctx, s.after, f.MaxEvents, f.readBytes())
			if err != nil {
				return fmt.Errorf("read buffer: %w", err)
			}
			if len(rows) == 0 {
				s.more = false
				if len(s.q) == 0 {
					f.drained()
				}
				return nil
			}
			for _, rs := range groupByStream(rows) {
				outs, err := f.encode(rs)
				if err != nil {
					return err
				}
				s.out = append(s.out, outs...)
			}
			s.after = rows[len(rows)-1].Seq
		}
		o := s.out[0]
		if !o.paid {
			o.paid = true
			if d := f.pace.reserve(o.cost); d > 0 {
				s.pauseFor(d)
				return nil
			}
		}
		b, err := f.send(o)
		if err != nil {
			return err
		}
		s.out[0] = nil
		s.out = s.out[1:]
		s.q = append(s.q, b)
	}
	return nil
}

// pauseFor makes wait publish out[0] after d.
func (s *session) pauseFor(d time.Duration) {
	if s.pace == nil {
		s.pace = time.NewTimer(d)
	} else {
		s.pace.Reset(d)
	}
	s.paceC = s.pace.C
}

// wait handles the next thing to happen: the oldest batch's ack or failure, new
// rows, the linger timer, the pacer's go-ahead, the heartbeat, or a change of
// the connection.
func (s *session) wait(ctx context.Context, hb <-chan time.Time) error {
	f := s.f
	var okC <-chan *jetstream.PubAck
	var errC <-chan error
	if len(s.q) > 0 {
		okC, errC = s.q[0].fut.Ok(), s.q[0].fut.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-okC:
		b := s.q[0]
		s.q = s.q[1:]
		if err := f.acked(ctx, b); err != nil {
			return err
		}
		s.progressed = true
		// The ack freed some of the buffer's in-flight budget.
		s.more = true
	case err := <-errC:
		// Its error is taken: settle must not wait for it again.
		b := s.q[0]
		s.q = s.q[1:]
		return fmt.Errorf("publish %s: %w", stream.MsgID(f.Node, f.epoch, b.stream, b.first, b.last), err)
	case <-f.notify:
		if s.lingerC == nil {
			s.linger = time.NewTimer(f.FlushInterval)
			s.lingerC = s.linger.C
		}
	case <-s.lingerC:
		s.lingerC = nil
		s.more = true
		return f.sendControl(ctx)
	case <-s.paceC:
		// out[0] is paid for: the next fill publishes it.
		s.paceC = nil
	case <-hb:
		if err := f.heartbeat(ctx); err != nil {
			return err
		}
		// Also a slow safety net for rows whose append was not signalled.
		s.more = true
		return f.sendControl(ctx)
	case <-f.connCh:
		if !f.nc.IsConnected() {
			return ErrHubDisconnected
		}
	}
	return nil
}
