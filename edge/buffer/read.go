package buffer

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

// Read returns, in seq order, the held events with seq > after: at most
// maxEvents of them, and no more than about maxBytes of data (maxBytes <= 0: no
// byte limit) but always at least one when any is held. With MaxAge set it
// first drops the expired events. maxEvents must be positive.
func (b *Buffer) Read(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]edge.Row, error) {
	if err := b.beforeRead(ctx, maxEvents); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rows, _, err := b.readLocked(ctx, after, maxEvents, maxBytes)
	return rows, err
}

// ReadLeased is Read for the forwarder: it reads the next events after `after`
// and leases them in the same critical section, so that neither drop-oldest nor
// MaxAge can take a row between the read and the lease. The lease covers every
// seq up to the last row returned and replaces the previous one; Release ends
// it. Leased rows are in flight, and with MaxBytes set they may take at most a
// quarter of it: leased rows cannot be dropped, so drop-oldest must always find
// unleased rows to make room with (one append needs at most an eighth of the
// cap). When that in-flight budget is used up, ReadLeased returns no rows until
// Delete or Release frees some; it returns at least one row whenever nothing is
// leased and a row is held.
func (b *Buffer) ReadLeased(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]edge.Row, error) {
	if err := b.beforeRead(ctx, maxEvents); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.MaxBytes > 0 {
		budget := max(b.MaxBytes/4, 1)
		room := budget - b.leasedBytes
		if room <= 0 && b.leasedBytes > 0 {
			return nil, nil
		}
		if maxBytes <= 0 || int64(maxBytes) > room {
			maxBytes = int(max(room, 1))
		}
	}
	rows, bytes, err := b.readLocked(ctx, after, maxEvents, maxBytes)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	b.lease.Store(rows[len(rows)-1].Seq)
	b.leasedBytes += bytes
	return rows, nil
}

// beforeRead checks the arguments of a read and expires old events first.
func (b *Buffer) beforeRead(ctx context.Context, maxEvents int) error {
	if maxEvents <= 0 {
		return fmt.Errorf("read buffer: max events %d is not positive", maxEvents)
	}
	if b.MaxAge > 0 {
		if err := b.expire(ctx); err != nil {
			return fmt.Errorf("read buffer: %w", err)
		}
	}
	return nil
}

// readLocked reads rows as Read describes and returns their data bytes. A
// row found damaged (see checkRow) is not returned: it is dropped as a
// corrupt-buffer drop of that event alone, reported to the hub like any drop,
// and the read goes on. The caller holds b.mu.
func (b *Buffer) readLocked(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]edge.Row, int64, error) {
	for {
		out, total, damaged, err := b.readRows(ctx, after, maxEvents, maxBytes)
		if err != nil || len(damaged) == 0 {
			return out, total, err
		}
		if err := b.dropDamaged(ctx, damaged); err != nil {
			return nil, 0, fmt.Errorf("read buffer: drop damaged events: %w", err)
		}
		if len(out) > 0 {
			return out, total, nil
		}
	}
}

// readRows reads up to maxEvents rows after after and checks each; it returns
// the good ones and the seqs of the damaged ones.
func (b *Buffer) readRows(ctx context.Context, after uint64, maxEvents, maxBytes int) ([]edge.Row, int64, []damagedRow, error) {
	if err := b.usable(); err != nil {
		return nil, 0, nil, err
	}
	if after >= math.MaxInt64 {
		return nil, 0, nil, nil
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT seq, stream, ts, ingest, data, crc FROM events WHERE seq > ? ORDER BY seq LIMIT ?", int64(after), maxEvents)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read buffer: %w", err)
	}
	defer rows.Close()
	var out []edge.Row
	var damaged []damagedRow
	var total int64
	for rows.Next() {
		var r edge.Row
		var seq int64
		var data []byte
		var crc *int64
		if err := rows.Scan(&seq, &r.Stream, &r.TS, &r.Ingest, &data, &crc); err != nil {
			return nil, 0, nil, fmt.Errorf("read buffer: %w", err)
		}
		if err := checkRow(uint64(seq), r.Stream, r.TS, data, crc); err != nil {
			damaged = append(damaged, damagedRow{uint64(seq), err})
			continue
		}
		if maxBytes > 0 && len(out) > 0 && total+int64(len(data)) > int64(maxBytes) {
			break
		}
		total += int64(len(data))
		r.Seq, r.Data = uint64(seq), data
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, nil, fmt.Errorf("read buffer: %w", err)
	}
	return out, total, damaged, nil
}

// damagedRow is a row that failed checkRow, and why.
type damagedRow struct {
	seq uint64
	err error
}

// dropDamaged drops damaged rows, each as a corrupt-buffer drop of its own
// seq, in one transaction. The caller holds b.mu.
func (b *Buffer) dropDamaged(ctx context.Context, rows []damagedRow) error {
	st := b.st
	run := dropRun{reason: stream.ReasonCorruptBuffer}
	err := b.writeTx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := b.deleteRange(ctx, tx, &st, &run, r.seq-1, r.seq); err != nil {
				return err
			}
		}
		if err := b.finishDrops(ctx, tx, &st, run); err != nil {
			return err
		}
		return saveState(ctx, tx, st)
	})
	if err != nil {
		return err
	}
	b.st = st
	for _, r := range rows {
		b.log.Error().Err(r.err).Uint64("seq", r.seq).Msg("buffered event is damaged; it is dropped and reported as corrupt-buffer")
	}
	b.noteDrops(run)
	b.afterWrite()
	return nil
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
	st := b.st
	var bytes int64
	err := b.writeTx(ctx, func(tx *sql.Tx) error {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(data)), 0) FROM events WHERE seq BETWEEN ? AND ? AND stream = ?",
			int64(first), int64(last), streamName).Scan(&n, &bytes); err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE seq BETWEEN ? AND ? AND stream = ?", int64(first), int64(last), streamName); err != nil {
			return err
		}
		st.buffered -= n
		st.bufferedBytes -= bytes
		var err error
		if st.ackedSeq, err = ackedSeq(ctx, tx, st.lastSeq); err != nil {
			return err
		}
		if err := saveState(ctx, tx, st); err != nil {
			return err
		}
		return pruneDrops(ctx, tx, st)
	})
	if err != nil {
		return err
	}
	b.st = st
	if last <= b.lease.Load() {
		b.leasedBytes = max(b.leasedBytes-bytes, 0)
	}
	return nil
}

// Lease marks the events with seq <= upTo as in flight: drop-oldest and MaxAge
// leave them alone until Release. A lease replaces the previous one. Events read
// before the lease is taken can be dropped in between; ReadLeased, which reads
// and leases at once, excludes that.
func (b *Buffer) Lease(upTo uint64) { b.lease.Store(upTo) }

// Release ends the lease and frees the in-flight budget.
func (b *Buffer) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lease.Store(0)
	b.leasedBytes = 0
}
