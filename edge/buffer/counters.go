package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// counterColumns are the columns scanRegister reads, in its order.
const counterColumns = "kind, p, n, value, wall, logical"

// Incr adds delta (which may be negative) to this node's state of the sum
// counter name and returns the new state, committed in the same transaction as
// the increment. It returns an error wrapping stream.ErrInvalidName for a bad
// name, edge.ErrKindConflict when the counter is of another kind,
// counters.ErrOverflow (with nothing changed) when the state would overflow,
// edge.ErrBufferFull when the buffer is full under the reject policy,
// edge.ErrDiskFull and edge.ErrBufferClosed. A zero delta changes nothing, and
// does not make a new counter known.
func (b *Buffer) Incr(ctx context.Context, name string, delta int64) (counters.PN, error) {
	r, err := b.write(ctx, "increment", name, counters.KindSum, func(r counters.Register, _ int64) (counters.Register, error) {
		return r.Add(delta)
	})
	return r.PN, err
}

// Set puts v into this node's register of counter name, of kind max, min or
// last, and returns the register, committed in the same transaction as the
// write. A max or min keeps the larger or smaller of v and what it held; a last
// register takes v with the stamp HLC.Next(Now) of the stamp it held, so a
// node's later write is always stamped after its earlier ones, across restarts
// and whatever the clock did. The first write of a name fixes its kind.
//
// It returns an error wrapping stream.ErrInvalidName for a bad name,
// counters.ErrUnknownKind for a kind that is not a register,
// counters.ErrNotFinite for NaN or an infinity, edge.ErrKindConflict when the
// counter is of another kind, and the buffer's errors as Incr does.
func (b *Buffer) Set(ctx context.Context, name string, kind counters.Kind, v float64) (counters.Register, error) {
	if kind == counters.KindSum || !kind.Valid() {
		return counters.Register{}, fmt.Errorf("set counter %s: %w: %v, want max, min or last", name, counters.ErrUnknownKind, kind)
	}
	if v == 0 {
		// SQLite stores a whole REAL as an integer, which loses the sign of -0:
		// make it +0 before the node's state and the one it reads back differ.
		v = 0
	}
	return b.write(ctx, "set", name, kind, func(r counters.Register, nowMs int64) (counters.Register, error) {
		return r.Put(v, nowMs)
	})
}

// write applies op to this node's state of counter name, which must be of kind
// (a counter not yet written starts as the empty state of kind), and commits
// the result unless it is unchanged. op gets the buffer's clock in Unix
// milliseconds.
func (b *Buffer) write(ctx context.Context, verb, name string, kind counters.Kind, op func(counters.Register, int64) (counters.Register, error)) (counters.Register, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.Register{}, fmt.Errorf("%s counter: %w", verb, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return counters.Register{}, err
	}
	nowMs := b.Now().UnixMilli()
	for attempt := 0; ; attempt++ {
		r, err := b.counterTx(context.WithoutCancel(ctx), name, kind, func(r counters.Register) (counters.Register, error) { return op(r, nowMs) }, int64(attempt)*8)
		if err == nil {
			return r, nil
		}
		if sqlitex.IsFull(err) && b.capHit(4) {
			if b.Policy == DropOldest && attempt < 2 {
				continue
			}
			return counters.Register{}, fmt.Errorf("%s counter %s: %w: %w", verb, name, edge.ErrBufferFull, err)
		}
		return counters.Register{}, fmt.Errorf("%s counter %s: %w", verb, name, mapFull(err))
	}
}

// counterTx is one attempt of write; extra is the pages to make room for
// beyond the row's own.
func (b *Buffer) counterTx(ctx context.Context, name string, kind counters.Kind, op func(counters.Register) (counters.Register, error), extra int64) (counters.Register, error) {
	st := b.st
	run := dropRun{reason: stream.ReasonBufferFull}
	var next counters.Register
	err := sqlitex.Tx(ctx, b.conn, func(tx *sql.Tx) error {
		cur, found, err := readCounter(ctx, tx, name)
		if err != nil {
			return err
		}
		if !found {
			cur = counters.Register{Kind: kind}
		} else if cur.Kind != kind {
			return fmt.Errorf("%w: counter %q is a %v counter, not a %v; a counter's kind is fixed by its first write", edge.ErrKindConflict, name, cur.Kind, kind)
		}
		if next, err = op(cur); err != nil || next == cur {
			return err
		}
		if b.lim.capPages > 0 {
			ok, err := b.roomFor(ctx, tx, &st, &run, 2+extra)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: no room for the counter", edge.ErrBufferFull)
			}
		}
		if err := upsertCounter(ctx, tx, name, next); err != nil {
			return err
		}
		if run.count == 0 {
			return nil
		}
		if err := b.finishDrops(ctx, tx, &st, run); err != nil {
			return err
		}
		return saveState(ctx, tx, st)
	})
	if err != nil {
		return counters.Register{}, err
	}
	b.st = st
	b.noteDrops(run)
	b.afterWrite()
	return next, nil
}

// upsertCounter writes a counter's new state and moves its version on, so that
// the forwarder sends it.
func upsertCounter(ctx context.Context, tx *sql.Tx, name string, r counters.Register) error {
	kind, p, n, value, wall, logical := registerColumns(r)
	_, err := tx.ExecContext(ctx, `INSERT INTO counters (name, kind, p, n, value, wall, logical, version, sent_version) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0)
		ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, p = excluded.p, n = excluded.n, value = excluded.value,
			wall = excluded.wall, logical = excluded.logical, version = counters.version + 1`,
		name, kind, p, n, value, wall, logical)
	return err
}

// registerColumns returns r as the counters table's columns.
func registerColumns(r counters.Register) (kind string, p, n int64, value sql.NullFloat64, wall, logical int64) {
	return r.Kind.String(), r.PN.P, r.PN.N, sql.NullFloat64{Float64: r.Value, Valid: r.Set}, r.Stamp.Wall, int64(r.Stamp.Logical)
}

// counterRow holds the counterColumns of one row as they are scanned.
type counterRow struct {
	kind    string
	p, n    int64
	value   sql.NullFloat64
	wall    int64
	logical int64
}

// dest returns the scan destinations of the counterColumns.
func (c *counterRow) dest() []any {
	return []any{&c.kind, &c.p, &c.n, &c.value, &c.wall, &c.logical}
}

// register returns the row as a state. A row that is not a valid state (the
// file was changed by hand, or damaged) is an error that names the counter.
func (c *counterRow) register(name string) (counters.Register, error) {
	k, err := counters.ParseKind(c.kind)
	if err != nil {
		return counters.Register{}, fmt.Errorf("counter %q in the buffer: %w", name, err)
	}
	if c.logical < 0 || c.logical > math.MaxUint32 {
		return counters.Register{}, fmt.Errorf("counter %q in the buffer: logical clock %d out of range", name, c.logical)
	}
	r := counters.Register{Kind: k, PN: counters.PN{P: c.p, N: c.n}, Value: c.value.Float64, Set: c.value.Valid,
		Stamp: counters.HLC{Wall: c.wall, Logical: uint32(c.logical)}}
	if err := r.Validate(); err != nil {
		return counters.Register{}, fmt.Errorf("counter %q in the buffer: %w", name, err)
	}
	return r, nil
}

// readCounter reads one counter's state; found is false when it has none.
func readCounter(ctx context.Context, q querier, name string) (r counters.Register, found bool, err error) {
	var c counterRow
	err = q.QueryRowContext(ctx, "SELECT "+counterColumns+" FROM counters WHERE name = ?", name).Scan(c.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return counters.Register{}, false, nil
	}
	if err != nil {
		return counters.Register{}, false, err
	}
	r, err = c.register(name)
	return r, err == nil, err
}

// Counter returns this node's state of the counter name, of whatever kind it
// is, and false when it was never written.
func (b *Buffer) Counter(ctx context.Context, name string) (counters.Register, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return counters.Register{}, false, err
	}
	r, found, err := readCounter(ctx, b.conn, name)
	if err != nil {
		return counters.Register{}, false, fmt.Errorf("read counter %s: %w", name, err)
	}
	return r, found, nil
}

// PendingCounters returns, by name, the counters whose state changed since it
// was last marked sent.
func (b *Buffer) PendingCounters(ctx context.Context) ([]edge.CounterRow, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	var out []edge.CounterRow
	err := sqlitex.EachRow(ctx, b.conn, "SELECT name, version, "+counterColumns+" FROM counters WHERE version > sent_version ORDER BY name", func(rows *sql.Rows) error {
		var c edge.CounterRow
		var cr counterRow
		if err := rows.Scan(append([]any{&c.Name, &c.Version}, cr.dest()...)...); err != nil {
			return err
		}
		var err error
		if c.State, err = cr.register(c.Name); err != nil {
			// One bad row must not hold up every other counter's state.
			b.log.Error().Err(err).Msg("not sending a counter state the buffer cannot read")
			return nil
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pending counters: %w", err)
	}
	return out, nil
}

// MarkCountersSent records that the hub has each row's state. A counter changed
// since its row was read (its version is past rows[i].Version) stays pending.
func (b *Buffer) MarkCountersSent(ctx context.Context, rows []edge.CounterRow) error {
	if len(rows) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	err := b.writeTx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, "UPDATE counters SET sent_version = max(sent_version, ?) WHERE name = ?", r.Version, r.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark counters sent: %w", err)
	}
	b.afterWrite()
	return nil
}
