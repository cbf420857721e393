// Package agent wires an edge agent together: the buffer, the forwarder that
// drains it and the sources that fill it, and the calls the local API serves
// (ingest, status, counters).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/edge/buffer"
	"github.com/tributary-edge/tributary/edge/forward"
	"github.com/tributary-edge/tributary/edge/source"

	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// BufferFile is the name of the buffer database in the agent's data directory.
const BufferFile = "buffer.db"

// DefaultMaxBodyBytes is the default limit on one ingest request's body.
const DefaultMaxBodyBytes = 16 << 20

// Agent runs an edge: the Buffer, the Forwarder that drains it to the hub, and
// the sources that fill it. It is also what the local API serves: ingest,
// status and counters. Create it with New, adjust the fields (and those of
// Buffer and Forwarder), then Open and Close.
type Agent struct {
	// Node is this edge's node ID.
	Node string
	// Buffer is the store-and-forward buffer.
	Buffer *buffer.Buffer
	// Forwarder drains Buffer to the hub.
	Forwarder *forward.Forwarder
	// Sources are the built-in sources to run, as source.New specs.
	Sources []string
	// DataDir is the data directory; the host source reports its disk.
	DataDir string
	// Stdin is the stdin source's input (os.Stdin when nil).
	Stdin io.Reader
	// MaxBodyBytes limits one ingest request's body.
	MaxBodyBytes int64
	// MaxEventBytes limits one event's data.
	MaxEventBytes int
	// Now is the device's clock. The forwarder measures it against the hub's;
	// events without their own time, the buffer and the sources get it
	// corrected by that offset (see Clock).
	Now func() time.Time
	// Logger is given to the buffer, the forwarder and the sources by Open.
	Logger zerolog.Logger

	sources  []source.Source
	ready    atomic.Bool
	ingested atomic.Uint64
}

// New returns an agent for node that keeps its buffer in dataDir and
// forwards to hub (NATS URLs, comma-separated), with defaults.
func New(node, dataDir, hub string) *Agent {
	b := buffer.New(filepath.Join(dataDir, BufferFile))
	return &Agent{
		Node:          node,
		Buffer:        b,
		Forwarder:     forward.NewForwarder(b, hub, node),
		DataDir:       dataDir,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		MaxEventBytes: edge.DefaultMaxEventBytes,
		Now:           time.Now,
		Logger:        zerolog.Nop(),
	}
}

// Open validates the node, opens the buffer, starts the forwarder and then the
// sources. On error everything it started is stopped again.
func (a *Agent) Open(ctx context.Context) (err error) {
	if err := stream.ValidateName("node", a.Node); err != nil {
		return fmt.Errorf("open agent: %w", err)
	}
	if a.Buffer == nil || a.Forwarder == nil {
		return errors.New("open agent: no buffer or forwarder")
	}
	if a.MaxBodyBytes <= 0 || a.MaxEventBytes <= 0 {
		return errors.New("open agent: body and event limits must be positive")
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	srcs := make([]source.Source, 0, len(a.Sources))
	env := source.Env{Sink: a, Node: a.Node, DataDir: a.DataDir, Stdin: a.Stdin, MaxEventBytes: a.MaxEventBytes, Now: a.Clock, Logger: a.Logger}
	for _, spec := range a.Sources {
		s, err := source.New(spec, env)
		if err != nil {
			return fmt.Errorf("open agent: %w", err)
		}
		srcs = append(srcs, s)
	}

	a.Buffer.Now, a.Buffer.Logger = a.Clock, a.Logger
	if err := a.Buffer.Open(ctx); err != nil {
		return fmt.Errorf("open agent: %w", err)
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Forwarder.Buffer, a.Forwarder.Node = a.Buffer, a.Node
	a.Forwarder.Now, a.Forwarder.Logger = a.Now, a.Logger
	if err := a.Forwarder.Open(ctx); err != nil {
		return fmt.Errorf("open agent: %w", err)
	}
	a.ready.Store(true)
	for i, s := range srcs {
		if err := s.Open(ctx); err != nil {
			return fmt.Errorf("open agent: source %s: %w", a.Sources[i], err)
		}
		a.sources = append(a.sources, s)
	}
	return nil
}

// Close stops the sources, then the forwarder (which settles the batches in
// flight), then closes the buffer.
func (a *Agent) Close() error {
	a.ready.Store(false)
	var errs []error
	for i := len(a.sources) - 1; i >= 0; i-- {
		errs = append(errs, a.sources[i].Close())
	}
	a.sources = nil
	errs = append(errs, a.Forwarder.Close(), a.Buffer.Close())
	return errors.Join(errs...)
}

// ObserveCommits makes the buffer tell o how long each append took to
// commit. Call it before Open.
func (a *Agent) ObserveCommits(o edge.Observer) { a.Buffer.CommitSeconds = o }

// Ready returns nil once the buffer is open and the agent takes events, and
// edge.ErrNotReady otherwise.
func (a *Agent) Ready() error {
	if !a.ready.Load() {
		return edge.ErrNotReady
	}
	return nil
}

// Append commits events to the buffer and wakes the forwarder; it is the Sink
// of the sources. Errors are the Buffer's.
func (a *Agent) Append(ctx context.Context, streamName string, in []edge.Input) (first, last uint64, err error) {
	first, last, err = a.Buffer.Append(ctx, streamName, in)
	if err == nil && len(in) > 0 {
		a.ingested.Add(uint64(len(in)))
		a.Forwarder.Notify()
	}
	return first, last, err
}

// AppendWithOffset is Append that also saves a source's offset in the same
// transaction.
func (a *Agent) AppendWithOffset(ctx context.Context, streamName string, in []edge.Input, offsetKey string, offset []byte) (first, last uint64, err error) {
	first, last, err = a.Buffer.AppendWithOffset(ctx, streamName, in, offsetKey, offset)
	if err == nil && len(in) > 0 {
		a.ingested.Add(uint64(len(in)))
		a.Forwarder.Notify()
	}
	return first, last, err
}

// Offset returns a source's saved offset.
func (a *Agent) Offset(ctx context.Context, key string) ([]byte, error) {
	return a.Buffer.Offset(ctx, key)
}

// Ingest reads an ingest body (see edge.ParseIngest) of size bytes (-1 when
// unknown) and commits its events to streamName, all or nothing; it returns
// only after the commit. It holds the body once in memory, plus a few dozen
// bytes per event and a copy of the events that were not compact. Errors wrap
// stream.ErrInvalidName, edge.ErrBodyTooLarge, edge.ErrBadBody,
// edge.ErrEventTooLarge, edge.ErrTooManyEvents, or the buffer's
// edge.ErrBufferFull, edge.ErrAppendTooLarge, edge.ErrDiskFull and
// edge.ErrBufferClosed.
func (a *Agent) Ingest(ctx context.Context, streamName string, body io.Reader, size int64, contentType string) (edge.IngestResult, error) {
	if err := stream.ValidateName("stream", streamName); err != nil {
		return edge.IngestResult{}, err
	}
	if size > a.MaxBodyBytes {
		return edge.IngestResult{}, fmt.Errorf("%w: the body is over the %d byte limit", edge.ErrBodyTooLarge, a.MaxBodyBytes)
	}
	b, err := readBody(body, size, a.MaxBodyBytes)
	if err != nil {
		return edge.IngestResult{}, fmt.Errorf("%w: reading the body: %v", edge.ErrBadBody, err)
	}
	if int64(len(b)) > a.MaxBodyBytes {
		return edge.IngestResult{}, fmt.Errorf("%w: the body is over the %d byte limit", edge.ErrBodyTooLarge, a.MaxBodyBytes)
	}
	in, err := edge.ParseIngest(b, contentType, a.Clock().UnixNano(), a.MaxEventBytes)
	if err != nil {
		return edge.IngestResult{}, err
	}
	first, last, err := a.Append(ctx, streamName, in)
	if err != nil {
		return edge.IngestResult{}, err
	}
	return edge.IngestResult{Accepted: len(in), FirstSeq: first, LastSeq: last}, nil
}

// readBody reads at most max+1 bytes of r. With a known size it reads into one
// buffer of that size; otherwise the buffer doubles from 64 KiB, so that a
// body costs at most about twice its size while it is read, never the
// repeated small growth of io.ReadAll.
func readBody(r io.Reader, size, max int64) ([]byte, error) {
	n := int64(64 << 10)
	if size >= 0 {
		n = size + 1 // one more, to see the end without growing
	}
	buf := make([]byte, 0, min(n, max+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return buf, nil
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), max+1))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Clock is the device's clock (Now) corrected by the offset to the hub's that
// the forwarder last measured; until the first measurement it is Now.
func (a *Agent) Clock() time.Time {
	off, _, _ := a.Forwarder.ClockOffset()
	return a.Now().Add(off)
}

// edge.Status returns the agent's state. It reads memory only.
func (a *Agent) Status() edge.Status {
	b, f := a.Buffer.Stats(), a.Forwarder.Stats()
	return edge.Status{
		Node:          a.Node,
		Epoch:         a.Buffer.Epoch(),
		HubConnected:  f.Connected,
		Buffered:      b.Buffered,
		BufferedBytes: b.BufferedBytes,
		LastSeq:       b.LastSeq,
		AckedSeq:      b.AckedSeq,
		Sent:          f.Sent,
		Dropped:       b.Dropped,
		UplinkBytes:   f.UplinkBytes,
	}
}

// edge.Metrics returns the agent's figures. It reads memory only.
func (a *Agent) Metrics() edge.Metrics {
	return edge.Metrics{Buffer: a.Buffer.Stats(), Forwarder: a.Forwarder.Stats(), Ingested: a.ingested.Load()}
}

// Incr adds delta to this node's state of the sum counter name, durably, and
// wakes the forwarder to send the new state. Errors wrap stream.ErrInvalidName,
// edge.ErrKindConflict (the counter is of another kind), counters.ErrOverflow
// (the state is unchanged) or the buffer's errors.
func (a *Agent) Incr(ctx context.Context, name string, delta int64) (counters.PN, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.PN{}, err
	}
	pn, err := a.Buffer.Incr(ctx, name, delta)
	if err != nil {
		return counters.PN{}, err
	}
	a.Forwarder.Notify()
	return pn, nil
}

// Set puts v into this node's register of counter name, of kind max, min or
// last, durably, and wakes the forwarder to send it. A last write is stamped
// by the agent's clock (Now) through the buffer's hybrid logical clock, after
// every earlier write of the node. Errors wrap stream.ErrInvalidName,
// counters.ErrUnknownKind, counters.ErrNotFinite, edge.ErrKindConflict or the
// buffer's errors; see buffer.Buffer.Set.
func (a *Agent) Set(ctx context.Context, name string, kind counters.Kind, v float64) (counters.Register, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.Register{}, err
	}
	r, err := a.Buffer.Set(ctx, name, kind, v)
	if err != nil {
		return counters.Register{}, err
	}
	a.Forwarder.Notify()
	return r, nil
}

// Counter returns this node's state of counter name, of whatever kind; ok is
// false when the node never wrote it.
func (a *Agent) Counter(ctx context.Context, name string) (r counters.Register, ok bool, err error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.Register{}, false, err
	}
	return a.Buffer.Counter(ctx, name)
}
