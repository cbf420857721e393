package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/tributary-edge/tributary/stream"
)

// Received is one message the materializer took off the EDGE stream: its decoded
// frame, or the reason it could not be decoded, and the hub's time of receipt.
type Received struct {
	Subject string
	Node    string // from the subject; may be empty when the subject is malformed
	Frame   *stream.Frame
	Bad     error // set when the message is rejected
	At      int64 // JetStream's timestamp of the message, Unix ns
}

// Applied says what a call to Apply changed.
type Applied struct {
	// Inserted holds the events that were new to the index, in apply order.
	Inserted []stream.Event
	// Duplicates counts events that were already indexed.
	Duplicates int
	// Bad counts rejected messages.
	Bad int
}

// Apply writes a run of received messages into the index in one transaction,
// committed with synchronous=FULL before it returns. Re-applying a message changes
// nothing: events are unique on (node, epoch, seq), drop reports on (node, epoch,
// first_seq), and heartbeats keep the newest.
func (x *Index) Apply(ctx context.Context, msgs []Received) (*Applied, error) {
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, x.wrapWrite("begin", err)
	}
	defer tx.Rollback()
	a := &Applied{}
	ins, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO events (node, epoch, seq, stream, ts, received, data) VALUES (?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return nil, x.wrapWrite("prepare", err)
	}
	defer ins.Close()
	for i := range msgs {
		m := &msgs[i]
		if m.Bad != nil {
			a.Bad++
			if m.Node != "" {
				if _, err := tx.ExecContext(ctx, "UPDATE nodes SET bad_frames = bad_frames + 1 WHERE node = ?", m.Node); err != nil {
					return nil, x.wrapWrite("count bad frame", err)
				}
			}
			continue
		}
		f := m.Frame
		if err := touchNode(ctx, tx, f.Node, m.At); err != nil {
			return nil, err
		}
		switch f.Kind {
		case stream.KindEvents:
			if err := applyEvents(ctx, tx, ins, m, a); err != nil {
				return nil, err
			}
		case stream.KindDrops:
			for _, d := range f.Drops {
				if err := applyDrop(ctx, tx, f.Node, d, m.At); err != nil {
					return nil, err
				}
			}
		case stream.KindHeartbeat:
			hb, _ := json.Marshal(f.Heartbeat)
			if _, err := tx.ExecContext(ctx, `UPDATE nodes SET heartbeat = ?, epoch = ?, last_hb = ? WHERE node = ? AND last_hb <= ?`,
				string(hb), f.Epoch, m.At, f.Node, m.At); err != nil {
				return nil, x.wrapWrite("heartbeat", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, x.wrapWrite("commit", err)
	}
	return a, nil
}

func (x *Index) wrapWrite(what string, err error) error {
	if isFull(err) {
		return fmt.Errorf("%w: %s: disk full: %v", ErrIndex, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrIndex, what, err)
}

func touchNode(ctx context.Context, tx *sql.Tx, node string, at int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO nodes (node, first_seen, last_seen) VALUES (?, ?, ?)
		ON CONFLICT (node) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`, node, at, at)
	if err != nil {
		return fmt.Errorf("%w: register node: %v", ErrIndex, err)
	}
	return nil
}

func touchEpoch(ctx context.Context, tx *sql.Tx, node, epoch string, received, high, at int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO epochs (node, epoch, received, high_seq, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (node, epoch) DO UPDATE SET received = received + excluded.received,
			high_seq = max(high_seq, excluded.high_seq), last_seen = max(last_seen, excluded.last_seen)`,
		node, epoch, received, high, at, at)
	if err != nil {
		return fmt.Errorf("%w: account epoch: %v", ErrIndex, err)
	}
	return nil
}

func applyEvents(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, m *Received, a *Applied) error {
	f := m.Frame
	var inserted int64
	for _, r := range f.Events {
		res, err := ins.ExecContext(ctx, f.Node, f.Epoch, int64(r.Seq), f.Stream, r.TS, m.At, []byte(r.Data))
		if err != nil {
			return fmt.Errorf("%w: insert event: %v", ErrIndex, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			inserted++
			a.Inserted = append(a.Inserted, stream.Event{Node: f.Node, Epoch: f.Epoch, Seq: r.Seq, Stream: f.Stream, TS: r.TS, Received: m.At, Data: r.Data})
		} else {
			a.Duplicates++
		}
	}
	lo, hi := f.Events[0].Seq, f.Events[len(f.Events)-1].Seq
	if err := touchEpoch(ctx, tx, f.Node, f.Epoch, inserted, int64(hi), m.At); err != nil {
		return err
	}
	if inserted == 0 {
		return nil
	}
	// Events that arrive inside a range already reported dropped (an edge that
	// crashed after sending and before its ack) shrink that drop: a seq is never
	// both received and dropped.
	var overlap int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM drops WHERE node = ? AND epoch = ? AND first_seq <= ? AND last_seq >= ?`,
		f.Node, f.Epoch, int64(hi), int64(lo)).Scan(&overlap)
	if err != nil {
		return fmt.Errorf("%w: check drops: %v", ErrIndex, err)
	}
	if overlap > 0 {
		return recountDrops(ctx, tx, f.Node, f.Epoch, int64(lo), int64(hi))
	}
	return nil
}

func applyDrop(ctx context.Context, tx *sql.Tx, node string, d stream.Drop, at int64) error {
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO drops (node, epoch, first_seq, last_seq, reported, effective, reason) VALUES (?, ?, ?, ?, ?, 0, ?)`,
		node, d.Epoch, int64(d.FirstSeq), int64(d.LastSeq), int64(d.Count), d.Reason)
	if err != nil {
		return fmt.Errorf("%w: insert drop: %v", ErrIndex, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if err := touchEpoch(ctx, tx, node, d.Epoch, 0, int64(d.LastSeq), at); err != nil {
		return err
	}
	return recountDrops(ctx, tx, node, d.Epoch, int64(d.FirstSeq), int64(d.LastSeq))
}

// recountDrops sets each drop overlapping [lo, hi] to the number of its seqs that
// can still be dropped: at most what the edge reported, and at most the seqs of the
// range that were not received. It then refreshes the epoch's dropped total.
func recountDrops(ctx context.Context, tx *sql.Tx, node, epoch string, lo, hi int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE drops SET effective = min(reported,
			(last_seq - first_seq + 1) - (SELECT count(*) FROM events e WHERE e.node = drops.node AND e.epoch = drops.epoch AND e.seq BETWEEN drops.first_seq AND drops.last_seq))
		WHERE node = ? AND epoch = ? AND first_seq <= ? AND last_seq >= ?`, node, epoch, hi, lo)
	if err != nil {
		return fmt.Errorf("%w: recount drops: %v", ErrIndex, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE epochs SET dropped = (SELECT coalesce(sum(effective), 0) FROM drops WHERE node = ? AND epoch = ?) WHERE node = ? AND epoch = ?`,
		node, epoch, node, epoch)
	if err != nil {
		return fmt.Errorf("%w: total drops: %v", ErrIndex, err)
	}
	return nil
}
