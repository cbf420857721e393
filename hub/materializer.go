package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/stream"
)

// ConsumerName is the durable consumer a single hub's materializer reads the
// EDGE stream with. Hubs of a cluster each read with their own (see
// ClusterConsumer); a single hub keeps this name, so that the hubs deployed
// before clustering keep their consumer and its place in the stream.
const ConsumerName = "materializer"

// ClusterConsumer returns the durable consumer of the hub named name when it
// is one of several hubs on one JetStream: "materializer-NAME". Each hub of a
// cluster reads the whole stream into its own index through its own consumer.
func ClusterConsumer(name string) string { return ConsumerName + "-" + name }

const (
	// maxPullBytes bounds the messages the consumer buffers ahead of the
	// materializer; two of the largest frames fit.
	maxPullBytes = 2 * stream.MaxFrameBytes
	// maxApplyBytes bounds the frames applied in one index transaction. Two
	// runs are held at once, one committing while the next is prepared, so
	// that together they take what one run of 16 MiB did.
	maxApplyBytes = 8 << 20
)

// Materializer reads the EDGE stream with a durable consumer, decodes every frame,
// writes it into the index and acknowledges a message only after the index
// transaction that holds it has committed. It applies the stream in stream
// order (see inOrder), so that every hub reading one stream stores the same
// thing. Rejected messages are counted and terminated, never redelivered.
type Materializer struct {
	JS       jetstream.JetStream
	Index    *index.Index
	Counters *natsjs.Counters
	Live     *Live
	Logger   zerolog.Logger
	// Now is the hub's clock, for delivery latency and node rates.
	Now func() time.Time
	// Delivery, when set, is told each new event's time from its ingest at
	// the edge to its commit here, in seconds (events of v1 frames carry no
	// ingest time and are not measured).
	Delivery Observer
	// Batch is the most messages applied in one index transaction.
	Batch int
	// Consumer is the durable consumer's name, ConsumerName by default.
	Consumer string
	// Replay deletes the durable consumer at Open so that the stream is read
	// again from the start (used when the index was created empty). Only
	// Consumer is deleted: the consumers of other hubs sharing the stream are
	// never touched.
	Replay bool

	reg     *registry
	log     zerolog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	consMu  sync.Mutex
	cons    jetstream.Consumer
	running atomic.Bool

	messages, events, duplicates, badFrames, applyErrors, refetched atomic.Int64
	lastErr                                                         atomic.Pointer[error] // the last apply's error; nil once one succeeds
	failingSince                                                    atomic.Int64          // Unix ns of the first failure of the current streak; 0 when none
	// committed is the stream sequence up to which every message is in the
	// index, of the stream created at streamCreated (Unix ns): where a
	// restarted read takes up when the consumer's acknowledgement floor is
	// behind it (messages the materializer fetched itself are never
	// acknowledged, and acknowledgements are not waited for).
	committed, streamCreated atomic.Int64
	streak                   atomic.Int64 // failures since the last run committed
}

// MaterializerStats are the materializer's figures since Open.
type MaterializerStats struct {
	// Messages counts stream messages applied; Events the events newly
	// indexed; Duplicates the events already held; BadFrames the messages
	// rejected; Errors the index transactions and counter merges that failed
	// and were tried again;
	// Refetched the messages read from the stream to fill a gap in the
	// consumer's delivery (see inOrder).
	Messages, Events, Duplicates, BadFrames, Errors, Refetched int64
}

// Stats returns a snapshot of the materializer's figures.
func (m *Materializer) Stats() MaterializerStats {
	return MaterializerStats{Messages: m.messages.Load(), Events: m.events.Load(), Duplicates: m.duplicates.Load(),
		BadFrames: m.badFrames.Load(), Errors: m.applyErrors.Load(), Refetched: m.refetched.Load()}
}

// NewMaterializer returns a materializer with defaults.
func NewMaterializer(js jetstream.JetStream, idx *index.Index, reg *registry, ctr *natsjs.Counters, live *Live) *Materializer {
	return &Materializer{JS: js, Index: idx, reg: reg, Counters: ctr, Live: live, Logger: zerolog.Nop(), Now: time.Now, Batch: 512, Consumer: ConsumerName}
}

// Open creates or binds the durable consumer and starts reading.
func (m *Materializer) Open(ctx context.Context) error {
	if m.Consumer == "" {
		m.Consumer = ConsumerName
	}
	if m.Replay {
		err := m.JS.DeleteConsumer(ctx, stream.JetStreamName, m.Consumer)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("reset consumer: %w", err)
		}
	}
	cons, err := m.JS.CreateOrUpdateConsumer(ctx, stream.JetStreamName, m.consumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	m.cons = cons
	m.log = m.Logger.With().Str("component", "materializer").Str("consumer", m.Consumer).Logger()
	ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run(ctx)
	return nil
}

// consumerConfig is the durable consumer the materializer reads with.
func (m *Materializer) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       m.Consumer,
		Description:   "Tributary hub: materializes edge batches into the query index",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 20_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: stream.SubjectPrefix + ".>",
	}
}

// Heal makes the durable consumer again when it is gone (with its stream, or
// alone); the read loop then takes it up. It does nothing while it exists.
func (m *Materializer) Heal(ctx context.Context) error {
	_, err := m.JS.Consumer(ctx, stream.JetStreamName, m.Consumer)
	if err == nil || !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	m.log.Error().Msg("the materializer's consumer is gone; making it again")
	cons, err := m.JS.CreateOrUpdateConsumer(ctx, stream.JetStreamName, m.consumerConfig())
	if err != nil {
		return err
	}
	m.consMu.Lock()
	m.cons = cons
	m.consMu.Unlock()
	return nil
}

// Close stops reading and waits for the loop to end.
func (m *Materializer) Close() {
	if m.cancel != nil {
		m.cancel()
		m.wg.Wait()
	}
}

// StuckAfter is how long the materializer may keep failing to apply a run of
// messages, or to merge its counter states, before Healthy reports it.
const StuckAfter = 30 * time.Second

// Healthy returns an error while the index cannot be written because its
// disk is full, and while a run of messages has failed for longer than
// StuckAfter (nothing after it is applied meanwhile: see inOrder); the run is
// tried again in place until it commits.
func (m *Materializer) Healthy() error {
	p := m.lastErr.Load()
	if p == nil {
		return nil
	}
	if errors.Is(*p, index.ErrFull) {
		return fmt.Errorf("index disk full: %w", *p)
	}
	if since := m.failingSince.Load(); since != 0 {
		if d := m.Now().Sub(time.Unix(0, since)); d > StuckAfter {
			return fmt.Errorf("materializer stuck for %v: %w", d.Round(time.Second), *p)
		}
	}
	return nil
}

// Running reports whether the read loop is consuming.
func (m *Materializer) Running() bool { return m.running.Load() }

// Pending returns how many stream messages the consumer has yet to deliver.
func (m *Materializer) Pending(ctx context.Context) (uint64, error) {
	m.consMu.Lock()
	cons := m.cons
	m.consMu.Unlock()
	info, err := cons.Info(ctx)
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
		m.log.Warn().Err(err).Dur("retry_in", backoff).Msg("materializer interrupted")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (m *Materializer) consume(ctx context.Context) error {
	m.consMu.Lock()
	cons := m.cons
	m.consMu.Unlock()
	// Every message up to the consumer's acknowledgement floor is in the
	// index, and up to what this process committed of the same stream: take
	// up from there, in stream order (see inOrder).
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	info, err := cons.Info(ictx)
	var str jetstream.Stream
	if err == nil {
		str, err = m.JS.Stream(ictx, stream.JetStreamName)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	created := str.CachedInfo().Created
	taken := info.AckFloor.Stream
	if m.streamCreated.Load() == created.UnixNano() {
		taken = max(taken, uint64(m.committed.Load()))
	} else {
		m.committed.Store(0)
		m.streamCreated.Store(created.UnixNano())
	}
	// Bound what the client buffers by bytes, not only by messages: a frame
	// may be up to 16 MiB, and a burst of large frames must not become the
	// hub's memory.
	it, err := cons.Messages(jetstream.PullMaxBytes(maxPullBytes))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer it.Stop()
	src := &inOrder{it: it, str: str, created: created, taken: taken, refetched: &m.refetched}
	m.running.Store(true)
	// While one run of messages is committed, the next is taken, decoded and
	// encoded into chunks: the writer's transaction and the CPU work overlap.
	var busy *commit
	defer func() {
		if busy != nil {
			m.finish(ctx, busy)
		}
	}()
	for {
		var ds []delivery
		if busy == nil {
			d, err := src.next(ctx, jetstream.NextContext(ctx))
			if err != nil {
				return err
			}
			ds = append(ds, d)
		} else {
			// Never wait long for more with a commit to acknowledge: finish it
			// first, then wait.
			d, err := src.next(ctx, jetstream.NextMaxWait(2*time.Millisecond))
			if err != nil {
				if !m.finish(ctx, busy) {
					return ctx.Err()
				}
				busy = nil
				continue
			}
			ds = append(ds, d)
		}
		size := len(ds[0].data)
		// Take whatever else is already here, so one transaction (one fsync)
		// covers many messages when the stream is busy.
		for len(ds) < m.Batch && size < maxApplyBytes {
			more, err := src.next(ctx, jetstream.NextMaxWait(2*time.Millisecond))
			if err != nil {
				break
			}
			ds = append(ds, more)
			size += len(more.data)
		}
		recv, err := m.prepare(ctx, ds)
		if busy != nil {
			ok := m.finish(ctx, busy)
			busy = nil
			if !ok {
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		busy = m.start(ctx, ds, recv)
	}
}

// commit is a run of messages whose index transaction is under way.
type commit struct {
	ds      []delivery
	recv    []index.Message
	live    bool
	done    chan struct{}
	applied *index.Applied
	err     error
}

// start applies recv to the index on another goroutine.
func (m *Materializer) start(ctx context.Context, ds []delivery, recv []index.Message) *commit {
	c := &commit{ds: ds, recv: recv, live: m.Live != nil && m.Live.Count() > 0, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.applied, c.err = m.Index.Apply(ctx, c.recv, c.live)
		if c.err == nil {
			// At once, as before the commit was moved here: the registry
			// learns of the events as soon as queries can see them.
			m.applied(c.ds, c.recv, c.applied, c.live)
		}
	}()
	return c
}

// finish waits for c's transaction, which has then published its new events
// to live queries and acknowledged its messages. A transaction that failed
// (a full disk) is tried again, in place, until it commits: no later message
// may be applied before it (see inOrder). finish reports false only when ctx
// ended first; the messages are then delivered again to the next reader.
func (m *Materializer) finish(ctx context.Context, c *commit) bool {
	<-c.done
	for c.err != nil {
		if !m.pause(ctx, c.ds, c.err) {
			return false
		}
		c.applied, c.err = m.Index.Apply(ctx, c.recv, c.live)
		if c.err == nil {
			m.applied(c.ds, c.recv, c.applied, c.live)
		}
	}
	return true
}

// pause records a failure to apply ds, keeps the consumer from delivering
// them again meanwhile, and waits a second. It reports false if ctx ended.
// It logs the first failure of a streak and then every 30th.
func (m *Materializer) pause(ctx context.Context, ds []delivery, err error) bool {
	m.lastErr.Store(&err)
	m.failingSince.CompareAndSwap(0, m.Now().UnixNano())
	m.applyErrors.Add(1)
	if n := m.streak.Add(1); n == 1 || n%30 == 0 {
		m.log.Error().Err(err).Int("messages", len(ds)).Int64("failures", n).Msg("apply failed; trying again")
	}
	for _, d := range ds {
		if d.msg != nil {
			_ = d.msg.InProgress()
		}
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Second):
		return true
	}
}

// prepare decodes ds and encodes their chunks, on every core, and merges
// counter states, trying a merge again in place until the bucket takes it.
func (m *Materializer) prepare(ctx context.Context, ds []delivery) ([]index.Message, error) {
	recv := make([]index.Message, len(ds))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(ds) {
				return
			}
			recv[i] = m.decode(ds[i])
			index.Prepare(recv[i : i+1])
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ds)) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	for i := range recv {
		f := recv[i].Frame
		if f == nil || f.Kind != stream.KindCounters || m.Counters == nil {
			continue
		}
		for {
			// Merging whole states is idempotent, so doing it before the index
			// commit is safe even if the message is delivered again.
			err := m.Counters.Merge(ctx, f.Node, f.Counters)
			if errors.Is(err, counters.ErrInvalid) {
				// Delivering it again will not help: reject it like a bad frame.
				recv[i].Frame, recv[i].Bad = nil, err
			}
			if err == nil || errors.Is(err, counters.ErrInvalid) {
				break
			}
			if !m.pause(ctx, ds, fmt.Errorf("merge counters of %s: %w", f.Node, err)) {
				return nil, ctx.Err()
			}
		}
	}
	return recv, nil
}

// applied publishes what a committed transaction indexed and acknowledges
// its messages.
func (m *Materializer) applied(ds []delivery, recv []index.Message, applied *index.Applied, live bool) {
	now := m.Now().UnixNano()
	m.observeDelivery(applied, now)
	m.reg.applied(applied, now)
	for _, hb := range applied.Heartbeats {
		m.reg.heartbeat(hb.Frame.Node, hb.Frame.Epoch, *hb.Frame.Heartbeat, hb.At)
	}
	if live {
		m.Live.Publish(applied.Inserted)
	}
	for i, d := range ds {
		if recv[i].Bad != nil {
			m.log.Warn().Err(recv[i].Bad).Str("subject", recv[i].Subject).Msg("rejected message")
			if d.msg != nil {
				_ = d.msg.Term()
			}
			continue
		}
		if d.msg != nil {
			_ = d.msg.Ack()
		}
	}
	var top uint64
	for _, d := range ds {
		top = max(top, d.seq)
	}
	if int64(top) > m.committed.Load() {
		m.committed.Store(int64(top))
	}
	m.lastErr.Store(nil)
	m.failingSince.Store(0)
	m.streak.Store(0)
	m.messages.Add(int64(len(ds)))
	m.events.Add(int64(applied.Events))
	m.duplicates.Add(int64(applied.Duplicates))
	m.badFrames.Add(int64(applied.Bad))
}

// decode turns one stream message into a index.Message, rejecting anything whose
// frame does not decode or does not agree with its subject.
func (m *Materializer) decode(d delivery) index.Message {
	r := index.Message{Subject: d.subject, At: d.at}
	node, name, err := stream.ParseSubject(r.Subject)
	if err != nil {
		r.Bad = err
		return r
	}
	if stream.ValidateName("node", node) == nil {
		r.Node = node
	}
	// The events' data is checked as their chunks' columns are built, in
	// index.Prepare: parsing it once is enough.
	f, err := stream.DecodeUnchecked(d.data)
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
	r.Frame, r.Unchecked = f, f.Kind == stream.KindEvents
	return r
}

// observeDelivery tells Delivery the delivery latency of the events just
// made queryable; duplicates were queryable already and are not measured.
func (m *Materializer) observeDelivery(a *index.Applied, now int64) {
	if m.Delivery == nil {
		return
	}
	for _, t := range a.Ingested {
		if now >= t {
			m.Delivery.Observe(float64(now-t) / 1e9)
		}
	}
}
