package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"

	"github.com/tributary-edge/tributary/stream"
)

// How drops are recorded. Events are dropped as a run of the oldest unleased
// held events (drop-oldest and max-age alike), so a drop's range [first, last]
// holds its own events and seqs that were no longer held: sent ones, or ones an
// earlier drop took. A run that would span an earlier drop's range is cut around
// it, so that no two drops' ranges overlap and each count is exact. To know the
// earlier ranges, sent drops are kept until the acked seq passes them.

// PendingDrops returns the drops not yet marked sent, oldest first. A returned
// drop is never changed afterwards; later drops go into new rows.
func (b *Buffer) PendingDrops(ctx context.Context) ([]edge.DropRow, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT id, epoch, first_seq, last_seq, count, reason FROM drops WHERE sent = 0 ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read drops: %w", err)
	}
	defer rows.Close()
	var out []edge.DropRow
	for rows.Next() {
		var d edge.DropRow
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

// MarkDropsSent records that the hub has the drops with the given IDs, so
// PendingDrops no longer returns them. Unknown IDs are ignored.
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
	err := b.writeTx(ctx, func(tx *sql.Tx) error {
		const chunk = 500
		for len(ids) > 0 {
			n := min(chunk, len(ids))
			args := make([]any, n)
			for i, id := range ids[:n] {
				args[i] = id
			}
			q := "UPDATE drops SET sent = 1 WHERE id IN (?" + strings.Repeat(", ?", n-1) + ")"
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return pruneDrops(ctx, tx, b.st)
	})
	if err != nil {
		return fmt.Errorf("mark drops sent: %w", err)
	}
	b.afterWrite()
	return nil
}

// pruneDrops forgets the sent drops that no later drop can reach: those of
// other epochs, and those at or below the acked seq.
func pruneDrops(ctx context.Context, tx *sql.Tx, st state) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM drops WHERE sent = 1 AND (epoch <> ? OR last_seq <= ?)", st.epoch, int64(st.ackedSeq))
	return err
}

// dropRun sums up the events dropped in one transaction for a reason.
type dropRun struct {
	reason      string
	first, last uint64
	count       int64
	bytes       int64
}

// deleteRange drops every held event with after < seq <= last: it records them
// as drops of run.reason, cut around earlier drops' ranges, deletes them, and
// updates the state's counts and run.
func (b *Buffer) deleteRange(ctx context.Context, tx *sql.Tx, st *state, run *dropRun, after, last uint64) (int64, error) {
	var spans [][2]int64
	if err := sqlitex.EachRow(ctx, tx, "SELECT first_seq, last_seq FROM drops WHERE epoch = ? AND last_seq > ? AND first_seq <= ? ORDER BY first_seq",
		func(rows *sql.Rows) error {
			var s [2]int64
			if err := rows.Scan(&s[0], &s[1]); err != nil {
				return err
			}
			spans = append(spans, s)
			return nil
		}, st.epoch, int64(after), int64(last)); err != nil {
		return 0, err
	}
	// The pieces of (after, last] between earlier drops' ranges.
	var pieces [][2]int64
	lo := int64(after)
	for _, s := range spans {
		if s[0]-1 > lo {
			pieces = append(pieces, [2]int64{lo, min(s[0]-1, int64(last))})
		}
		lo = max(lo, s[1])
	}
	if int64(last) > lo {
		pieces = append(pieces, [2]int64{lo, int64(last)})
	}
	var total int64
	for _, p := range pieces {
		var n, bytes int64
		var first, end sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(data)), 0), min(seq), max(seq) FROM events WHERE seq > ? AND seq <= ?",
			p[0], p[1]).Scan(&n, &bytes, &first, &end); err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		d := stream.Drop{Epoch: st.epoch, FirstSeq: uint64(first.Int64), LastSeq: uint64(end.Int64), Count: uint64(n), Reason: run.reason}
		if err := b.recordDrop(ctx, tx, d); err != nil {
			return 0, err
		}
		if run.count == 0 || d.FirstSeq < run.first {
			run.first = d.FirstSeq
		}
		run.last = max(run.last, d.LastSeq)
		run.count += n
		run.bytes += bytes
		st.buffered -= n
		st.bufferedBytes -= bytes
		st.dropped += uint64(n)
		total += n
	}
	if total == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE seq > ? AND seq <= ?", int64(after), int64(last)); err != nil {
		return 0, err
	}
	return total, nil
}

// recordDrop stores d as a pending drop. It extends the newest drop instead when
// that one is pending, has the same epoch and reason, has not been handed out by
// PendingDrops, and neither a held event nor another drop lies between the two,
// so that a long stretch of dropping makes few rows. The caller holds b.mu.
func (b *Buffer) recordDrop(ctx context.Context, tx *sql.Tx, d stream.Drop) error {
	var id, last, sent int64
	var epoch, reason string
	err := tx.QueryRowContext(ctx, "SELECT id, epoch, last_seq, reason, sent FROM drops ORDER BY id DESC LIMIT 1").Scan(&id, &epoch, &last, &reason, &sent)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err == nil && sent == 0 && id > b.handed && epoch == d.Epoch && reason == d.Reason && uint64(last) < d.FirstSeq {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 WHERE EXISTS (SELECT 1 FROM events WHERE seq > ?1 AND seq < ?2)
			OR EXISTS (SELECT 1 FROM drops WHERE epoch = ?3 AND id <> ?4 AND last_seq > ?1 AND first_seq < ?2)`,
			last, int64(d.FirstSeq), d.Epoch, id).Scan(&one)
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

// finishDrops updates the acked seq after drops.
func (b *Buffer) finishDrops(ctx context.Context, tx *sql.Tx, st *state, run dropRun) error {
	if run.count == 0 {
		return nil
	}
	acked, err := ackedSeq(ctx, tx, st.lastSeq)
	if err != nil {
		return err
	}
	st.ackedSeq = acked
	return nil
}

// noteDrops logs a committed drop.
func (b *Buffer) noteDrops(run dropRun) {
	if run.count == 0 {
		return
	}
	b.log.Warn().Str("reason", run.reason).Int64("events", run.count).Int64("bytes", run.bytes).
		Uint64("first_seq", run.first).Uint64("last_seq", run.last).Msg("dropped events")
}
