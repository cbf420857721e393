package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// BufferFile is the name of the buffer database in the agent's data directory.
const BufferFile = "buffer.db"

// DefaultMaxBodyBytes is the default limit on one ingest request's body.
const DefaultMaxBodyBytes = 16 << 20

// ErrBodyTooLarge is returned (wrapped) by Agent.Ingest for a body over the
// agent's MaxBodyBytes. Nothing of it is stored.
var ErrBodyTooLarge = errors.New("body too large")

// ErrNotReady is returned by Agent.Ready before Open has finished and after
// Close.
var ErrNotReady = errors.New("edge agent not ready")

// Agent runs an edge: the Buffer, the Forwarder that drains it to the hub, and
// the sources that fill it. It is also what the local API serves: ingest,
// status and counters. Create it with NewAgent, adjust the fields (and those of
// Buffer and Forwarder), then Open and Close.
type Agent struct {
	// Node is this edge's node ID.
	Node string
	// Buffer is the store-and-forward buffer.
	Buffer *Buffer
	// Forwarder drains Buffer to the hub.
	Forwarder *Forwarder
	// Sources are the built-in sources to run, as NewSource specs.
	Sources []string
	// DataDir is the data directory; the host source reports its disk.
	DataDir string
	// Stdin is the stdin source's input (os.Stdin when nil).
	Stdin io.Reader
	// MaxBodyBytes limits one ingest request's body.
	MaxBodyBytes int64
	// MaxEventBytes limits one event's data.
	MaxEventBytes int
	// Now is the clock of events without their own time; Open gives it to the
	// buffer, the forwarder and the sources.
	Now func() time.Time
	// Logger is given to the buffer, the forwarder and the sources by Open.
	Logger zerolog.Logger

	sources  []Source
	ready    atomic.Bool
	ingested atomic.Uint64
}

// NewAgent returns an agent for node that keeps its buffer in dataDir and
// forwards to hub (NATS URLs, comma-separated), with defaults.
func NewAgent(node, dataDir, hub string) *Agent {
	b := NewBuffer(filepath.Join(dataDir, BufferFile))
	return &Agent{
		Node:          node,
		Buffer:        b,
		Forwarder:     NewForwarder(b, hub, node),
		DataDir:       dataDir,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		MaxEventBytes: DefaultMaxEventBytes,
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
	srcs := make([]Source, 0, len(a.Sources))
	env := SourceEnv{Sink: a, Node: a.Node, DataDir: a.DataDir, Stdin: a.Stdin, MaxEventBytes: a.MaxEventBytes, Now: a.Now, Logger: a.Logger}
	for _, spec := range a.Sources {
		s, err := NewSource(spec, env)
		if err != nil {
			return fmt.Errorf("open agent: %w", err)
		}
		srcs = append(srcs, s)
	}

	a.Buffer.Now, a.Buffer.Logger = a.Now, a.Logger
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

// Ready returns nil once the buffer is open and the agent takes events, and
// ErrNotReady otherwise.
func (a *Agent) Ready() error {
	if !a.ready.Load() {
		return ErrNotReady
	}
	return nil
}

// Append commits events to the buffer and wakes the forwarder; it is the Sink
// of the sources. Errors are the Buffer's.
func (a *Agent) Append(ctx context.Context, streamName string, in []Input) (first, last uint64, err error) {
	first, last, err = a.Buffer.Append(ctx, streamName, in)
	if err == nil && len(in) > 0 {
		a.ingested.Add(uint64(len(in)))
		a.Forwarder.Notify()
	}
	return first, last, err
}

// AppendWithOffset is Append that also saves a source's offset in the same
// transaction.
func (a *Agent) AppendWithOffset(ctx context.Context, streamName string, in []Input, offsetKey string, offset []byte) (first, last uint64, err error) {
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

// IngestResult is the answer to an ingest: how many events were committed and
// their seqs, first_seq to last_seq.
type IngestResult struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// Ingest reads an ingest body (see ParseIngest) and commits its events to
// streamName, all or nothing; it returns only after the commit. Errors wrap
// stream.ErrInvalidName, ErrBodyTooLarge, ErrBadBody, ErrEventTooLarge, or the
// buffer's ErrBufferFull, ErrDiskFull and ErrClosed.
func (a *Agent) Ingest(ctx context.Context, streamName string, body io.Reader, contentType string) (IngestResult, error) {
	if err := stream.ValidateName("stream", streamName); err != nil {
		return IngestResult{}, err
	}
	b, err := io.ReadAll(io.LimitReader(body, a.MaxBodyBytes+1))
	if err != nil {
		return IngestResult{}, fmt.Errorf("%w: reading the body: %v", ErrBadBody, err)
	}
	if int64(len(b)) > a.MaxBodyBytes {
		return IngestResult{}, fmt.Errorf("%w: the body is over the %d byte limit", ErrBodyTooLarge, a.MaxBodyBytes)
	}
	in, err := ParseIngest(b, contentType, a.Now().UnixNano(), a.MaxEventBytes)
	if err != nil {
		return IngestResult{}, err
	}
	first, last, err := a.Append(ctx, streamName, in)
	if err != nil {
		return IngestResult{}, err
	}
	return IngestResult{Accepted: len(in), FirstSeq: first, LastSeq: last}, nil
}

// Status is the agent's state as GET /api/v1/status shows it.
type Status struct {
	Node          string `json:"node"`
	Epoch         string `json:"epoch"`
	HubConnected  bool   `json:"hub_connected"`
	Buffered      int64  `json:"buffered"`
	BufferedBytes int64  `json:"buffered_bytes"`
	LastSeq       uint64 `json:"last_seq"`
	AckedSeq      uint64 `json:"acked_seq"`
	Sent          uint64 `json:"sent"`
	Dropped       uint64 `json:"dropped"`
}

// Status returns the agent's state. It reads memory only.
func (a *Agent) Status() Status {
	b, f := a.Buffer.Stats(), a.Forwarder.Stats()
	return Status{
		Node:          a.Node,
		Epoch:         a.Buffer.Epoch(),
		HubConnected:  f.Connected,
		Buffered:      b.Buffered,
		BufferedBytes: b.BufferedBytes,
		LastSeq:       b.LastSeq,
		AckedSeq:      b.AckedSeq,
		Sent:          f.Sent,
		Dropped:       b.Dropped,
	}
}

// Metrics are the figures /metrics shows.
type Metrics struct {
	Buffer    Stats
	Forwarder ForwarderStats
	// Ingested counts events committed since Open, from every source.
	Ingested uint64
}

// Metrics returns the agent's figures. It reads memory only.
func (a *Agent) Metrics() Metrics {
	return Metrics{Buffer: a.Buffer.Stats(), Forwarder: a.Forwarder.Stats(), Ingested: a.ingested.Load()}
}

// Incr adds delta to this node's state of counter name, durably, and wakes the
// forwarder to send the new state. Errors wrap stream.ErrInvalidName,
// counters.ErrOverflow (the state is unchanged) or the buffer's errors.
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

// Counter returns this node's state of counter name; ok is false when the node
// never incremented it.
func (a *Agent) Counter(ctx context.Context, name string) (pn counters.PN, ok bool, err error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.PN{}, false, err
	}
	return a.Buffer.Counter(ctx, name)
}
