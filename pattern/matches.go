package pattern

import (
	"context"
	"fmt"
	"slices"

	"github.com/tributary-edge/tributary/stream"
)

// ChunkMatches is the matches of a query in one chunk, as EachMatch hands
// them to its callback. It is valid only during that call.
type ChunkMatches struct {
	// Chunk is the chunk read.
	Chunk *Chunk
	// Columns are the chunk's columns when the read went through them, so
	// that a caller can take its values from there too; nil when the read
	// decoded the events. Row i of Columns is event i of the chunk.
	Columns *Columns
	// Rows are the indexes of the matching events in the chunk, ascending.
	Rows []int

	scan *chunkScan
}

// Events returns the chunk's events, in chunk order, decoding them on the
// first call (a read through the columns may not have needed them).
func (m *ChunkMatches) Events() ([]stream.Event, error) { return m.scan.events(m.Chunk) }

// EachMatch reads the whole range of q over nodes — the scope, as Scope
// returns it — once, on every worker of idx, in any order, and calls fn from
// worker w (in [0, idx.Workers())) for every chunk that holds at least one
// match of q. It reads a chunk's columns rather than its events when the
// index keeps them and the where-expression has a fast form (or there is
// none), as Execute does. It returns how many events it read, and the first
// error of idx, of fn or of ctx, which it checks every few hundred events.
// Aggregates use it: each worker keeps a partial answer of its own, merged
// once EachMatch returns.
func EachMatch(ctx context.Context, idx Index, q *Query, nodes []string, fn func(worker int, m *ChunkMatches) error) (int64, error) {
	s := Scan{Stream: q.Stream, From: q.From, To: q.To, HasFrom: q.HasFrom, HasTo: q.HasTo, Order: ByTime}
	inScope := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		inScope[n] = true
	}
	if q.Kind != All && q.Kind != Any {
		s.Nodes = slices.Clone(nodes)
		slices.Sort(s.Nodes)
	}
	if emptyRange(s) || len(nodes) == 0 {
		return 0, nil
	}
	type worker struct {
		reader
		scan *chunkScan
		m    ChunkMatches
	}
	ws := make([]*worker, max(idx.Workers(), 1))
	for i := range ws {
		ws[i] = &worker{reader: reader{ctx: ctx}, scan: newChunkScan(q)}
		ws[i].m.scan = ws[i].scan
		defer ws[i].scan.release()
	}
	err := idx.Each(ctx, s, func(w int, c *Chunk) error {
		if w < 0 || w >= len(ws) {
			return fmt.Errorf("scan: worker %d of %d", w, len(ws))
		}
		if !inScope[c.Node] {
			return nil
		}
		st := ws[w]
		rows, cols, err := st.scan.rows(c, &st.reader, st.m.Rows[:0])
		st.m.Rows = rows
		if err != nil || len(rows) == 0 {
			return err
		}
		st.m.Chunk, st.m.Columns = c, cols
		return fn(w, &st.m)
	})
	var scanned int64
	for _, st := range ws {
		scanned += st.scanned
	}
	if err != nil {
		return scanned, fmt.Errorf("scan: %w", err)
	}
	return scanned, nil
}

// rows appends to dst the indexes of c's events that match the query, and
// returns them with the columns when it read through them.
func (s *chunkScan) rows(c *Chunk, r *reader, dst []int) ([]int, *Columns, error) {
	s.loaded = false
	cols := s.columns(c)
	if cols == nil {
		err := s.eachEvent(c, r, func(m *match) (bool, error) {
			dst = append(dst, m.i)
			return false, nil
		})
		return dst, nil, err
	}
	if s.q.Stream != "" && c.Stream != s.q.Stream {
		return dst, cols, nil
	}
	row := s.row(c)
	for i := range cols.N {
		if err := r.read(); err != nil {
			return dst, cols, err
		}
		ok, err := s.colMatch(c, cols, &row, i)
		if err != nil {
			return dst, cols, err
		}
		if ok {
			dst = append(dst, i)
		}
	}
	return dst, cols, nil
}
