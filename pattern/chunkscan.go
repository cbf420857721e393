package pattern

import (
	"fmt"

	"github.com/tributary-edge/tributary/stream"
)

// chunkScan is one goroutine's means of finding a query's matches in chunks:
// through their columns when the query's predicate has a fast form (or there
// is none) and the index keeps columns, decoding the events themselves only
// for the matches a caller keeps and the events the fast form leaves to expr;
// through the events otherwise.
type chunkScan struct {
	q      *Query
	m      *matcher
	buf    ChunkBuf // events
	colBuf ChunkBuf // columns
	bound  []*Column
	evs    []stream.Event
	loaded bool
}

func newChunkScan(q *Query) *chunkScan { return &chunkScan{q: q, m: q.matcher()} }

func (s *chunkScan) release() { s.m.release() }

// match is one match found in a chunk: its index in the chunk and its
// position in merge order. event decodes the chunk's events, once, and returns
// the match's.
type match struct {
	i    int
	ts   int64
	seq  uint64
	scan *chunkScan
	c    *Chunk
}

func (m *match) event() (*stream.Event, error) { return m.scan.event(m.c, m.i) }

// event decodes c's events, once per chunk, and returns event i.
func (s *chunkScan) event(c *Chunk, i int) (*stream.Event, error) {
	evs, err := s.events(c)
	if err != nil {
		return nil, err
	}
	if i >= len(evs) {
		return nil, fmt.Errorf("chunk of node %q holds %d events, its columns %d", c.Node, len(evs), i+1)
	}
	return &evs[i], nil
}

// events decodes c's events, once per chunk.
func (s *chunkScan) events(c *Chunk) ([]stream.Event, error) {
	if !s.loaded {
		evs, err := c.Load(&s.buf)
		if err != nil {
			return nil, fmt.Errorf("load chunk of node %q: %w", c.Node, err)
		}
		s.evs, s.loaded = evs, true
	}
	return s.evs, nil
}

// each calls fn for every event of c that matches the query's stream, time
// range and predicate, in chunk order, until fn returns stop or an error. It
// calls r.read for every event read.
func (s *chunkScan) each(c *Chunk, r *reader, fn func(m *match) (stop bool, err error)) error {
	s.loaded = false
	if cols := s.columns(c); cols != nil {
		return s.eachColumns(c, cols, r, fn)
	}
	return s.eachEvent(c, r, fn)
}

// eachEvent is each through the decoded events.
func (s *chunkScan) eachEvent(c *Chunk, r *reader, fn func(m *match) (stop bool, err error)) error {
	evs, err := c.Load(&s.buf)
	if err != nil {
		return fmt.Errorf("load chunk of node %q: %w", c.Node, err)
	}
	s.evs, s.loaded = evs, true
	for i := range evs {
		if err := r.read(); err != nil {
			return err
		}
		ev := &evs[i]
		if !s.m.match(ev) {
			continue
		}
		if stop, err := fn(&match{i: i, ts: ev.TS, seq: ev.Seq, scan: s, c: c}); stop || err != nil {
			return err
		}
	}
	return nil
}

// columns returns c's columns when the query can be answered from them.
func (s *chunkScan) columns(c *Chunk) *Columns {
	if c.LoadColumns == nil || (s.q.where != nil && s.q.where.fast == nil) {
		return nil
	}
	cols, err := c.LoadColumns(&s.colBuf)
	if err != nil || cols.N != c.Count {
		return nil // the events themselves still answer
	}
	if s.q.where != nil {
		bound, ok := s.q.where.fast.bind(cols, s.bound)
		if !ok {
			return nil
		}
		s.bound = bound
	}
	return cols
}

func (s *chunkScan) eachColumns(c *Chunk, cols *Columns, r *reader, fn func(m *match) (bool, error)) error {
	q := s.q
	if q.Stream != "" && c.Stream != q.Stream {
		return nil
	}
	row := s.row(c)
	if q.where != nil && q.where.fast.noneMatch(s.bound, cols.N) {
		return r.skip(cols.N)
	}
	for i := range cols.N {
		if err := r.read(); err != nil {
			return err
		}
		if ok, err := s.colMatch(c, cols, &row, i); !ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		m := match{i: i, ts: cols.TS[i], seq: cols.Seq[i], scan: s, c: c}
		if stop, err := fn(&m); stop || err != nil {
			return err
		}
	}
	return nil
}

// row returns the fast evaluator's row for c's bound columns.
func (s *chunkScan) row(c *Chunk) frow { return frow{cols: s.bound, node: c.Node, stream: c.Stream} }

// colMatch reports whether event i of c, read through its columns, is in the
// query's time range and matches its predicate; the events the fast form
// leaves to expr are decoded for it.
func (s *chunkScan) colMatch(c *Chunk, cols *Columns, row *frow, i int) (bool, error) {
	q := s.q
	if ts := cols.TS[i]; q.HasFrom && ts < q.From || q.HasTo && ts >= q.To {
		return false, nil
	}
	if q.where == nil {
		return true, nil
	}
	row.i, row.seq = i, cols.Seq[i]
	switch q.where.fast.eval(row) {
	case fastNo:
		return false, nil
	case fastUnsure:
		ev, err := s.event(c, i)
		if err != nil {
			return false, err
		}
		return s.m.match(ev), nil
	}
	return true, nil
}
