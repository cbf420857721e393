package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
)

// Row is a buffered event.
type Row struct {
	Seq    uint64
	Stream string
	TS     int64
	Data   json.RawMessage
}

// Read returns, in seq order, the held events with seq > after: at most
// maxEvents of them, and no more than about maxBytes of data (maxBytes <= 0: no
// byte limit) but always at least one when any is held. With MaxAge set it
// first drops the expired events. maxEvents must be positive.
func (b *Buffer) Read(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]Row, error) {
	if maxEvents <= 0 {
		return nil, fmt.Errorf("read buffer: max events %d is not positive", maxEvents)
	}
	if b.MaxAge > 0 {
		if err := b.expire(ctx); err != nil {
			return nil, fmt.Errorf("read buffer: %w", err)
		}
	}
	if after >= math.MaxInt64 {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT seq, stream, ts, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", int64(after), maxEvents)
	if err != nil {
		return nil, fmt.Errorf("read buffer: %w", err)
	}
	defer rows.Close()
	var out []Row
	total := 0
	for rows.Next() {
		var r Row
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &r.Stream, &r.TS, &data); err != nil {
			return nil, fmt.Errorf("read buffer: %w", err)
		}
		if maxBytes > 0 && len(out) > 0 && total+len(data) > maxBytes {
			break
		}
		total += len(data)
		r.Seq, r.Data = uint64(seq), data
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read buffer: %w", err)
	}
	return out, nil
}

// Delete removes the held events of streamName with seq in [first, last]; the
// caller calls it once JetStream has acknowledged the batch that holds them.
// Events of other streams in that range stay. Deleting events already gone is
// not an error. A range whose pages would overflow the write-ahead log's budget
// is deleted in several transactions; an error can leave a part deleted.
func (b *Buffer) Delete(ctx context.Context, streamName string, first, last uint64) error {
	if first == 0 || last < first || last >= math.MaxInt64 {
		return fmt.Errorf("delete from buffer: seq range %d..%d is empty or out of range", first, last)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	for from := first; from <= last; {
		to, pages, err := b.deleteChunk(ctx, from, last)
		if err != nil {
			return fmt.Errorf("delete from buffer: %w", err)
		}
		b.prepareWAL(ctx, pages)
		if err := b.deleteTx(ctx, streamName, from, to); err != nil {
			return fmt.Errorf("delete from buffer: %w", err)
		}
		b.afterWrite()
		from = to + 1
	}
	return nil
}

// deleteChunk returns the end of the next part of [from, last] to delete in one
// transaction: one whose rows (of every stream, since they share pages) fit in
// half the log's budget, and about how many pages the part rewrites.
func (b *Buffer) deleteChunk(ctx context.Context, from, last uint64) (uint64, int64, error) {
	limit := b.lim.walBudget / 2
	var total int64
	if err := b.conn.QueryRowContext(ctx, "SELECT coalesce(sum(length(data) + length(stream) + 38), 0) FROM events WHERE seq BETWEEN ? AND ?",
		int64(from), int64(last)).Scan(&total); err != nil {
		return 0, 0, err
	}
	if total <= limit {
		return last, total/b.lim.pageSize + 4, nil
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT seq, length(data) + length(stream) + 38 FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
		int64(from), int64(last))
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	end, size := from, int64(0)
	for rows.Next() {
		var seq, n int64
		if err := rows.Scan(&seq, &n); err != nil {
			return 0, 0, err
		}
		if size > 0 && size+n > limit {
			break
		}
		end, size = uint64(seq), size+n
	}
	return end, size/b.lim.pageSize + 4, rows.Err()
}

// deleteTx deletes the events of streamName in [first, last] in one transaction.
func (b *Buffer) deleteTx(ctx context.Context, streamName string, first, last uint64) error {
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return mapFull(err)
	}
	defer tx.Rollback()
	var n, bytes int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(data)), 0) FROM events WHERE seq BETWEEN ? AND ? AND stream = ?",
		int64(first), int64(last), streamName).Scan(&n, &bytes); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE seq BETWEEN ? AND ? AND stream = ?", int64(first), int64(last), streamName); err != nil {
		return mapFull(err)
	}
	st := b.st
	st.buffered -= n
	st.bufferedBytes -= bytes
	if st.ackedSeq, err = ackedSeq(ctx, tx, st.lastSeq); err != nil {
		return err
	}
	if err := saveState(ctx, tx, st); err != nil {
		return mapFull(err)
	}
	if err := pruneDrops(ctx, tx, st); err != nil {
		return mapFull(err)
	}
	if err := tx.Commit(); err != nil {
		return mapFull(err)
	}
	b.st = st
	return nil
}

// Lease marks the events with seq <= upTo as in flight: drop-oldest and MaxAge
// leave them alone until Release. A lease replaces the previous one. Events read
// before the lease is taken can be dropped in between; a caller that must
// exclude that leases math.MaxUint64 before Read and narrows the lease after.
func (b *Buffer) Lease(upTo uint64) { b.lease.Store(upTo) }

// Release ends the lease.
func (b *Buffer) Release() { b.lease.Store(0) }
