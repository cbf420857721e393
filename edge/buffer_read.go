package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tributary-edge/tributary/stream"
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

// DropRow is a drop recorded by the buffer (buffer-full, max-age or
// corrupt-buffer) that has not yet been reported to the hub.
type DropRow struct {
	ID int64
	stream.Drop
}

// PendingDrops returns the drops not yet marked sent, oldest first. A returned
// drop is never changed afterwards; later drops go into new rows.
func (b *Buffer) PendingDrops(ctx context.Context) ([]DropRow, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT id, epoch, first_seq, last_seq, count, reason FROM drops ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read drops: %w", err)
	}
	defer rows.Close()
	var out []DropRow
	for rows.Next() {
		var d DropRow
		var first, last, count int64
		if err := rows.Scan(&d.ID, &d.Epoch, &first, &last, &count, &d.Reason); err != nil {
			return nil, fmt.Errorf("read drops: %w", err)
		}
		d.FirstSeq, d.LastSeq, d.Count = uint64(first), uint64(last), uint64(count)
		out = append(out, d)
		b.handed = max(b.handed, d.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read drops: %w", err)
	}
	return out, nil
}

// MarkDropsSent forgets the drops with the given IDs once the hub has them.
// Unknown IDs are ignored.
func (b *Buffer) MarkDropsSent(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark drops sent: %w", mapFull(err))
	}
	defer tx.Rollback()
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		q := "DELETE FROM drops WHERE id IN (?" + strings.Repeat(", ?", n-1) + ")"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("mark drops sent: %w", mapFull(err))
		}
		ids = ids[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark drops sent: %w", mapFull(err))
	}
	b.afterWrite()
	return nil
}

// recordDrop stores d as a pending drop. It extends the newest pending drop
// instead when that one has the same epoch and reason, has not been handed out
// by PendingDrops, and no held event lies between the two, so that a long
// stretch of dropping makes few rows. The caller holds b.mu.
func (b *Buffer) recordDrop(ctx context.Context, tx *sql.Tx, d stream.Drop) error {
	var id, last int64
	var epoch, reason string
	err := tx.QueryRowContext(ctx, "SELECT id, epoch, last_seq, reason FROM drops ORDER BY id DESC LIMIT 1").Scan(&id, &epoch, &last, &reason)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err == nil && id > b.handed && epoch == d.Epoch && reason == d.Reason && uint64(last) < d.FirstSeq {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM events WHERE seq > ? AND seq < ? LIMIT 1", last, int64(d.FirstSeq)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, "UPDATE drops SET last_seq = ?, count = count + ? WHERE id = ?", int64(d.LastSeq), int64(d.Count), id)
			return err
		}
		if err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO drops (epoch, first_seq, last_seq, count, reason) VALUES (?, ?, ?, ?, ?)",
		d.Epoch, int64(d.FirstSeq), int64(d.LastSeq), int64(d.Count), d.Reason)
	return err
}
