package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// nodeListMax is the most nodes a read names in SQL; a read of more filters
// them while it reads.
const nodeListMax = 500

// Nodes returns every known node, sorted. It implements pattern.Index.
func (x *Index) Nodes(ctx context.Context) ([]string, error) {
	rows, err := x.r.QueryContext(ctx, "SELECT node FROM nodes ORDER BY node")
	if err != nil {
		return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// HasNode reports whether the hub has heard of node. It implements
// pattern.Index.
func (x *Index) HasNode(ctx context.Context, node string) (bool, error) {
	var one int
	err := x.r.QueryRowContext(ctx, "SELECT 1 FROM nodes WHERE node = ?", node).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: look up node: %v", ErrIndex, err)
	}
	return true, nil
}

// Workers is the number of goroutines Each decodes on: one per CPU.
func (x *Index) Workers() int { return x.workers }

// chunkSQL returns the read of s: the chunks that may hold events of s's
// range, in s's order (in any order when anyOrder), and its arguments.
// withData reads the chunks' data in the same statement; otherwise Load
// fetches it.
func chunkSQL(s pattern.Scan, withData, anyOrder bool) (string, []any, map[string]bool) {
	var q strings.Builder
	var args []any
	cols := "id, node, epoch, stream, min_ts, max_ts, count, received, codec, raw_bytes, cols"
	if withData {
		cols += ", data"
	}
	if s.Nodes != nil && len(s.Nodes) == 0 {
		return "SELECT " + cols + " FROM chunks WHERE 0", nil, nil
	}
	q.WriteString("SELECT " + cols + " FROM chunks")
	var filter map[string]bool
	byNode := s.Order == pattern.ByNode || len(s.Nodes) == 1
	// A read of every chunk in any order walks the table itself, in the
	// order it is stored, rather than an index and a look-up of each row.
	whole := anyOrder && s.Nodes == nil && !s.HasFrom && !s.HasTo
	switch {
	case whole:
	case byNode:
		q.WriteString(" INDEXED BY chunks_node")
	default:
		q.WriteString(" INDEXED BY chunks_time")
	}
	q.WriteString(" WHERE 1")
	args, filter = scopeSQL(&q, args, s)
	if s.HasFrom {
		// A chunk spans at most MaxChunkSpan: one that reaches into the range
		// starts no earlier than that before it, which bounds the look-back.
		q.WriteString(" AND max_ts >= ? AND min_ts >= ?")
		back := s.From - MaxChunkSpan
		if back > s.From {
			back = minInt64
		}
		args = append(args, s.From, back)
	}
	if s.HasTo {
		q.WriteString(" AND min_ts < ?")
		args = append(args, s.To)
	}
	switch {
	case whole:
	case s.Order == pattern.ByNode:
		q.WriteString(" ORDER BY node, min_ts")
	default:
		q.WriteString(" ORDER BY min_ts")
	}
	return q.String(), args, filter
}

const minInt64 = -1 << 63

// scopeSQL adds to q the conditions on node and stream of s, and their args:
// up to nodeListMax nodes in SQL, more as the filter a reader applies to the
// rows (nil when SQL did it all).
func scopeSQL(q *strings.Builder, args []any, s pattern.Scan) ([]any, map[string]bool) {
	var filter map[string]bool
	switch {
	case s.Nodes == nil:
	case len(s.Nodes) <= nodeListMax:
		q.WriteString(" AND node IN (?" + strings.Repeat(",?", len(s.Nodes)-1) + ")")
		for _, n := range s.Nodes {
			args = append(args, n)
		}
	default:
		filter = make(map[string]bool, len(s.Nodes))
		for _, n := range s.Nodes {
			filter[n] = true
		}
	}
	if s.Stream != "" {
		q.WriteString(" AND stream = ?")
		args = append(args, s.Stream)
	}
	return args, filter
}

// NodesInside returns, sorted, the nodes of s that have a chunk wholly inside
// its range. It reads only the chunks_node index, which holds every column it
// needs: over a fleet that is a few bytes per node, where a read of the
// chunks themselves steps through every row and its columns. It implements
// pattern.InsideIndex.
func (x *Index) NodesInside(ctx context.Context, s pattern.Scan) ([]string, error) {
	if s.Nodes != nil && len(s.Nodes) == 0 {
		return nil, nil
	}
	var q strings.Builder
	var args []any
	var filter map[string]bool
	q.WriteString("SELECT DISTINCT node FROM chunks INDEXED BY chunks_node WHERE 1")
	args, filter = scopeSQL(&q, args, s)
	if s.HasFrom {
		q.WriteString(" AND min_ts >= ?")
		args = append(args, s.From)
	}
	if s.HasTo {
		q.WriteString(" AND max_ts < ?")
		args = append(args, s.To)
	}
	// SQLite's default collation compares bytes, as Go's strings do.
	q.WriteString(" ORDER BY node")
	rows, err := x.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, readError(ctx, "read nodes inside", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, readError(ctx, "read nodes inside", err)
		}
		if filter == nil || filter[n] {
			out = append(out, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, readError(ctx, "read nodes inside", err)
	}
	return out, nil
}

// readError wraps a failed read in ErrIndex, hiding the driver's error but not
// a context that ended: a client that went away or a query past its time-out
// must stay visible to errors.Is, so that neither is taken for a broken index.
func readError(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %s: %w", ErrIndex, what, cerr)
	}
	return fmt.Errorf("%w: %s: %v", ErrIndex, what, err)
}

// Chunks returns the chunks that may hold events of s, in s's order, through
// one statement on one connection, whatever the number of nodes. It
// implements pattern.Index.
func (x *Index) Chunks(ctx context.Context, s pattern.Scan) (pattern.ChunkIterator, error) {
	conn, err := x.r.Conn(ctx)
	if err != nil {
		return nil, readError(ctx, "read", err)
	}
	// In node order a read skips the chunks of nodes already decided, so the
	// data is fetched only for the chunks that are loaded.
	lazy := s.Order == pattern.ByNode
	q, args, filter := chunkSQL(s, !lazy, false)
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		conn.Close()
		return nil, readError(ctx, "read chunks", err)
	}
	it := &chunkIter{ctx: ctx, conn: conn, rows: rows, lazy: lazy, filter: filter}
	return it, nil
}

type chunkIter struct {
	ctx    context.Context
	conn   *sql.Conn
	rows   *sql.Rows
	lazy   bool
	filter map[string]bool
	cur    pattern.Chunk
	err    error
	closed bool
}

func (it *chunkIter) Next() bool {
	for it.err == nil && it.rows.Next() {
		r, err := scanChunk(it.rows, !it.lazy)
		if err != nil {
			it.err = err
			return false
		}
		if it.filter != nil && !it.filter[r.meta.Node] {
			continue
		}
		it.cur = r.meta
		if it.lazy {
			it.cur.Load = it.fetch(r)
		} else {
			it.cur.Load = r.load
		}
		return true
	}
	return false
}

// fetch returns a Load that reads the chunk's data on the iterator's
// connection first.
func (it *chunkIter) fetch(r *chunkRow) func(*pattern.ChunkBuf) ([]stream.Event, error) {
	return func(b *pattern.ChunkBuf) ([]stream.Event, error) {
		if it.closed {
			return nil, fmt.Errorf("%w: chunk loaded after its read was closed", ErrIndex)
		}
		return r.fetchLoad(it.ctx, it.conn, b)
	}
}

// querier is a connection or a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// fetchLoad reads the chunk's data on the read's connection or transaction,
// and decodes it.
func (r *chunkRow) fetchLoad(ctx context.Context, conn querier, b *pattern.ChunkBuf) ([]stream.Event, error) {
	if err := conn.QueryRowContext(ctx, "SELECT data FROM chunks WHERE id = ?", r.id).Scan(&r.data); err != nil {
		return nil, readError(ctx, fmt.Sprintf("read chunk %d", r.id), err)
	}
	return r.load(b)
}

func (it *chunkIter) Chunk() *pattern.Chunk { return &it.cur }

func (it *chunkIter) Err() error {
	if it.err != nil {
		return it.err
	}
	if err := it.rows.Err(); err != nil {
		return readError(it.ctx, "read chunks", err)
	}
	return nil
}

func (it *chunkIter) Close() error {
	it.closed = true
	return errors.Join(it.rows.Close(), it.conn.Close())
}

// chunkRow is one row of chunks as read.
type chunkRow struct {
	id         int64
	meta       pattern.Chunk
	received   int64
	codec, raw int
	data       []byte
	cols       []byte
}

func scanChunk(rows *sql.Rows, withData bool) (*chunkRow, error) {
	r := &chunkRow{}
	dst := []any{&r.id, &r.meta.Node, &r.meta.Epoch, &r.meta.Stream, &r.meta.MinTS, &r.meta.MaxTS, &r.meta.Count, &r.received, &r.codec, &r.raw, &r.cols}
	if withData {
		dst = append(dst, &r.data)
	}
	if err := rows.Scan(dst...); err != nil {
		return nil, fmt.Errorf("%w: read chunk: %v", ErrIndex, err)
	}
	if r.cols != nil {
		r.meta.LoadColumns = r.loadColumns
	}
	return r, nil
}

func (r *chunkRow) loadColumns(b *pattern.ChunkBuf) (*pattern.Columns, error) {
	c, err := decodeColumns(b, r.meta.Count, r.cols)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d: %v", ErrIndex, r.id, err)
	}
	return c, nil
}

func (r *chunkRow) load(b *pattern.ChunkBuf) ([]stream.Event, error) {
	evs, err := decodeChunk(b, &r.meta, r.received, r.codec, r.raw, r.data)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d: %v", ErrIndex, r.id, err)
	}
	return evs, nil
}

// Each calls fn for every chunk of s from Workers goroutines at once: one
// goroutine reads the rows, the workers decode and evaluate. The rows carry
// the chunks' columns but not their data, which Load fetches on the same
// connection, in the same transaction (so that it sees the chunks the rows
// named, whatever is written or pruned meanwhile): a scan that the columns
// answer reads a fraction of the bytes. It implements pattern.Index.
func (x *Index) Each(ctx context.Context, s pattern.Scan, fn func(worker int, c *pattern.Chunk) error) error {
	conn, err := x.r.Conn(ctx)
	if err != nil {
		return readError(ctx, "read", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return readError(ctx, "read", err)
	}
	// Nothing to commit: the transaction only holds the snapshot.
	defer tx.Rollback()
	q, args, filter := chunkSQL(s, false, true)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *chunkRow, 2*x.workers)
	var wg sync.WaitGroup
	for w := range x.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if ctx.Err() != nil {
					continue
				}
				c := r.meta
				c.Load = func(b *pattern.ChunkBuf) ([]stream.Event, error) { return r.fetchLoad(ctx, tx, b) }
				if err := fn(w, &c); err != nil {
					cancel(err)
				}
			}
		}()
	}
	rerr := func() error {
		defer close(work)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return readError(ctx, "read chunks", err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanChunk(rows, false)
			if err != nil {
				return err
			}
			if filter != nil && !filter[r.meta.Node] {
				continue
			}
			select {
			case work <- r:
			case <-ctx.Done():
				return nil
			}
		}
		if err := rows.Err(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("%w: read chunks: %v", ErrIndex, err)
		}
		return nil
	}()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if rerr != nil {
		return rerr
	}
	return context.Cause(ctx)
}
