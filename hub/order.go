package hub

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// delivery is one message of the EDGE stream, as the consumer delivered it or
// as the materializer fetched it from the stream to fill a gap.
type delivery struct {
	msg     jetstream.Msg // nil when fetched: nothing to acknowledge
	seq     uint64        // stream sequence; 0 when the metadata is unreadable
	subject string
	data    []byte
	at      int64 // JetStream's timestamp, Unix ns
}

func delivered(msg jetstream.Msg) delivery {
	d := delivery{msg: msg, subject: msg.Subject(), data: msg.Data()}
	if md, err := msg.Metadata(); err == nil {
		d.seq, d.at = md.Sequence.Stream, md.Timestamp.UnixNano()
	} else {
		d.at = time.Now().UnixNano()
	}
	return d
}

// inOrder hands the materializer the stream's messages in stream order.
//
// A durable consumer delivers new messages in order, but not the ones it
// delivers again: a run whose transaction failed, or the messages a consumer
// iterator had buffered when it was stopped, come back only after AckWait,
// behind later ones. Applying those later messages first would be harmless for
// the set of events (the index skips what it holds) but not for what an event
// is stored with: when an edge sent a batch twice (a lost acknowledgement,
// a failover) the index keeps the copy it applied first, with that copy's
// `received`, and hubs of one cluster would answer differently. So a message
// that skips ahead of the last one taken shows a gap, which inOrder fills by
// reading the missing messages from the stream itself before handing out the
// one that showed it. Their later redelivery is re-applied, which changes
// nothing. Messages the stream no longer holds (removed by its limits) are
// passed over.
type inOrder struct {
	it      jetstream.MessagesContext
	str     jetstream.Stream
	created time.Time // the stream's creation: a stream made again starts its sequences anew
	// taken is the stream sequence up to which every message has been handed
	// out (and so is applied, or in a run that will be before any later one).
	taken uint64
	// held is the message that showed a gap, handed out once the gap is
	// filled; fill is the next sequence to fetch, 0 until the stream's first
	// sequence has been read.
	held      delivery
	fill      uint64
	refetched *atomic.Int64 // counts the messages fetched to fill a gap
}

func (o *inOrder) next(ctx context.Context, opts ...jetstream.NextOpt) (delivery, error) {
	for {
		if o.held.seq != 0 {
			if o.fill == 0 {
				ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
				info, err := o.info(ictx)
				cancel()
				if err != nil {
					return delivery{}, err
				}
				o.fill = max(o.taken+1, info.State.FirstSeq)
			}
			if o.fill < o.held.seq {
				d, err := o.fetch(ctx, o.fill)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					if err := o.gone(ctx, o.fill); err != nil {
						return delivery{}, err
					}
					o.fill++
					continue
				}
				if err != nil {
					return delivery{}, err
				}
				o.fill++
				o.taken = d.seq
				o.refetched.Add(1)
				return d, nil
			}
			d := o.held
			o.held, o.fill, o.taken = delivery{}, 0, d.seq
			return d, nil
		}
		msg, err := o.it.Next(opts...)
		if err != nil {
			return delivery{}, err
		}
		d := delivered(msg)
		if d.seq == 0 || d.seq <= o.taken+1 {
			o.taken = max(o.taken, d.seq)
			return d, nil
		}
		o.held = d
	}
}

// info reads the stream, failing if it is not the stream the read began on.
func (o *inOrder) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := o.str.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the stream to fill a gap before seq %d: %w", o.held.seq, err)
	}
	if !info.Created.Equal(o.created) {
		return nil, fmt.Errorf("the stream was made again while a gap before seq %d was filled", o.held.seq)
	}
	return info, nil
}

// gone checks that seq, which the stream did not return, is really gone —
// removed by the stream's limits, or deleted — rather than not yet stored by
// a stream leader just elected, which would hand it out later, out of order.
func (o *inOrder) gone(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := o.info(ctx)
	if err != nil {
		return err
	}
	if seq < info.State.FirstSeq || info.State.LastSeq >= o.held.seq {
		return nil
	}
	return fmt.Errorf("stream seq %d is not readable yet (the stream's last is %d)", seq, info.State.LastSeq)
}

func (o *inOrder) fetch(ctx context.Context, seq uint64) (delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := o.str.GetMsg(ctx, seq)
	if err != nil {
		return delivery{}, fmt.Errorf("fetch stream seq %d to fill a gap: %w", seq, err)
	}
	return delivery{seq: raw.Sequence, subject: raw.Subject, data: raw.Data, at: raw.Time.UnixNano()}, nil
}
