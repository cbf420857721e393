package pattern

import (
	"context"

	"github.com/tributary-edge/tributary/internal/apierr"
	"github.com/tributary-edge/tributary/stream"
)

// ErrTooBroad is returned (wrapped) when an ordered read would have to hold
// more decoded events in memory at once than MaxOpenBytes allows: the chunks
// of very many nodes overlap the page's point in time. Narrowing the nodes or
// the time range, or asking for a count (which reads in any order), helps.
var ErrTooBroad = apierr.TooBroad

// MaxOpenBytes bounds the decoded chunks an ordered read holds open at once.
const MaxOpenBytes = 256 << 20

// Index is what the hub's event index provides to Execute and Scope, its only
// callers. The index stores each node's events in chunks: runs of one node's
// events of one epoch and one stream, sorted by (ts, seq). Execute reads a
// query through one Chunks iterator or one Each at a time, whatever the number
// of nodes in scope; it never holds a read per node.
type Index interface {
	// Nodes returns every node the hub knows, sorted.
	Nodes(ctx context.Context) ([]string, error)
	// HasNode reports whether the hub has heard of node.
	HasNode(ctx context.Context, node string) (bool, error)
	// Chunks returns the chunks that may hold events of s — the nodes of
	// s.Nodes (every node when nil), the stream s.Stream (every stream when
	// empty), with an event time in [From, To) — in the order s.Order asks. A
	// chunk may also hold events outside the range; Execute filters them.
	Chunks(ctx context.Context, s Scan) (ChunkIterator, error)
	// Each calls fn once for every chunk Chunks would return for s, from up to
	// Workers goroutines at once and in no particular order; worker is in
	// [0, Workers). It returns the first error fn or the read returns, after
	// every call of fn has returned.
	Each(ctx context.Context, s Scan, fn func(worker int, c *Chunk) error) error
	// Workers is the number of goroutines Each calls fn from.
	Workers() int
}

// InsideIndex is an Index that can also tell, from what it knows of its
// chunks without reading one, which nodes have events in a range. Execute
// uses it, when the Index has it, to settle holds for a query without a
// where-expression over a fleet: one row per node instead of one chunk.
type InsideIndex interface {
	Index
	// NodesInside returns, sorted and each once, the nodes of s.Nodes (every
	// node when nil) that have a chunk of s.Stream (any stream when empty)
	// wholly inside s's range, which therefore hold at least one event in
	// it. s.Order does not matter.
	NodesInside(ctx context.Context, s Scan) ([]string, error)
}

// Order is the order of Index.Chunks.
type Order int

const (
	// ByTime orders chunks by MinTS; chunks with equal MinTS come in any order.
	ByTime Order = iota
	// ByNode orders chunks by node, in byte order, then by MinTS.
	ByNode
)

// Scan is one read of the index.
type Scan struct {
	// Nodes are the nodes to read, sorted; nil means every node.
	Nodes  []string
	Stream string
	// From and To bound event time to [From, To); a bound applies only when
	// its Has flag is set.
	From, To       int64
	HasFrom, HasTo bool
	Order          Order
}

// Chunk is a run of one node's events of one epoch and one stream, in (ts,
// seq) order, with what the index knows of it without decoding it.
type Chunk struct {
	Node, Epoch, Stream string
	// MinTS and MaxTS are the smallest and largest event time in the chunk.
	MinTS, MaxTS int64
	// Count is the number of events in the chunk.
	Count int
	// Load decodes the chunk's events, in (ts, seq) order, into b's memory,
	// which it may reuse. They stay valid until b is passed to Load again.
	// Load may be called after the iterator that returned the chunk has moved
	// on, but not after it is closed.
	Load func(b *ChunkBuf) ([]stream.Event, error)
	// LoadColumns, when the index keeps columns for the chunk, decodes them:
	// event i of the columns is event i of Load. It is nil otherwise.
	LoadColumns func(b *ChunkBuf) (*Columns, error)
}

// ChunkBuf is memory that Chunk.Load reuses from one chunk to the next.
type ChunkBuf struct {
	// Raw holds a chunk's decoded bytes; Events its events, whose Data point
	// into Raw.
	Raw    []byte
	Events []stream.Event
	// Cols is memory for a chunk's columns (see Columns.Decode).
	Cols Columns
}

// size is about how many bytes b holds.
func (b *ChunkBuf) size() int { return cap(b.Raw) + cap(b.Events)*eventSize }

// eventSize is about the size of one stream.Event.
const eventSize = 112

// ChunkIterator is an ordered read of chunks. Next advances and reports
// whether there is a chunk; Chunk returns it; Err reports why Next returned
// false (nil at the normal end); Close releases the read and is called exactly
// once.
type ChunkIterator interface {
	Next() bool
	Chunk() *Chunk
	Err() error
	Close() error
}
