package pattern

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

// memIndex is an in-memory Index that follows the contract literally. It cuts
// each node's events of one epoch and stream into chunks of random sizes, as
// batches would, returns chunks with equal MinTS in random order, and its Load
// reuses the caller's buffer after scribbling over it, so a caller that keeps
// events or bytes past their lifetime sees them change.
type memIndex struct {
	t       testing.TB
	nodes   []string // known nodes, sorted; may include nodes without events
	chunks  []*memChunk
	workers int
	rng     *rand.Rand

	mu        sync.Mutex
	open      int      // iterators not yet closed
	scans     []Scan   // every Chunks and Each call, in order
	failOn    string   // a read fails when it reaches a chunk of this node
	failLoad  string   // loading a chunk of this node fails
	failProbe bool     // reads in node order fail
	fast      bool     // skip scribbling, for benchmarks
	loads     int      // chunks loaded
	colLoads  int      // chunks whose columns were loaded
	probed    []string // nodes whose chunks reads in node order returned, in order
}

type memChunk struct {
	meta Chunk
	evs  []stream.Event
	cols []byte // encoded columns; nil: the chunk has none
}

var errDisk = errors.New("disk on fire")

func newMemIndex(t testing.TB, known []string, evs []stream.Event) *memIndex {
	return newMemIndexChunked(t, known, evs, 4, 1)
}

// newMemIndexChunked is newMemIndex with chunks of 1 to maxChunk events, cut
// with a generator seeded with seed.
func newMemIndexChunked(t testing.TB, known []string, evs []stream.Event, maxChunk int, seed uint64) *memIndex {
	m := &memIndex{t: t, workers: 3, rng: rand.New(rand.NewPCG(seed, uint64(len(evs))))}
	seen := map[string]bool{}
	for _, n := range known {
		if !seen[n] {
			seen[n] = true
			m.nodes = append(m.nodes, n)
		}
	}
	type key struct{ node, epoch, stream string }
	groups := map[key][]stream.Event{}
	var keys []key
	for _, ev := range evs {
		if !seen[ev.Node] {
			seen[ev.Node] = true
			m.nodes = append(m.nodes, ev.Node)
		}
		k := key{ev.Node, ev.Epoch, ev.Stream}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], ev)
	}
	sort.Strings(m.nodes)
	for _, k := range keys {
		list := groups[k]
		// A batch is in seq order; its chunks are cut in seq order, each
		// sorted by (ts, seq), so chunks of one node overlap in time.
		slices.SortFunc(list, func(a, b stream.Event) int { return cmp.Compare(a.Seq, b.Seq) })
		for len(list) > 0 {
			n := min(1+m.rng.IntN(maxChunk), len(list))
			part := slices.Clone(list[:n])
			list = list[n:]
			slices.SortFunc(part, func(a, b stream.Event) int {
				if c := cmp.Compare(a.TS, b.TS); c != 0 {
					return c
				}
				return cmp.Compare(a.Seq, b.Seq)
			})
			c := &memChunk{evs: part, meta: Chunk{Node: k.node, Epoch: k.epoch, Stream: k.stream,
				MinTS: part[0].TS, MaxTS: part[len(part)-1].TS, Count: len(part)}}
			// Most chunks keep columns, as the hub's do; some do not, as an
			// index written before columns would not.
			if m.rng.IntN(4) != 0 {
				c.cols = AppendColumns(nil, BuildColumns(part))
			}
			m.chunks = append(m.chunks, c)
		}
	}
	return m
}

func (m *memIndex) Nodes(ctx context.Context) ([]string, error) { return slices.Clone(m.nodes), nil }

func (m *memIndex) HasNode(ctx context.Context, node string) (bool, error) {
	return slices.Contains(m.nodes, node), nil
}

func (m *memIndex) Workers() int { return m.workers }

// selected returns the chunks of s in s's order, ties shuffled.
func (m *memIndex) selected(s Scan) []*memChunk {
	m.scans = append(m.scans, s)
	if s.Nodes != nil && !slices.IsSorted(s.Nodes) {
		m.t.Errorf("Scan.Nodes not sorted: %v", s.Nodes)
	}
	var out []*memChunk
	for _, c := range m.chunks {
		switch {
		case s.Nodes != nil && !slices.Contains(s.Nodes, c.meta.Node),
			s.Stream != "" && c.meta.Stream != s.Stream,
			s.HasFrom && c.meta.MaxTS < s.From,
			s.HasTo && c.meta.MinTS >= s.To:
			continue
		}
		out = append(out, c)
	}
	m.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b *memChunk) int {
		if s.Order == ByNode {
			if c := cmp.Compare(a.meta.Node, b.meta.Node); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.meta.MinTS, b.meta.MinTS)
	})
	return out
}

func (m *memIndex) Chunks(ctx context.Context, s Scan) (ChunkIterator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Order == ByNode && m.failProbe {
		return nil, errDisk
	}
	m.open++
	return &memIter{idx: m, list: m.selected(s), i: -1, byNode: s.Order == ByNode}, nil
}

func (m *memIndex) Each(ctx context.Context, s Scan, fn func(int, *Chunk) error) error {
	m.mu.Lock()
	list := m.selected(s)
	m.mu.Unlock()
	work := make(chan *memChunk)
	errs := make(chan error, m.workers)
	var wg sync.WaitGroup
	for w := range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := fn(w, m.chunk(c, nil)); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	var err error
	for _, c := range list {
		if c.meta.Node == m.failOn {
			err = errDisk
			break
		}
		work <- c
	}
	close(work)
	wg.Wait()
	close(errs)
	for e := range errs {
		err = cmp.Or(err, e)
	}
	return err
}

// chunk returns c's metadata with a Load that copies its events into the
// caller's buffer; it fails once it is closed.
func (m *memIndex) chunk(c *memChunk, it *memIter) *Chunk {
	meta := c.meta
	meta.Load = func(b *ChunkBuf) ([]stream.Event, error) {
		m.mu.Lock()
		m.loads++
		closed := it != nil && it.closed
		m.mu.Unlock()
		if closed {
			m.t.Errorf("Load of a chunk of node %q after its iterator was closed", c.meta.Node)
		}
		if c.meta.Node == m.failLoad {
			return nil, errDisk
		}
		if !m.fast {
			for j := range b.Raw {
				b.Raw[j] = 'X'
			}
		}
		b.Raw, b.Events = b.Raw[:0], b.Events[:0]
		for _, ev := range c.evs {
			b.Raw = append(b.Raw, ev.Data...)
		}
		off := 0
		for _, ev := range c.evs {
			ev.Data = b.Raw[off : off+len(ev.Data) : off+len(ev.Data)]
			off += len(ev.Data)
			b.Events = append(b.Events, ev)
		}
		return b.Events, nil
	}
	if c.cols != nil {
		meta.LoadColumns = func(b *ChunkBuf) (*Columns, error) {
			m.mu.Lock()
			m.colLoads++
			m.mu.Unlock()
			return DecodeColumns(c.cols, len(c.evs))
		}
	}
	return &meta
}

func (m *memIndex) openIterators() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open
}

type memIter struct {
	byNode  bool
	seenOne bool
	idx     *memIndex
	list    []*memChunk
	i       int
	cur     *Chunk
	err     error
	closed  bool
}

func (it *memIter) Next() bool {
	if it.err != nil || it.i+1 >= len(it.list) {
		return false
	}
	it.i++
	c := it.list[it.i]
	if c.meta.Node == it.idx.failOn {
		it.err = errDisk
		return false
	}
	it.cur = it.idx.chunk(c, it)
	if it.byNode {
		it.idx.mu.Lock()
		if p := it.idx.probed; len(p) == 0 || p[len(p)-1] != c.meta.Node || !it.seenOne {
			it.idx.probed = append(p, c.meta.Node)
		}
		it.seenOne = true
		it.idx.mu.Unlock()
	}
	return true
}

func (it *memIter) Chunk() *Chunk { return it.cur }
func (it *memIter) Err() error    { return it.err }

func (it *memIter) Close() error {
	it.idx.mu.Lock()
	defer it.idx.mu.Unlock()
	if it.closed {
		it.idx.t.Errorf("iterator closed twice")
	}
	it.closed = true
	it.idx.open--
	return nil
}

// memInside is a memIndex that is also an InsideIndex, so that the oracle
// tests run Execute both with and without NodesInside.
type memInside struct{ *memIndex }

func (m memInside) NodesInside(ctx context.Context, s Scan) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, c := range m.chunks {
		switch {
		case s.Nodes != nil && !slices.Contains(s.Nodes, c.meta.Node),
			s.Stream != "" && c.meta.Stream != s.Stream,
			s.HasFrom && c.meta.MinTS < s.From,
			s.HasTo && c.meta.MaxTS >= s.To,
			c.meta.Count == 0:
			continue
		}
		out = append(out, c.meta.Node)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// oracleIndex is idx as round of an oracle test reads it: every other round
// through NodesInside.
func oracleIndex(idx *memIndex, round int) Index {
	if round%2 == 1 {
		return memInside{idx}
	}
	return idx
}
