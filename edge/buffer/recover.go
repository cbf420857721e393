package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"

	"github.com/tributary-edge/tributary/stream"
)

// salvage is what could still be read from a corrupt buffer file.
type salvage struct {
	meta     *state // nil when unreadable
	drops    []stream.Drop
	counters []edge.CounterRow
	offsets  map[string][]byte
	problems []string
}

// recover handles a buffer file that is corrupt or not a database: it reads what
// it can from it, renames it (with its -wal and -shm files) to
// <path>.corrupt-<UTC time>, creates a new database with a new epoch, and records
// the events that were held and unsent as a drop with reason corrupt-buffer for
// the old epoch (acked_seq+1 .. last_seq). The old file's pending drops,
// counter states and source offsets are carried over when readable. What cannot
// be read is logged at error level; the buffer runs on.
func (b *Buffer) recover(ctx context.Context, cause error) (*sql.DB, *sql.Conn, state, error) {
	b.log.Error().Err(cause).Str("path", b.Path).Msg("buffer file is corrupt or unreadable; moving it aside and starting a new epoch")
	sv := salvageFile(ctx, b.Path)
	aside, err := moveAside(b.Path, b.Now().UTC())
	if err != nil {
		return nil, nil, state{}, fmt.Errorf("move corrupt buffer aside: %w", err)
	}
	db, conn, st, err := openDB(ctx, b.Path, b.newEpoch)
	if err != nil {
		return nil, nil, state{}, err
	}
	lost, err := restore(ctx, conn, &st, sv)
	if err != nil {
		_ = conn.Close()
		_ = db.Close()
		return nil, nil, state{}, fmt.Errorf("carry over from corrupt buffer: %w", err)
	}
	ev := b.log.Error().Str("moved_to", aside).Str("epoch", st.epoch).
		Int("counters", len(sv.counters)).Int("offsets", len(sv.offsets)).Int("pending_drops", len(sv.drops))
	if len(sv.problems) > 0 {
		ev = ev.Strs("unreadable", sv.problems)
	}
	if sv.meta == nil {
		ev.Msg("corrupt buffer moved aside; its epoch could not be read, so its unsent events are lost without a drop record")
	} else {
		ev.Str("old_epoch", sv.meta.epoch).Uint64("lost_events", lost).
			Uint64("first_seq", sv.meta.ackedSeq+1).Uint64("last_seq", sv.meta.lastSeq).
			Msg("corrupt buffer moved aside; its unsent events are recorded as a corrupt-buffer drop")
	}
	return db, conn, st, nil
}

// salvageFile reads, best effort, the meta row, pending drops, counters and
// offsets of a damaged buffer file.
func salvageFile(ctx context.Context, path string) salvage {
	sv := salvage{offsets: map[string][]byte{}}
	db, err := sqlitex.Open(path, sqlitex.Options{AsIs: true, Exclusive: true, BusyTimeout: time.Second})
	if err != nil {
		sv.problems = append(sv.problems, "open: "+err.Error())
		return sv
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	note := func(what string, err error) { sv.problems = append(sv.problems, what+": "+err.Error()) }

	if st, err := loadState(ctx, db); err != nil {
		note("meta", err)
	} else {
		sv.meta = &st
	}
	if err := sqlitex.EachRow(ctx, db, "SELECT epoch, first_seq, last_seq, count, reason FROM drops ORDER BY id", func(rows *sql.Rows) error {
		var d stream.Drop
		var first, last, count int64
		if err := rows.Scan(&d.Epoch, &first, &last, &count, &d.Reason); err != nil {
			return err
		}
		d.FirstSeq, d.LastSeq, d.Count = uint64(first), uint64(last), uint64(count)
		if d.Validate() == nil {
			sv.drops = append(sv.drops, d)
		}
		return nil
	}); err != nil {
		note("drops", err)
	}
	if err := salvageCounters(ctx, db, &sv); err != nil {
		note("counters", err)
	}
	if err := sqlitex.EachRow(ctx, db, "SELECT key, value FROM offsets", func(rows *sql.Rows) error {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		if v == nil {
			v = []byte{}
		}
		sv.offsets[k] = v
		return nil
	}); err != nil {
		note("offsets", err)
	}
	return sv
}

// salvageCounters reads the valid counter states of a damaged file of either
// schema version: a file from before counter kinds has sums only.
func salvageCounters(ctx context.Context, db *sql.DB, sv *salvage) error {
	var kinds int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info('counters') WHERE name = 'kind'").Scan(&kinds); err != nil {
		return err
	}
	query := "SELECT name, " + counterColumns + " FROM counters"
	if kinds == 0 {
		query = "SELECT name, 'sum', p, n, NULL, 0, 0 FROM counters"
	}
	return sqlitex.EachRow(ctx, db, query, func(rows *sql.Rows) error {
		var c edge.CounterRow
		var cr counterRow
		if err := rows.Scan(append([]any{&c.Name}, cr.dest()...)...); err != nil {
			return err
		}
		var err error
		if c.State, err = cr.register(c.Name); err == nil && stream.ValidateName("counter", c.Name) == nil {
			sv.counters = append(sv.counters, c)
		}
		return nil
	})
}

// moveAside renames path and its -wal and -shm files to
// <path>.corrupt-<now>[-N] and returns the new name of path.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.Format("20060102T150405Z")
	name := base
	for i := 2; exists(name) || exists(name+"-wal"); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+suffix, name+suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return name, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// restore writes what was salvaged into the new database: the old pending drops,
// a corrupt-buffer drop for the old epoch's unsent events, the counters (marked
// pending, so the hub gets them again) and the offsets. It returns how many
// events were lost.
func restore(ctx context.Context, conn *sql.Conn, st *state, sv salvage) (uint64, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	drops := sv.drops
	var lost uint64
	if m := sv.meta; m != nil {
		lost = uint64(max(m.buffered, 0))
		lost = min(lost, m.lastSeq-m.ackedSeq)
		if lost > 0 {
			drops = append(drops, stream.Drop{Epoch: m.epoch, FirstSeq: m.ackedSeq + 1, LastSeq: m.lastSeq, Count: lost, Reason: stream.ReasonCorruptBuffer})
		}
		st.dropped = m.dropped + lost
	}
	for _, d := range drops {
		if _, err := tx.ExecContext(ctx, "INSERT INTO drops (epoch, first_seq, last_seq, count, reason) VALUES (?, ?, ?, ?, ?)",
			d.Epoch, int64(d.FirstSeq), int64(d.LastSeq), int64(d.Count), d.Reason); err != nil {
			return 0, err
		}
	}
	for _, c := range sv.counters {
		// The state keeps its stamp, so a last register's next write is still
		// stamped after the ones the hub may have.
		if err := upsertCounter(ctx, tx, c.Name, c.State); err != nil {
			return 0, err
		}
	}
	for k, v := range sv.offsets {
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO offsets (key, value) VALUES (?, ?)", k, v); err != nil {
			return 0, err
		}
	}
	if err := saveState(ctx, tx, *st); err != nil {
		return 0, err
	}
	return lost, tx.Commit()
}
