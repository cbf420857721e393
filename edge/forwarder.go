package edge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/stream"
)

// Forwarder defaults.
const (
	DefaultBatchEvents       = 1000
	DefaultBatchBytes        = 1 << 20
	DefaultInflight          = 8
	DefaultFlushInterval     = 100 * time.Millisecond
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultAckTimeout        = 10 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultHubURL            = "nats://127.0.0.1:4222"
)

// controlChunk is the most drop reports or counter states sent in one message.
const controlChunk = 500

// closeGrace bounds how long Close waits for the acks of batches in flight.
const closeGrace = 2 * time.Second

// ErrHubDisconnected is returned (wrapped) when the forwarder's session with the
// hub ends because the connection went down.
var ErrHubDisconnected = errors.New("hub disconnected")

// Forwarder moves buffered events to the hub's JetStream stream, in seq order,
// and deletes them from the buffer only after JetStream has acknowledged the
// batch that holds them. It also sends drop reports and counter states (marking
// them sent only after their ack) and a heartbeat with the buffer's figures.
//
// It reconnects forever and resumes from the oldest row still buffered: the
// buffer, not the forwarder, is the record of what has been delivered. Create it
// with NewForwarder, set fields, then Open and Close.
type Forwarder struct {
	// Buffer is the open buffer to drain; its Epoch is the events' epoch.
	Buffer *Buffer
	// Hub is the hub's NATS URL, or several separated by commas.
	Hub string
	// Node is this edge's node ID.
	Node string
	// MaxEvents and MaxBytes bound one read from the buffer; each read becomes
	// one batch per stream it holds.
	MaxEvents, MaxBytes int
	// Inflight is how many batches may wait for their ack at once.
	Inflight int
	// FlushInterval is how long new events may wait to be batched with others.
	FlushInterval time.Duration
	// HeartbeatInterval is how often a heartbeat is sent while connected.
	HeartbeatInterval time.Duration
	// AckTimeout is how long a publish waits for its ack before it counts as
	// failed.
	AckTimeout time.Duration
	// BackoffMin and BackoffMax bound the pause after a failed session; it doubles
	// after every failure without progress, with jitter.
	BackoffMin, BackoffMax time.Duration
	// NATSOptions are added to the connection's options (credentials, TLS).
	NATSOptions []nats.Option
	// Now is the clock of heartbeats.
	Now func() time.Time
	// Logger receives connection changes and publish failures.
	Logger zerolog.Logger

	nc     *nats.Conn
	conn   atomic.Pointer[nats.Conn] // nc, for callers of Connected
	js     jetstream.JetStream
	epoch  string
	log    zerolog.Logger
	notify chan struct{}
	connCh chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	sent          atomic.Uint64
	batches       atomic.Uint64
	publishErrors atomic.Uint64
	heartbeats    atomic.Uint64
	reconnects    atomic.Uint64
	inflight      atomic.Int64
}

// NewForwarder returns a forwarder of b's events to hub as node, with defaults.
func NewForwarder(b *Buffer, hub, node string) *Forwarder {
	return &Forwarder{
		Buffer:            b,
		Hub:               hub,
		Node:              node,
		MaxEvents:         DefaultBatchEvents,
		MaxBytes:          DefaultBatchBytes,
		Inflight:          DefaultInflight,
		FlushInterval:     DefaultFlushInterval,
		HeartbeatInterval: DefaultHeartbeatInterval,
		AckTimeout:        DefaultAckTimeout,
		BackoffMin:        DefaultBackoffMin,
		BackoffMax:        DefaultBackoffMax,
		Now:               time.Now,
		Logger:            zerolog.Nop(),
	}
}

// ForwarderStats are the forwarder's figures since Open.
type ForwarderStats struct {
	// Connected is true while the connection to the hub is up.
	Connected bool
	// Sent counts events whose batch JetStream acknowledged.
	Sent uint64
	// Batches counts acknowledged batches.
	Batches uint64
	// PublishErrors counts sessions that ended in an error (a failed or timed out
	// publish, a lost connection).
	PublishErrors uint64
	// Heartbeats counts heartbeats sent.
	Heartbeats uint64
	// Reconnects counts reconnections to the hub.
	Reconnects uint64
	// Inflight is the number of batches waiting for their ack.
	Inflight int
}

// HubURLs splits a comma-separated list of NATS URLs, dropping blanks. It returns
// an error when no URL is left.
func HubURLs(list string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no hub URL")
	}
	return out, nil
}

// Open validates the fields, starts connecting to the hub (an unreachable hub is
// not an error: it is retried forever) and starts forwarding.
func (f *Forwarder) Open(ctx context.Context) error {
	switch {
	case f.Buffer == nil:
		return errors.New("open forwarder: no buffer")
	case f.MaxEvents < 1 || f.MaxEvents > stream.MaxBatchEvents:
		return fmt.Errorf("open forwarder: max events %d, want 1 to %d", f.MaxEvents, stream.MaxBatchEvents)
	case f.MaxBytes < 1 || f.MaxBytes > stream.MaxFrameBytes/2:
		return fmt.Errorf("open forwarder: max bytes %d, want 1 to %d", f.MaxBytes, stream.MaxFrameBytes/2)
	case f.Inflight < 1:
		return fmt.Errorf("open forwarder: inflight %d, want at least 1", f.Inflight)
	case f.FlushInterval <= 0 || f.HeartbeatInterval <= 0 || f.AckTimeout <= 0:
		return errors.New("open forwarder: flush interval, heartbeat interval and ack timeout must be positive")
	case f.BackoffMin <= 0 || f.BackoffMax < f.BackoffMin:
		return fmt.Errorf("open forwarder: backoff %v to %v is not a positive range", f.BackoffMin, f.BackoffMax)
	}
	if err := stream.ValidateName("node", f.Node); err != nil {
		return fmt.Errorf("open forwarder: %w", err)
	}
	urls, err := HubURLs(f.Hub)
	if err != nil {
		return fmt.Errorf("open forwarder: %w", err)
	}
	if f.Now == nil {
		f.Now = time.Now
	}
	f.epoch = f.Buffer.Epoch()
	f.log = f.Logger.With().Str("component", "forwarder").Logger()
	f.notify = make(chan struct{}, 1)
	f.connCh = make(chan struct{}, 1)

	opts := []nats.Option{
		nats.Name("tributary edge " + f.Node),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		// Publishes while disconnected fail at once instead of piling up in the
		// client: the buffer is where unsent events wait.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			f.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("connected to hub")
			f.signalConn()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			f.reconnects.Add(1)
			f.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to hub")
			f.signalConn()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			f.log.Warn().Err(err).Msg("disconnected from hub")
			f.signalConn()
		}),
		nats.ClosedHandler(func(*nats.Conn) { f.signalConn() }),
	}
	nc, err := nats.Connect(strings.Join(urls, ","), append(opts, f.NATSOptions...)...)
	if err != nil {
		return fmt.Errorf("open forwarder: connect to %s: %w", f.Hub, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(f.AckTimeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("open forwarder: jetstream: %w", err)
	}
	f.nc, f.js = nc, js
	f.conn.Store(nc)
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan struct{})
	go f.run(runCtx)
	return nil
}

// Close stops forwarding, waits briefly for the acks of batches in flight (so
// that their rows are deleted), and closes the connection. Unacknowledged rows
// stay in the buffer and are sent again after the next Open.
func (f *Forwarder) Close() error {
	if f.cancel == nil {
		return nil
	}
	f.cancel()
	<-f.done
	f.nc.Close()
	f.cancel = nil
	return nil
}

// Notify tells the forwarder that the buffer has new events or counter states.
// It never blocks; the forwarder sends them within FlushInterval.
func (f *Forwarder) Notify() {
	if f.notify == nil {
		return
	}
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// Connected reports whether the connection to the hub is up.
func (f *Forwarder) Connected() bool {
	nc := f.conn.Load()
	return nc != nil && nc.IsConnected()
}

// Stats returns the forwarder's figures. It is safe to call at any time.
func (f *Forwarder) Stats() ForwarderStats {
	return ForwarderStats{
		Connected:     f.Connected(),
		Sent:          f.sent.Load(),
		Batches:       f.batches.Load(),
		PublishErrors: f.publishErrors.Load(),
		Heartbeats:    f.heartbeats.Load(),
		Reconnects:    f.reconnects.Load(),
		Inflight:      int(f.inflight.Load()),
	}
}

func (f *Forwarder) signalConn() {
	select {
	case f.connCh <- struct{}{}:
	default:
	}
}

// run holds sessions with the hub until ctx ends, backing off after failures.
func (f *Forwarder) run(ctx context.Context) {
	defer close(f.done)
	backoff := f.BackoffMin
	for {
		for !f.nc.IsConnected() {
			select {
			case <-ctx.Done():
				return
			case <-f.connCh:
			}
		}
		progressed, err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = f.BackoffMin
		}
		f.publishErrors.Add(1)
		// Half fixed, half random, so that edges cut off together do not come
		// back in step.
		pause := backoff/2 + rand.N(backoff/2+1)
		f.log.Warn().Err(err).Dur("retry_in", pause).Msg("forwarding paused")
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		backoff = min(2*backoff, f.BackoffMax)
	}
}

// batch is one published events frame waiting for its ack.
type batch struct {
	stream      string
	first, last uint64
	count       int
	bytes       int // the frame's size
	fut         jetstream.PubAckFuture
}

// inflightBudget returns how many bytes of frames may wait for acks at once.
// With a capped buffer it is a quarter of the cap: leased rows cannot be dropped,
// so drop-oldest must always find unleased rows to make room with (one append
// needs at most an eighth of the cap).
func (f *Forwarder) inflightBudget() int {
	if f.Buffer.MaxBytes > 0 {
		return max(int(f.Buffer.MaxBytes/4), 1)
	}
	return math.MaxInt
}

// session forwards until an error or the end of ctx. It reads the buffer from
// the oldest row, keeps up to Inflight batches waiting for their acks, deletes
// each batch's rows after its own ack, and on the way out settles what is still
// in flight and releases the lease. progressed reports whether any batch was
// acknowledged.
func (f *Forwarder) session(ctx context.Context) (progressed bool, err error) {
	var q []*batch
	defer func() {
		if f.settle(ctx, q) {
			progressed = true
		}
		f.inflight.Store(0)
		f.Buffer.Release()
	}()
	f.heartbeat()
	if err := f.sendControl(ctx); err != nil {
		return false, err
	}
	hb := time.NewTicker(f.HeartbeatInterval)
	defer hb.Stop()
	var linger *time.Timer
	var lingerC <-chan time.Time
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()

	var after uint64 // the last seq read and published in this session
	more := true     // rows after `after` may exist
	budget := f.inflightBudget()
	inflightBytes := func() int {
		n := 0
		for _, b := range q {
			n += b.bytes
		}
		return n
	}
	for {
		for more && len(q) < f.Inflight && (len(q) == 0 || inflightBytes() < budget) {
			rows, err := f.readLeased(ctx, after)
			if err != nil {
				return progressed, err
			}
			if len(rows) == 0 {
				more = false
				break
			}
			last := rows[len(rows)-1].Seq
			for _, rs := range groupByStream(rows) {
				bs, err := f.publish(rs)
				q = append(q, bs...)
				if err != nil {
					return progressed, err
				}
			}
			after = last
		}
		f.inflight.Store(int64(len(q)))

		var okC <-chan *jetstream.PubAck
		var errC <-chan error
		if len(q) > 0 {
			okC, errC = q[0].fut.Ok(), q[0].fut.Err()
		}
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case <-okC:
			b := q[0]
			q = q[1:]
			if err := f.acked(ctx, b); err != nil {
				return progressed, err
			}
			progressed = true
		case err := <-errC:
			// Its error is taken: settle must not wait for it again.
			b := q[0]
			q = q[1:]
			return progressed, fmt.Errorf("publish %s: %w", stream.MsgID(f.Node, f.epoch, b.stream, b.first, b.last), err)
		case <-f.notify:
			if lingerC == nil {
				linger = time.NewTimer(f.FlushInterval)
				lingerC = linger.C
			}
		case <-lingerC:
			lingerC = nil
			more = true
			if err := f.sendControl(ctx); err != nil {
				return progressed, err
			}
		case <-hb.C:
			f.heartbeat()
			// Also a slow safety net for rows whose append was not signalled.
			more = true
			if err := f.sendControl(ctx); err != nil {
				return progressed, err
			}
		case <-f.connCh:
			if !f.nc.IsConnected() {
				return progressed, ErrHubDisconnected
			}
		}
	}
}
