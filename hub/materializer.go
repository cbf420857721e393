package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// ConsumerName is the durable consumer the materializer reads the EDGE stream with.
const ConsumerName = "materializer"

const (
	// maxPullBytes bounds the messages the consumer buffers ahead of the
	// materializer; two of the largest frames fit.
	maxPullBytes = 2 * stream.MaxFrameBytes
	// maxApplyBytes bounds the frames applied in one index transaction.
	maxApplyBytes = 16 << 20
)

// Materializer reads the EDGE stream with a durable consumer, decodes every frame,
// writes it into the index and acknowledges a message only after the index
// transaction that holds it has committed. Rejected messages are counted and
// terminated, never redelivered.
type Materializer struct {
	JS       jetstream.JetStream
	Index    *Index
	Counters *counters.Hub
	Live     *Live
	Logger   zerolog.Logger
	// Batch is the most messages applied in one index transaction.
	Batch int
	// Replay deletes the durable consumer at Open so that the stream is read
	// again from the start (used when the index was created empty).
	Replay bool

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	cons    jetstream.Consumer
	running atomic.Bool

	// Figures for /metrics.
	Messages   atomic.Int64
	Events     atomic.Int64
	Duplicates atomic.Int64
	BadFrames  atomic.Int64
	Errors     atomic.Int64
	lastApply  atomic.Int64
}

// NewMaterializer returns a materializer with defaults.
func NewMaterializer(js jetstream.JetStream, idx *Index, ctr *counters.Hub, live *Live) *Materializer {
	return &Materializer{JS: js, Index: idx, Counters: ctr, Live: live, Logger: zerolog.Nop(), Batch: 512}
}

// Open creates or binds the durable consumer and starts reading.
func (m *Materializer) Open(ctx context.Context) error {
	if m.Replay {
		err := m.JS.DeleteConsumer(ctx, stream.JetStreamName, ConsumerName)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("reset consumer: %w", err)
		}
	}
	cons, err := m.JS.CreateOrUpdateConsumer(ctx, stream.JetStreamName, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Tributary hub: materializes edge batches into the query index",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 20_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: stream.SubjectPrefix + ".>",
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	m.cons = cons
	ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run(ctx)
	return nil
}

// Close stops reading and waits for the loop to end.
func (m *Materializer) Close() {
	if m.cancel != nil {
		m.cancel()
		m.wg.Wait()
	}
}

// Running reports whether the read loop is consuming.
func (m *Materializer) Running() bool { return m.running.Load() }

// Pending returns how many stream messages the consumer has yet to deliver.
func (m *Materializer) Pending(ctx context.Context) (uint64, error) {
	info, err := m.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

func (m *Materializer) run(ctx context.Context) {
	defer m.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := m.consume(ctx)
		m.running.Store(false)
		if ctx.Err() != nil {
			return
		}
		m.Logger.Warn().Err(err).Dur("retry_in", backoff).Msg("materializer interrupted")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (m *Materializer) consume(ctx context.Context) error {
	// Bound what the client buffers by bytes, not only by messages: a frame
	// may be up to 16 MiB, and a burst of large frames must not become the
	// hub's memory.
	it, err := m.cons.Messages(jetstream.PullMaxBytes(maxPullBytes))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer it.Stop()
	m.running.Store(true)
	msgs := make([]jetstream.Msg, 0, m.Batch)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		msgs = append(msgs[:0], msg)
		size := len(msg.Data())
		// Take whatever else is already here, so one transaction (one fsync)
		// covers many messages when the stream is busy.
		for len(msgs) < m.Batch && size < maxApplyBytes {
			more, err := it.Next(jetstream.NextMaxWait(2 * time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, more)
			size += len(more.Data())
		}
		if err := m.apply(ctx, msgs); err != nil {
			m.Errors.Add(1)
			for _, msg := range msgs {
				_ = msg.NakWithDelay(time.Second)
			}
			m.Logger.Error().Err(err).Int("messages", len(msgs)).Msg("apply failed; messages will be redelivered")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
}

// apply decodes msgs, merges counter states, writes the index, publishes new
// events to live queries and then acknowledges.
func (m *Materializer) apply(ctx context.Context, msgs []jetstream.Msg) error {
	recv := make([]Received, len(msgs))
	for i, msg := range msgs {
		recv[i] = m.decode(msg)
		if f := recv[i].Frame; f != nil && f.Kind == stream.KindCounters && m.Counters != nil {
			// Merging whole states is idempotent, so doing it before the index
			// commit is safe even if the message is delivered again.
			err := m.Counters.Merge(ctx, f.Node, f.Counters)
			switch {
			case errors.Is(err, counters.ErrInvalid):
				// Delivering it again will not help: reject it like a bad frame.
				recv[i].Frame, recv[i].Bad = nil, err
			case err != nil:
				return fmt.Errorf("merge counters of %s: %w", f.Node, err)
			}
		}
	}
	applied, err := m.Index.Apply(ctx, recv)
	if err != nil {
		return err
	}
	if m.Live != nil {
		m.Live.Publish(applied.Inserted)
	}
	for i, msg := range msgs {
		if recv[i].Bad != nil {
			m.Logger.Warn().Err(recv[i].Bad).Str("subject", recv[i].Subject).Msg("rejected message")
			_ = msg.Term()
			continue
		}
		_ = msg.Ack()
	}
	m.Messages.Add(int64(len(msgs)))
	m.Events.Add(int64(len(applied.Inserted)))
	m.Duplicates.Add(int64(applied.Duplicates))
	m.BadFrames.Add(int64(applied.Bad))
	m.lastApply.Store(time.Now().UnixNano())
	return nil
}

// decode turns one stream message into a Received, rejecting anything whose
// frame does not decode or does not agree with its subject.
func (m *Materializer) decode(msg jetstream.Msg) Received {
	r := Received{Subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		r.At = md.Timestamp.UnixNano()
	} else {
		r.At = time.Now().UnixNano()
	}
	node, name, err := stream.ParseSubject(r.Subject)
	if err != nil {
		r.Bad = err
		return r
	}
	if stream.ValidateName("node", node) == nil {
		r.Node = node
	}
	f, err := stream.Decode(msg.Data())
	if err != nil {
		r.Bad = err
		return r
	}
	if f.Node != node {
		r.Bad = fmt.Errorf("frame of node %q published on %s", f.Node, r.Subject)
		return r
	}
	want := f.Stream
	switch f.Kind {
	case stream.KindDrops:
		want = stream.DropsStream
	case stream.KindCounters:
		want = stream.CountersStream
	case stream.KindHeartbeat:
		want = stream.HeartbeatStream
	}
	if name != want || (f.Kind == stream.KindEvents && strings.HasPrefix(name, "_")) {
		r.Bad = fmt.Errorf("%v frame published on %s", f.Kind, r.Subject)
		return r
	}
	r.Frame = f
	return r
}
