package buffer

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// How the size cap works. The file on disk is the database (page_count pages,
// free pages included) and its write-ahead log. The log gets walBudget bytes of
// MaxBytes: a write whose pages would take it past that is preceded by a
// checkpoint that empties it (wal_checkpoint(TRUNCATE)), and one append may not
// need more. The database gets the rest, capPages pages, enforced by SQLite's
// max_page_count; before writing, an append makes room by dropping the oldest
// unleased events (drop-oldest) or is refused (reject). Free pages are reused
// first; incremental vacuum gives them back to the file system when the buffer
// has drained, or when the cap was lowered.

// reservedPages is the room kept for the schema, the meta row, drops, counters
// and offsets, which events cannot use.
const reservedPages = 16

// dropChunkRows bounds the rows one drop statement looks at.
const dropChunkRows = 50_000

// limits are derived from MaxBytes and the page size at Open.
type limits struct {
	pageSize   int64
	capPages   int64 // 0: no cap
	walBudget  int64 // bytes the write-ahead log may take
	ckptBytes  int64 // checkpoint after a write that leaves the log larger
	maxTxPages int64 // most pages one append may need; 0: no limit
	groupBytes int64 // data bytes the writer groups into one transaction
}

func (b *Buffer) applyLimits(ctx context.Context) error {
	var pageSize int64
	if err := b.conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return fmt.Errorf("read page size: %w", err)
	}
	l := limits{pageSize: pageSize, walBudget: 64 << 20, ckptBytes: 4 << 20, groupBytes: 4 << 20}
	if b.MaxBytes > 0 {
		l.walBudget = min(max(b.MaxBytes/8, 128<<10), 64<<20)
		l.capPages = (b.MaxBytes - l.walBudget) / pageSize
		l.ckptBytes = min(l.walBudget/2, 4<<20)
		l.maxTxPages = l.walBudget/(pageSize+24) - 4
		l.groupBytes = l.walBudget / 4
	}
	b.lim = l
	return nil
}

// setMaxPageCount applies the cap (and the test limit) as SQLite's
// max_page_count. SQLite keeps it at no less than the current page count.
func (b *Buffer) setMaxPageCount(ctx context.Context) error {
	limit := b.lim.capPages
	if b.maxPageCount > 0 && (limit == 0 || b.maxPageCount < limit) {
		limit = b.maxPageCount
	}
	if limit == 0 {
		limit = math.MaxUint32 - 1
	}
	var got int64
	if err := b.conn.QueryRowContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", limit)).Scan(&got); err != nil {
		return fmt.Errorf("set max page count: %w", err)
	}
	return nil
}

// pages returns the database's page count and free page count.
func pages(ctx context.Context, q querier) (count, free int64, err error) {
	if err := q.QueryRowContext(ctx, "PRAGMA page_count").Scan(&count); err != nil {
		return 0, 0, err
	}
	if err := q.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, 0, err
	}
	return count, free, nil
}

// capHit reports whether a SQLITE_FULL met by a write needing need pages came
// from the cap rather than from the disk. The caller holds b.mu.
func (b *Buffer) capHit(need int64) bool {
	if b.lim.capPages == 0 || (b.maxPageCount > 0 && b.maxPageCount < b.lim.capPages) {
		return false
	}
	count, free, err := pages(context.Background(), b.conn)
	if err != nil {
		return false
	}
	return count-free+2*need+reservedPages >= b.lim.capPages
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// prepareWAL empties the write-ahead log first when a write of txPages pages
// would take it past its budget. The caller holds b.mu.
func (b *Buffer) prepareWAL(ctx context.Context, txPages int64) {
	wal := fileSize(b.Path + "-wal")
	if wal > 0 && wal+txPages*(b.lim.pageSize+24) > b.lim.walBudget {
		b.checkpoint(ctx)
	}
}

// afterWrite checkpoints when the log has grown past its threshold or the files
// would be over the cap, and publishes the stats. The caller holds b.mu.
func (b *Buffer) afterWrite() {
	wal := fileSize(b.Path + "-wal")
	if wal > b.lim.ckptBytes || (b.MaxBytes > 0 && fileSize(b.Path)+wal > b.MaxBytes) {
		b.checkpoint(context.Background())
	}
	b.publishStats()
}

// checkpoint copies the log into the database and truncates it. A failure
// (a full disk, say) only leaves the log as it was. The caller holds b.mu.
func (b *Buffer) checkpoint(ctx context.Context) {
	var busy, logPages, done int64
	err := b.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
	if err != nil || busy != 0 {
		b.log.Warn().Err(err).Int64("busy", busy).Msg("checkpoint did not complete")
	}
}

// roomFor makes sure the cap leaves room for need more pages, dropping the oldest
// unleased events under drop-oldest. It reports false, with nothing changed,
// when there is no room and none can be made. The caller holds b.mu.
func (b *Buffer) roomFor(ctx context.Context, tx *sql.Tx, st *state, run *dropRun, need int64) (bool, error) {
	want := need + need/16 + 4
	count, free, err := pages(ctx, tx)
	if err != nil {
		return false, err
	}
	room := b.lim.capPages - count + free
	if room >= want {
		return true, nil
	}
	if b.Policy == Reject {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT room"); err != nil {
		return false, err
	}
	savedSt, savedRun := *st, *run
	for room < want {
		n, err := b.dropOldest(ctx, tx, st, run, (want-room)*b.lim.pageSize)
		if err != nil {
			return false, err
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO room; RELEASE room"); err != nil {
				return false, err
			}
			*st, *run = savedSt, savedRun
			return false, nil
		}
		if count, free, err = pages(ctx, tx); err != nil {
			return false, err
		}
		room = b.lim.capPages - count + free
	}
	_, err = tx.ExecContext(ctx, "RELEASE room")
	return err == nil, err
}

// dropOldest deletes the oldest unleased events that take about wantBytes (at
// least one) and adds them to run. It returns how many it deleted.
func (b *Buffer) dropOldest(ctx context.Context, tx *sql.Tx, st *state, run *dropRun, wantBytes int64) (int64, error) {
	after := b.lease.Load()
	if after >= math.MaxInt64 {
		return 0, nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT seq, length(data), length(stream) FROM events WHERE seq > ? ORDER BY seq LIMIT ?", int64(after), dropChunkRows)
	if err != nil {
		return 0, err
	}
	var first, last, size int64
	for rows.Next() && size < wantBytes {
		var seq, dataLen, streamLen int64
		if err := rows.Scan(&seq, &dataLen, &streamLen); err != nil {
			rows.Close()
			return 0, err
		}
		if first == 0 {
			first = seq
		}
		last = seq
		size += dataLen + streamLen + 38
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if first == 0 {
		return 0, nil
	}
	return b.deleteRange(ctx, tx, st, run, after, uint64(last))
}

// ackedSeq returns the highest seq at and below which nothing is held.
func ackedSeq(ctx context.Context, q querier, lastSeq uint64) (uint64, error) {
	var m sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT min(seq) FROM events").Scan(&m); err != nil {
		return 0, err
	}
	if !m.Valid {
		return lastSeq, nil
	}
	return uint64(m.Int64) - 1, nil
}

// expire drops the unleased events older than MaxAge, in seq order up to the
// first one that is not, as drops with reason max-age.
func (b *Buffer) expire(ctx context.Context) error {
	if b.MaxAge <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	for {
		n, more, err := b.expireChunk(ctx)
		if n > 0 {
			b.afterWrite()
		}
		if err != nil || !more {
			return err
		}
	}
}

// expireChunk drops up to dropChunkRows expired events in one transaction. It
// returns how many it dropped and whether there may be more.
func (b *Buffer) expireChunk(ctx context.Context) (dropped int64, more bool, err error) {
	cutoff := b.Now().Add(-b.MaxAge).UnixNano()
	after := b.lease.Load()
	if after >= math.MaxInt64 {
		return 0, false, nil
	}
	var ingest int64
	err = b.conn.QueryRowContext(ctx, "SELECT ingest FROM events WHERE seq > ? ORDER BY seq LIMIT 1", int64(after)).Scan(&ingest)
	if err == sql.ErrNoRows || (err == nil && ingest >= cutoff) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("expire events: %w", err)
	}
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("expire events: %w", mapFull(err))
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT seq, ingest FROM events WHERE seq > ? ORDER BY seq LIMIT ?", int64(after), dropChunkRows)
	if err != nil {
		return 0, false, fmt.Errorf("expire events: %w", err)
	}
	var last int64
	taken := 0
	for rows.Next() {
		var seq, in int64
		if err := rows.Scan(&seq, &in); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("expire events: %w", err)
		}
		if in >= cutoff {
			break
		}
		last = seq
		taken++
	}
	rows.Close()
	if last == 0 {
		return 0, false, nil
	}
	st := b.st
	run := dropRun{reason: stream.ReasonMaxAge}
	if _, err := b.deleteRange(ctx, tx, &st, &run, after, uint64(last)); err != nil {
		return 0, false, fmt.Errorf("expire events: %w", err)
	}
	if err := b.finishDrops(ctx, tx, &st, run); err != nil {
		return 0, false, fmt.Errorf("expire events: %w", mapFull(err))
	}
	if err := saveState(ctx, tx, st); err != nil {
		return 0, false, fmt.Errorf("expire events: %w", mapFull(err))
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("expire events: %w", mapFull(err))
	}
	b.st = st
	b.noteDrops(run)
	return run.count, taken == dropChunkRows, nil
}

// vacuumChunk returns free pages to the file system, at most as many as keep
// the log within its budget, and checkpoints. It returns the pages freed.
func (b *Buffer) vacuumChunk(ctx context.Context, maxPages int64) (int64, error) {
	chunk := max(1, min(maxPages, b.lim.walBudget/(3*(b.lim.pageSize+24))))
	before, _, err := pages(ctx, b.conn)
	if err != nil {
		return 0, err
	}
	// incremental_vacuum frees one page per step, so every row must be read.
	rows, err := b.conn.QueryContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", chunk))
	if err != nil {
		return 0, mapFull(err)
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, mapFull(err)
	}
	b.checkpoint(ctx)
	after, _, err := pages(ctx, b.conn)
	if err != nil {
		return 0, err
	}
	return before - after, nil
}

// reclaim gives free pages back to the file system once the buffer has
// drained: when over half the file, and at least a checkpoint's worth, is free.
func (b *Buffer) reclaim(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	defer b.publishStats()
	for i := 0; i < 8; i++ {
		count, free, err := pages(ctx, b.conn)
		if err != nil {
			return fmt.Errorf("reclaim free pages: %w", err)
		}
		if free*2 < count || free*b.lim.pageSize < b.lim.ckptBytes {
			return nil
		}
		n, err := b.vacuumChunk(ctx, free)
		if err != nil {
			return fmt.Errorf("reclaim free pages: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// shrinkToCap brings a file that is over capPages (the cap was lowered) within
// it: it frees pages and, if that is not enough, drops the oldest events. Then it
// applies max_page_count. The caller holds b.mu; it runs at Open.
func (b *Buffer) shrinkToCap(ctx context.Context) error {
	for b.lim.capPages > 0 {
		count, free, err := pages(ctx, b.conn)
		if err != nil {
			return err
		}
		if count <= b.lim.capPages {
			break
		}
		if free > 0 {
			if _, err := b.vacuumChunk(ctx, count-b.lim.capPages); err != nil {
				return fmt.Errorf("shrink to cap: %w", err)
			}
			continue
		}
		n, err := b.dropForShrink(ctx, (count-b.lim.capPages+4)*b.lim.pageSize)
		if err != nil {
			return fmt.Errorf("shrink to cap: %w", err)
		}
		if n == 0 {
			b.log.Error().Int64("pages", count).Int64("cap_pages", b.lim.capPages).Msg("buffer is over its cap with no events left to drop")
			break
		}
	}
	return b.setMaxPageCount(ctx)
}

func (b *Buffer) dropForShrink(ctx context.Context, wantBytes int64) (int64, error) {
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, mapFull(err)
	}
	defer tx.Rollback()
	st := b.st
	run := dropRun{reason: stream.ReasonBufferFull}
	n, err := b.dropOldest(ctx, tx, &st, &run, wantBytes)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := b.finishDrops(ctx, tx, &st, run); err != nil {
		return 0, mapFull(err)
	}
	if err := saveState(ctx, tx, st); err != nil {
		return 0, mapFull(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, mapFull(err)
	}
	b.st = st
	b.noteDrops(run)
	return n, nil
}

// maintainPeriod is how often the maintenance loop runs.
func maintainPeriod(maxAge time.Duration) time.Duration {
	if maxAge <= 0 {
		return time.Minute
	}
	return min(max(maxAge/10, time.Second), time.Minute)
}

// maintainLoop expires old events and reclaims free pages every tick.
func (b *Buffer) maintainLoop() {
	defer b.loops.Done()
	t := time.NewTicker(b.tick)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if err := b.expire(ctx); err != nil {
			b.log.Error().Err(err).Msg("expire old events")
		}
		if err := b.reclaim(ctx); err != nil {
			b.log.Error().Err(err).Msg("reclaim free pages")
		}
	}
}
