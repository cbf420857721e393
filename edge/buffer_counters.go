package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// CounterRow is this node's state of one counter and its version, which grows
// with every change.
type CounterRow struct {
	Name    string
	PN      counters.PN
	Version int64
}

// Incr adds delta (which may be negative) to this node's state of the counter
// name and returns the new state, committed in the same transaction as the
// increment. It returns an error wrapping stream.ErrInvalidName for a bad name,
// counters.ErrOverflow (with nothing changed) when the state would overflow,
// ErrBufferFull when the buffer is full under the reject policy, ErrDiskFull and
// ErrClosed. A zero delta changes nothing.
func (b *Buffer) Incr(ctx context.Context, name string, delta int64) (counters.PN, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.PN{}, fmt.Errorf("increment counter: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return counters.PN{}, err
	}
	for attempt := 0; ; attempt++ {
		pn, err := b.incrTx(context.WithoutCancel(ctx), name, delta, int64(attempt)*8)
		if err == nil {
			return pn, nil
		}
		if isFull(err) && b.capHit(4) {
			if b.Policy == DropOldest && attempt < 2 {
				continue
			}
			return counters.PN{}, fmt.Errorf("increment counter %s: %w: %w", name, ErrBufferFull, err)
		}
		return counters.PN{}, fmt.Errorf("increment counter %s: %w", name, mapFull(err))
	}
}

func (b *Buffer) incrTx(ctx context.Context, name string, delta, extra int64) (counters.PN, error) {
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		return counters.PN{}, err
	}
	defer tx.Rollback()
	var pn counters.PN
	err = tx.QueryRowContext(ctx, "SELECT p, n FROM counters WHERE name = ?", name).Scan(&pn.P, &pn.N)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return counters.PN{}, err
	}
	next, err := pn.Add(delta)
	if err != nil || next == pn {
		return pn, err
	}
	st := b.st
	run := dropRun{reason: stream.ReasonBufferFull}
	if b.lim.capPages > 0 {
		ok, err := b.roomFor(ctx, tx, &st, &run, 2+extra)
		if err != nil {
			return counters.PN{}, err
		}
		if !ok {
			return counters.PN{}, fmt.Errorf("%w: no room for the counter", ErrBufferFull)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, p, n, version, sent_version) VALUES (?, ?, ?, 1, 0)
		ON CONFLICT (name) DO UPDATE SET p = excluded.p, n = excluded.n, version = counters.version + 1`,
		name, next.P, next.N); err != nil {
		return counters.PN{}, err
	}
	if run.count > 0 {
		if err := b.finishDrops(ctx, tx, &st, run); err != nil {
			return counters.PN{}, err
		}
		if err := saveState(ctx, tx, st); err != nil {
			return counters.PN{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return counters.PN{}, err
	}
	b.st = st
	b.noteDrops(run)
	b.afterWrite()
	return next, nil
}

// Counter returns this node's state of the counter name, and false when it was
// never incremented.
func (b *Buffer) Counter(ctx context.Context, name string) (counters.PN, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return counters.PN{}, false, err
	}
	var pn counters.PN
	err := b.conn.QueryRowContext(ctx, "SELECT p, n FROM counters WHERE name = ?", name).Scan(&pn.P, &pn.N)
	if errors.Is(err, sql.ErrNoRows) {
		return counters.PN{}, false, nil
	}
	if err != nil {
		return counters.PN{}, false, fmt.Errorf("read counter %s: %w", name, err)
	}
	return pn, true, nil
}

// PendingCounters returns, by name, the counters whose state changed since it
// was last marked sent.
func (b *Buffer) PendingCounters(ctx context.Context) ([]CounterRow, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return nil, err
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT name, p, n, version FROM counters WHERE version > sent_version ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read pending counters: %w", err)
	}
	defer rows.Close()
	var out []CounterRow
	for rows.Next() {
		var c CounterRow
		if err := rows.Scan(&c.Name, &c.PN.P, &c.PN.N, &c.Version); err != nil {
			return nil, fmt.Errorf("read pending counters: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending counters: %w", err)
	}
	return out, nil
}

// MarkCountersSent records that the hub has each row's state. A counter changed
// since its row was read (its version is past rows[i].Version) stays pending.
func (b *Buffer) MarkCountersSent(ctx context.Context, rows []CounterRow) error {
	if len(rows) == 0 {
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
		return fmt.Errorf("mark counters sent: %w", mapFull(err))
	}
	defer tx.Rollback()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, "UPDATE counters SET sent_version = max(sent_version, ?) WHERE name = ?", r.Version, r.Name); err != nil {
			return fmt.Errorf("mark counters sent: %w", mapFull(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark counters sent: %w", mapFull(err))
	}
	b.afterWrite()
	return nil
}
