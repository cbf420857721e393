// Package forward is the edge agent's forwarder: it publishes buffered events
// to the hub's JetStream stream in batches with message IDs, deletes a batch
// from the buffer only after its own acknowledgement, reports drops and counter
// states, and sends heartbeats. Its only dependency is NATS; it takes the
// buffer through the Buffer interface.
package forward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

// Forwarder defaults. A batch of 256 KiB of data, four in flight, drains a
// backlog as fast as 1 MiB and eight did, with a third less memory
// (docs/memory.md).
const (
	DefaultBatchEvents       = 1000
	DefaultBatchBytes        = 256 << 10
	DefaultInflight          = 4
	DefaultFlushInterval     = 100 * time.Millisecond
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultAckTimeout        = 10 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultHubURL            = "nats://127.0.0.1:4222"
	DefaultDrainedBytes      = 4 << 20
)

// controlChunk is the most drop reports or counter states sent in one message.
const controlChunk = 500

// closeGrace bounds how long Close waits for the acks of batches in flight.
const closeGrace = 2 * time.Second

// ErrHubDisconnected is returned (wrapped) when the forwarder's session with the
// hub ends because the connection went down.
var ErrHubDisconnected = errors.New("hub disconnected")

// Buffer is what the forwarder needs of the edge's buffer; *buffer.Buffer
// implements it. The forwarder calls it from its own goroutine while other
// goroutines append.
type Buffer interface {
	// Epoch is the buffer's epoch, the events' epoch on the wire.
	Epoch() string
	// Stats is a snapshot of the buffer's counts, for heartbeats.
	Stats() edge.BufferStats
	// ReadLeased returns the next held rows after seq `after` (at most
	// maxEvents, about maxBytes of data) and leases them against drops; it
	// returns none when nothing more is held or the in-flight budget is used up.
	ReadLeased(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]edge.Row, error)
	// Delete removes the rows of an acknowledged batch.
	Delete(ctx context.Context, streamName string, first, last uint64) error
	// Release ends the lease when a session ends.
	Release()
	// PendingDrops and MarkDropsSent hand out the drops to report and record
	// that the hub has them.
	PendingDrops(ctx context.Context) ([]edge.DropRow, error)
	MarkDropsSent(ctx context.Context, ids []int64) error
	// PendingCounters and MarkCountersSent do the same for counter states.
	PendingCounters(ctx context.Context) ([]edge.CounterRow, error)
	MarkCountersSent(ctx context.Context, rows []edge.CounterRow) error
}

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
	Buffer Buffer
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
	// Compress is the codec of the frames sent (wire format v2).
	Compress stream.Codec
	// MaxRate caps the bytes per second sent to the hub (0: no cap, else at
	// least MinMaxRate): every publish (events batches, drop reports,
	// counter states, heartbeats) first waits for its bytes in a token
	// bucket whose burst is one second of the rate, and reads from the buffer
	// shrink so that one batch fits in the burst. Appends to the buffer are
	// never slowed by it.
	MaxRate int64
	// NATSOptions are added to the connection's options (credentials, TLS).
	NATSOptions []nats.Option
	// ClockInterval is how often the clock is measured against the hub's.
	ClockInterval time.Duration
	// Drained, when set, is called from the forwarder's goroutine when a
	// backlog has been delivered: every row read was acknowledged, nothing
	// more is buffered, and at least DrainedBytes of event data were sent
	// since the buffer was last found empty. The agent returns memory to the
	// system there.
	Drained func()
	// DrainedBytes is the smallest backlog, in bytes of event data, whose
	// delivery calls Drained.
	DrainedBytes int64
	// Now is the edge's own clock: of heartbeats, and the one measured
	// against the hub's (see ClockOffset).
	Now func() time.Time
	// Logger receives connection changes and publish failures.
	Logger zerolog.Logger

	nc     *nats.Conn
	conn   atomic.Pointer[nats.Conn] // nc, for callers of Connected
	pace   *pacer                    // nil without MaxRate
	js     jetstream.JetStream
	epoch  string
	log    zerolog.Logger
	notify chan struct{}
	connCh chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	bg     sync.WaitGroup // the clock loop

	clockOffset, clockRTT atomic.Int64 // ClockOffset's, in nanoseconds

	sent          atomic.Uint64
	batches       atomic.Uint64
	publishErrors atomic.Uint64
	heartbeats    atomic.Uint64
	reconnects    atomic.Uint64
	inflight      atomic.Int64
	uplinkBytes   atomic.Uint64 // written to the hub's socket, all protocol included
	uplinkEvents  atomic.Uint64 // events in the batches published, re-sends included
	sinceDrained  int64         // event data acknowledged since the buffer was last found empty
}

// NewForwarder returns a forwarder of b's events to hub as node, with defaults.
func NewForwarder(b Buffer, hub, node string) *Forwarder {
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
		ClockInterval:     DefaultClockInterval,
		Compress:          stream.CodecZstd,
		DrainedBytes:      DefaultDrainedBytes,
		Now:               time.Now,
		Logger:            zerolog.Nop(),
	}
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
	urls, err := f.validate()
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
	f.pace = newPacer(f.MaxRate, f.Now)
	nc, err := nats.Connect(strings.Join(urls, ","), append(f.connOptions(), f.NATSOptions...)...)
	if err != nil {
		return fmt.Errorf("open forwarder: connect to %s: %w", f.Hub, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(f.AckTimeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("open forwarder: jetstream: %w", err)
	}
	// The hub's strong reads ask the node's last acknowledged seq; the
	// subscription outlives reconnections.
	if _, err := nc.Subscribe(stream.CommandSubject(f.Node, stream.SeqCommand), f.answerSeq); err != nil {
		nc.Close()
		return fmt.Errorf("open forwarder: subscribe to the hub's requests: %w", err)
	}
	f.nc, f.js = nc, js
	f.conn.Store(nc)
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan struct{})
	go f.run(runCtx)
	f.bg.Add(1)
	go f.clockLoop(runCtx)
	return nil
}

// validate checks the fields and returns the hub URLs.
func (f *Forwarder) validate() ([]string, error) {
	switch {
	case f.Buffer == nil:
		return nil, errors.New("no buffer")
	case f.MaxEvents < 1 || f.MaxEvents > stream.MaxBatchEvents:
		return nil, fmt.Errorf("max events %d, want 1 to %d", f.MaxEvents, stream.MaxBatchEvents)
	case f.MaxBytes < 1 || f.MaxBytes > stream.MaxFrameBytes/2:
		return nil, fmt.Errorf("max bytes %d, want 1 to %d", f.MaxBytes, stream.MaxFrameBytes/2)
	case f.Inflight < 1:
		return nil, fmt.Errorf("inflight %d, want at least 1", f.Inflight)
	case f.FlushInterval <= 0 || f.HeartbeatInterval <= 0 || f.AckTimeout <= 0 || f.ClockInterval <= 0:
		return nil, errors.New("flush interval, heartbeat interval, ack timeout and clock interval must be positive")
	case f.BackoffMin <= 0 || f.BackoffMax < f.BackoffMin:
		return nil, fmt.Errorf("backoff %v to %v is not a positive range", f.BackoffMin, f.BackoffMax)
	case f.Compress != stream.CodecNone && f.Compress != stream.CodecZstd:
		return nil, fmt.Errorf("compress: unknown codec %v", f.Compress)
	case f.MaxRate < 0 || (f.MaxRate > 0 && f.MaxRate < MinMaxRate):
		return nil, fmt.Errorf("max rate %d bytes/s, want 0 (no cap) or at least %d", f.MaxRate, MinMaxRate)
	}
	if err := stream.ValidateName("node", f.Node); err != nil {
		return nil, err
	}
	return HubURLs(f.Hub)
}

// connOptions are the connection's options: reconnect forever, fail publishes
// at once while disconnected, count the bytes written, and tell the session
// about every change.
func (f *Forwarder) connOptions() []nats.Option {
	return []nats.Option{
		nats.Name("tributary edge " + f.Node),
		// Replies under the node's own inbox prefix: a credential made by
		// "hub node add" lets it read nothing else.
		nats.CustomInboxPrefix(stream.NodeInbox(f.Node)),
		nats.SetCustomDialer(&countingDialer{d: net.Dialer{Timeout: nats.DefaultTimeout}, written: &f.uplinkBytes}),
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
	f.bg.Wait()
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
func (f *Forwarder) Stats() edge.ForwarderStats {
	return edge.ForwarderStats{
		Connected:     f.Connected(),
		Sent:          f.sent.Load(),
		Batches:       f.batches.Load(),
		PublishErrors: f.publishErrors.Load(),
		Heartbeats:    f.heartbeats.Load(),
		Reconnects:    f.reconnects.Load(),
		Inflight:      int(f.inflight.Load()),
		UplinkBytes:   f.uplinkBytes.Load(),
		UplinkEvents:  f.uplinkEvents.Load(),
	}
}

// readBytes is the data one read from the buffer may take: MaxBytes, and with
// a rate cap at most seven eighths of the pacer's burst less a little, so that
// a batch's frame, with its per-event overhead and the protocol's, costs no
// more than the burst and goes as one message (encode splits one that does
// not).
func (f *Forwarder) readBytes() int {
	b := f.pace.burst()
	if b == 0 {
		return f.MaxBytes
	}
	return max(1, min(f.MaxBytes, b-b/8-256))
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
