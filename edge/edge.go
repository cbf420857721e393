// Package edge is the edge agent's domain: the names an event has on its way
// through the agent, the figures the agent reports, the errors its API maps to
// statuses, and the parser of ingest bodies. It imports no SQLite, NATS or HTTP
// code; the components live in sub-packages, one per dependency:
//
//	edge/buffer   the SQLite store-and-forward buffer (every buffer policy)
//	edge/forward  the forwarder: buffered batches to the hub's JetStream
//	edge/source   the built-in sources: sim, host, stdin, file
//	edge/agent    the agent that wires them and serves the local API's calls
package edge

import (
	"encoding/json"
	"errors"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// DefaultStream is the stream of events whose source or request names none.
const DefaultStream = "default"

// Errors of the buffer. Every one means nothing of the failed write is stored.
var (
	// ErrBufferFull is returned when an append does not fit in the buffer
	// now: under the reject policy when there is no room.
	ErrBufferFull = errors.New("edge: buffer full")
	// ErrAppendTooLarge is returned when an append is larger than the buffer
	// could hold even when empty (see buffer.Buffer.MaxBytes): unlike
	// ErrBufferFull, trying again cannot help; only a smaller append can.
	ErrAppendTooLarge = errors.New("edge: append larger than the buffer can ever take")
	// ErrDiskFull is returned when SQLite cannot grow its files (the disk is
	// full). The buffer keeps working and writes succeed again once space frees.
	ErrDiskFull = errors.New("edge: disk full")
	// ErrBufferClosed is returned by every method of a buffer that is not open.
	ErrBufferClosed = errors.New("edge: buffer closed")
	// ErrInvalidData is returned (wrapped) when an event's data is not a JSON
	// object.
	ErrInvalidData = errors.New("edge: event data is not a JSON object")
)

// Errors of the agent's ingest.
var (
	// ErrBodyTooLarge is returned (wrapped) for a body over the agent's limit.
	ErrBodyTooLarge = errors.New("body too large")
	// ErrNotReady is returned before the agent has opened its buffer and after
	// it has closed.
	ErrNotReady = errors.New("edge agent not ready")
)

// ErrKindConflict is returned (wrapped) by a counter write of another kind than
// the counter's: a delta to a max, a value to a sum. A counter's kind is fixed
// by its first write on the node; nothing of the refused write is stored.
var ErrKindConflict = errors.New("edge: counter kind conflict")

// Observer takes one measurement, such as a latency in seconds;
// prometheus.Histogram implements it.
type Observer interface{ Observe(float64) }

// Input is an event as the agent takes it in, before it has a seq: its event
// time (Unix nanoseconds, already resolved from its own ts or the clock) and its
// data, one JSON object.
type Input struct {
	TS   int64
	Data json.RawMessage
}

// Row is an event held in the buffer: its seq in the buffer's epoch, its
// stream, its event time, the agent's clock when it was committed (Unix ns)
// and its data.
type Row struct {
	Seq    uint64
	Stream string
	TS     int64
	Ingest int64
	Data   json.RawMessage
}

// DropRow is a drop the buffer recorded (buffer-full, max-age or
// corrupt-buffer) and has not yet reported to the hub; ID orders them.
type DropRow struct {
	ID int64
	stream.Drop
}

// CounterRow is this node's state of one counter, of any kind, and its
// version, which grows with every change.
type CounterRow struct {
	Name    string
	State   counters.Register
	Version int64
}

// BufferStats is a snapshot of the buffer's counts.
type BufferStats struct {
	// Buffered is the number of events held (not yet acknowledged or dropped).
	Buffered int64
	// BufferedBytes is the sum of the held events' data sizes.
	BufferedBytes int64
	// FileBytes is the size on disk of the database and its write-ahead log.
	FileBytes int64
	// LastSeq is the seq of the newest event ever appended in this epoch.
	LastSeq uint64
	// AckedSeq is the highest seq at and below which every seq is acknowledged
	// (deleted) or dropped.
	AckedSeq uint64
	// Dropped counts every event this buffer ever dropped, under any reason.
	Dropped uint64
}

// ForwarderStats are the forwarder's figures since it was opened.
type ForwarderStats struct {
	// Connected is true while the connection to the hub is up.
	Connected bool
	// Sent counts events whose batch JetStream acknowledged.
	Sent uint64
	// Batches counts acknowledged batches.
	Batches uint64
	// PublishErrors counts sessions that ended in an error (a failed or timed
	// out publish, a lost connection).
	PublishErrors uint64
	// Heartbeats counts heartbeats sent.
	Heartbeats uint64
	// Reconnects counts reconnections to the hub.
	Reconnects uint64
	// Inflight is the number of batches waiting for their ack.
	Inflight int
	// UplinkBytes counts the bytes written to the connection with the hub:
	// every frame, heartbeat and protocol line, with TLS its records, and
	// re-sends.
	UplinkBytes uint64
	// UplinkEvents counts the events in the batches published, re-sends
	// included.
	UplinkEvents uint64
}

// IngestResult is the answer to an ingest: how many events were committed and
// their seqs, first_seq to last_seq.
type IngestResult struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
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
	UplinkBytes   uint64 `json:"uplink_bytes"`
}

// Metrics are the figures the agent's /metrics shows.
type Metrics struct {
	Buffer    BufferStats
	Forwarder ForwarderStats
	// Ingested counts events committed since the agent opened, from every
	// source.
	Ingested uint64
}
