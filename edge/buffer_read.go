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
// not an error.
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
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete from buffer: %w", mapFull(err))
	}
	defer tx.Rollback()
	var n, bytes int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(data)), 0) FROM events WHERE seq BETWEEN ? AND ? AND stream = ?",
		int64(first), int64(last), streamName).Scan(&n, &bytes); err != nil {
		return fmt.Errorf("delete from buffer: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE seq BETWEEN ? AND ? AND stream = ?", int64(first), int64(last), streamName); err != nil {
		return fmt.Errorf("delete from buffer: %w", mapFull(err))
	}
	st := b.st
	st.buffered -= n
	st.bufferedBytes -= bytes
	if st.ackedSeq, err = ackedSeq(ctx, tx, st.lastSeq); err != nil {
		return fmt.Errorf("delete from buffer: %w", err)
	}
	if err := saveState(ctx, tx, st); err != nil {
		return fmt.Errorf("delete from buffer: %w", mapFull(err))
	}
	if err := pruneDrops(ctx, tx, st); err != nil {
		return fmt.Errorf("delete from buffer: %w", mapFull(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete from buffer: %w", mapFull(err))
	}
	b.st = st
	b.afterWrite()
	return nil
}

// Lease marks the events with seq <= upTo as in flight: drop-oldest and MaxAge
// leave them alone until Release. A lease replaces the previous one. Events read
// before the lease is taken can be dropped in between; a caller that must
// exclude that leases math.MaxUint64 before Read and narrows the lease after.
func (b *Buffer) Lease(upTo uint64) { b.lease.Store(upTo) }

// Release ends the lease.
func (b *Buffer) Release() { b.lease.Store(0) }
