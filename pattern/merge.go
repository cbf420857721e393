package pattern

import (
	"container/heap"
	"fmt"

	"github.com/tributary-edge/tributary/stream"
)

// chunkMerge reads chunks in MinTS order and yields their events in merge
// order (ts, node, epoch, seq). It opens a chunk only when its first possible
// event is the next one in merge order, so it holds decoded only the chunks
// that overlap the current point in time, and it reads through one iterator
// however many nodes are in scope.
type chunkMerge struct {
	it      ChunkIterator
	pending *Chunk // the next chunk of it, not yet in the heap
	h       cursorHeap
	free    []*ChunkBuf
	used    int // bytes of the open chunks' buffers
	budget  int
	cur     *stream.Event
	err     error
}

// cursor is one chunk in the merge: unopened (its key is the least an event of
// it could have) or open at its i-th event.
type cursor struct {
	c      Chunk
	open   bool
	evs    []stream.Event
	i      int
	buf    *ChunkBuf
	ts     int64
	seq    uint64
	weight int
}

func newChunkMerge(it ChunkIterator, budget int) *chunkMerge {
	m := &chunkMerge{it: it, budget: budget}
	m.advance()
	return m
}

func (m *chunkMerge) advance() {
	m.pending = nil
	if m.it.Next() {
		c := *m.it.Chunk()
		m.pending = &c
	}
}

// next moves to the next event in merge order and reports whether there is
// one. The event stays valid until the following call.
func (m *chunkMerge) next() bool {
	for m.err == nil {
		// Every chunk that could hold an event at or before the heap's least
		// key must be in the heap before that key is taken: the iterator gives
		// them in MinTS order, ties in any order.
		for m.pending != nil && (len(m.h) == 0 || m.pending.MinTS <= m.h[0].ts) {
			heap.Push(&m.h, &cursor{c: *m.pending, ts: m.pending.MinTS})
			m.advance()
		}
		if len(m.h) == 0 {
			if err := m.it.Err(); err != nil {
				m.err = fmt.Errorf("read chunks: %w", err)
			}
			return false
		}
		c := m.h[0]
		if !c.open {
			if err := m.open(c); err != nil {
				m.err = err
				return false
			}
			if len(c.evs) == 0 {
				heap.Pop(&m.h)
				m.release(c)
				continue
			}
			c.ts, c.seq = c.evs[0].TS, c.evs[0].Seq
			heap.Fix(&m.h, 0)
			continue
		}
		m.cur = &c.evs[c.i]
		c.i++
		if c.i < len(c.evs) {
			c.ts, c.seq = c.evs[c.i].TS, c.evs[c.i].Seq
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
			m.release(c)
		}
		return true
	}
	return false
}

// event returns the current event.
func (m *chunkMerge) event() *stream.Event { return m.cur }

func (m *chunkMerge) open(c *cursor) error {
	var b *ChunkBuf
	if n := len(m.free); n > 0 {
		b, m.free = m.free[n-1], m.free[:n-1]
	} else {
		b = &ChunkBuf{}
	}
	evs, err := c.c.Load(b)
	if err != nil {
		return fmt.Errorf("load chunk of node %q: %w", c.c.Node, err)
	}
	c.open, c.evs, c.buf, c.weight = true, evs, b, b.size()
	m.used += c.weight
	if m.used > m.budget {
		return fmt.Errorf("%w: more than %d MiB of events overlap one point in time; narrow the nodes or the time range, or ask for a count", ErrTooBroad, m.budget>>20)
	}
	return nil
}

func (m *chunkMerge) release(c *cursor) {
	if c.buf != nil {
		m.used -= c.weight
		m.free = append(m.free, c.buf)
		c.buf, c.evs = nil, nil
	}
}

// close releases the iterator.
func (m *chunkMerge) close() error { return m.it.Close() }

// cursorHeap orders cursors by their key (ts, node, epoch, seq); an unopened
// cursor's seq is 0, below any real seq, so it opens before the events of its
// node and epoch at the same time.
type cursorHeap []*cursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.c.Node != b.c.Node {
		return a.c.Node < b.c.Node
	}
	if a.c.Epoch != b.c.Epoch {
		return a.c.Epoch < b.c.Epoch
	}
	return a.seq < b.seq
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}
