package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"

	"github.com/tributary-edge/tributary/stream"
)

// Append stores all of in under streamName in one transaction, committed with
// synchronous=FULL before it returns, and returns the seqs given to the first
// and the last event (consecutive). It is all or nothing. It returns an error
// wrapping stream.ErrInvalidName for a bad stream name, edge.ErrInvalidData when an
// event's data is not a JSON object, edge.ErrBufferFull when the events do not fit
// now (see Policy), edge.ErrAppendTooLarge when they could not fit even in an
// empty buffer, edge.ErrDiskFull when the disk is full, and edge.ErrBufferClosed. An empty in
// stores nothing and returns 0, 0, nil.
//
// Concurrent appends are committed together in one transaction (group commit),
// each still all or nothing. Once queued, an append is not abandoned when ctx
// ends: it returns only when its outcome is known, so a caller never reports
// failure for events that were stored.
func (b *Buffer) Append(ctx context.Context, streamName string, in []edge.Input) (first, last uint64, err error) {
	return b.append(ctx, &appendReq{stream: streamName, in: in})
}

// AppendWithOffset is Append that also saves a source's read offset under
// offsetKey in the same transaction, so that a source that resumes from Offset
// neither loses nor repeats events. With an empty in it saves the offset alone.
func (b *Buffer) AppendWithOffset(ctx context.Context, streamName string, in []edge.Input, offsetKey string, offset []byte) (first, last uint64, err error) {
	if offsetKey == "" {
		return 0, 0, errors.New("append: offset key is empty")
	}
	if offset == nil {
		offset = []byte{}
	}
	return b.append(ctx, &appendReq{stream: streamName, in: in, offKey: offsetKey, off: offset})
}

// Offset returns the offset last saved under key by AppendWithOffset, or nil
// when none was saved.
func (b *Buffer) Offset(ctx context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	var v []byte
	err := b.conn.QueryRowContext(ctx, "SELECT value FROM offsets WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read offset %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// appendReq is one Append waiting for the writer.
type appendReq struct {
	stream string
	in     []edge.Input
	offKey string
	off    []byte // nil: no offset to save

	dataBytes   int64
	pages       int64 // estimated pages its rows take
	first, last uint64
	err         error
	done        chan struct{}
}

func (b *Buffer) append(ctx context.Context, r *appendReq) (uint64, uint64, error) {
	if err := stream.ValidateName("stream", r.stream); err != nil {
		return 0, 0, fmt.Errorf("append: %w", err)
	}
	for i, e := range r.in {
		if !stream.IsObject(e.Data) {
			return 0, 0, fmt.Errorf("append to %s: event %d: %w", r.stream, i, edge.ErrInvalidData)
		}
		r.dataBytes += int64(len(e.Data))
	}
	if len(r.in) == 0 && r.off == nil {
		return 0, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("append: %w", err)
	}
	r.done = make(chan struct{})
	start := time.Now()
	if err := b.queue.push(r); err != nil {
		return 0, 0, err
	}
	<-r.done
	if r.err != nil {
		return 0, 0, r.err
	}
	if b.CommitSeconds != nil {
		b.CommitSeconds.Observe(time.Since(start).Seconds())
	}
	return r.first, r.last, nil
}

// appendQueue holds the appends waiting for the writer goroutine.
type appendQueue struct {
	mu       sync.Mutex
	reqs     []*appendReq
	wake     chan struct{}
	opened   bool
	closed   bool
	maxBytes int64 // data bytes the writer takes into one transaction
}

func (q *appendQueue) open(groupBytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reqs, q.wake, q.opened, q.closed, q.maxBytes = nil, make(chan struct{}, 1), true, false, groupBytes
}

func (q *appendQueue) push(r *appendReq) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.opened || q.closed {
		return edge.ErrBufferClosed
	}
	q.reqs = append(q.reqs, r)
	q.signal()
	return nil
}

func (q *appendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close refuses further appends; it reports false when the queue was not open.
func (q *appendQueue) close() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.opened || q.closed {
		return false
	}
	q.closed = true
	q.signal()
	return true
}

// take removes the appends for one transaction: at least one, then more while
// their data stays within maxBytes. closed reports whether the queue is closed.
func (q *appendQueue) take() (batch []*appendReq, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var total int64
	n := 0
	for n < len(q.reqs) && (n == 0 || total+q.reqs[n].dataBytes <= q.maxBytes) {
		total += q.reqs[n].dataBytes
		n++
	}
	batch = q.reqs[:n:n]
	q.reqs = q.reqs[n:]
	if len(q.reqs) == 0 {
		q.reqs = nil
	}
	return batch, q.closed
}

// writeLoop commits queued appends until the queue is closed and empty.
func (b *Buffer) writeLoop() {
	defer b.loops.Done()
	for {
		batch, closed := b.queue.take()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-b.queue.wake
			continue
		}
		b.commitAppends(batch)
	}
}

// errRetrySingly means a group transaction hit SQLITE_FULL and was rolled back
// as a whole; its appends are retried one per transaction.
var errRetrySingly = errors.New("retry appends one by one")

// commitAppends commits batch, in one transaction when it can, and tells each
// append its outcome.
func (b *Buffer) commitAppends(batch []*appendReq) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if err := b.usable(); err != nil {
		for _, r := range batch {
			r.err = err
		}
		return
	}
	ready := make([]*appendReq, 0, len(batch))
	for _, r := range batch {
		r.pages = estimatePages(b.lim.pageSize, r.stream, r.in)
		if err := b.fitsAlone(r); err != nil {
			r.err = err
			continue
		}
		ready = append(ready, r)
	}
	if len(ready) > 0 {
		err := b.appendTx(ready, 0)
		if errors.Is(err, errRetrySingly) || sqlitex.IsFull(err) {
			for _, r := range ready {
				r.err = b.appendOne(r)
			}
		} else if err != nil {
			for _, r := range ready {
				if r.err == nil {
					r.err = fmt.Errorf("append to %s: %w", r.stream, err)
				}
			}
		}
		if err != nil {
			for _, r := range ready {
				if r.err != nil {
					r.first, r.last = 0, 0
				}
			}
		}
	}
	b.afterWrite()
}

// appendOne commits one append in its own transaction. When the cap's page
// limit stops it under drop-oldest, it drops more and tries again.
func (b *Buffer) appendOne(r *appendReq) error {
	extra := int64(0)
	for attempt := 0; ; attempt++ {
		r.err = nil
		err := b.appendTx([]*appendReq{r}, extra)
		if err == nil {
			return r.err
		}
		if !sqlitex.IsFull(err) {
			return fmt.Errorf("append to %s: %w", r.stream, err)
		}
		if !b.capHit(r.pages + extra) {
			return fmt.Errorf("append to %s: %w", r.stream, mapFull(err))
		}
		if b.Policy == Reject {
			return fmt.Errorf("append to %s: %w: no room for %d events", r.stream, edge.ErrBufferFull, len(r.in))
		}
		if attempt == 3 {
			return fmt.Errorf("append to %s: %w", r.stream, mapFull(err))
		}
		extra = extra*2 + r.pages/4 + 8
	}
}

// appendTx stores reqs in one transaction, making room first for each (with
// extra pages more than estimated). An append that does not fit gets
// edge.ErrBufferFull in its err and leaves no trace; the others go on. It returns an
// error, with nothing committed, when the transaction fails as a whole; one
// wrapping errRetrySingly when SQLITE_FULL ended a transaction of several.
// The caller holds b.mu.
func (b *Buffer) appendTx(reqs []*appendReq, extra int64) (err error) {
	ctx := context.Background()
	var txPages int64
	for _, r := range reqs {
		txPages += r.pages + extra
	}
	b.prepareWAL(ctx, txPages)
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return mapFull(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			if len(reqs) > 1 && sqlitex.IsFull(err) {
				err = fmt.Errorf("%w: %w", errRetrySingly, err)
			}
		}
	}()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO events (seq, stream, ts, ingest, data, crc) VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	st := b.st
	run := dropRun{reason: stream.ReasonBufferFull}
	ingest := b.Now().UnixNano()
	for _, r := range reqs {
		if err := b.insertReq(ctx, tx, ins, &st, &run, r, extra, ingest); err != nil {
			return err
		}
	}
	if err := b.finishDrops(ctx, tx, &st, run); err != nil {
		return err
	}
	if err := saveState(ctx, tx, st); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapFull(err)
	}
	b.noteDrops(run)
	b.st = st
	return nil
}

// insertReq makes room for r (under the cap) and inserts its events and
// offset into tx, advancing st. An append that does not fit gets
// edge.ErrBufferFull in r.err and leaves no trace; an error returned fails the
// whole transaction.
func (b *Buffer) insertReq(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, st *state, run *dropRun, r *appendReq, extra, ingest int64) error {
	if b.lim.capPages > 0 && len(r.in) > 0 {
		ok, err := b.roomFor(ctx, tx, st, run, r.pages+extra)
		if err != nil {
			return err
		}
		if !ok {
			r.err = fmt.Errorf("append to %s: %w: %d events (%d bytes) do not fit", r.stream, edge.ErrBufferFull, len(r.in), r.dataBytes)
			return nil
		}
	}
	first := st.lastSeq + 1
	for i, e := range r.in {
		seq := first + uint64(i)
		crc := int64(rowCRC(seq, r.stream, e.TS, e.Data))
		if _, err := ins.ExecContext(ctx, int64(seq), r.stream, e.TS, ingest, []byte(e.Data), crc); err != nil {
			return err
		}
	}
	if r.off != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO offsets (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, r.offKey, r.off); err != nil {
			return err
		}
	}
	if n := uint64(len(r.in)); n > 0 {
		r.first, r.last = first, first+n-1
		st.lastSeq += n
		st.buffered += int64(n)
		st.bufferedBytes += r.dataBytes
	}
	return nil
}

// fitsAlone returns edge.ErrAppendTooLarge when r could not fit even in an
// empty buffer.
func (b *Buffer) fitsAlone(r *appendReq) error {
	if b.lim.capPages == 0 {
		return nil
	}
	if r.pages > b.lim.maxTxPages || r.pages > b.lim.capPages-reservedPages {
		return fmt.Errorf("append to %s: %w: %d events (%d bytes) are more than one append may store in a %d byte buffer (about an eighth of it); send fewer at a time",
			r.stream, edge.ErrAppendTooLarge, len(r.in), r.dataBytes, b.MaxBytes)
	}
	return nil
}

// estimatePages returns about how many database pages the rows of in take,
// following SQLite's table b-tree layout, rounded up.
func estimatePages(pageSize int64, streamName string, in []edge.Input) int64 {
	usable := pageSize
	maxLocal := usable - 35
	minLocal := (usable-12)*32/255 - 23
	var leafBytes, overflow int64
	for _, e := range in {
		payload := int64(len(e.Data)+len(streamName)) + 24 // record header, ts, ingest
		if payload > maxLocal {
			local := minLocal + (payload-minLocal)%(usable-4)
			if local > maxLocal {
				local = minLocal
			}
			overflow += (payload - local + usable - 5) / (usable - 4)
			payload = local + 4
		}
		leafBytes += payload + 9 + 3 + 2 // rowid, payload size, cell pointer
	}
	leaves := (leafBytes + usable - 9) / (usable - 8)
	return leaves + overflow + leaves/128 + 2
}
