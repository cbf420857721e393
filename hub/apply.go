package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

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
	ins, err := tx.PrepareContext(ctx, insertSQL(insertChunk))
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

// insertChunk is how many events one INSERT statement writes.
const insertChunk = 100

// insertSQL returns an INSERT of n events that skips the ones already held and
// returns the seqs of those it wrote.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO events (node, epoch, seq, stream, ts, received, data) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(" ON CONFLICT (node, epoch, seq) DO NOTHING RETURNING seq")
	return b.String()
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
	// Rows go in insertChunk at a time: one statement per row costs a cgo call
	// and a statement step each. RETURNING names the rows that were new, so
	// repeats are told apart without a query per row.
	for start := 0; start < len(f.Events); start += insertChunk {
		recs := f.Events[start:min(start+insertChunk, len(f.Events))]
		stmt := ins
		if len(recs) != insertChunk {
			var err error
			if stmt, err = tx.PrepareContext(ctx, insertSQL(len(recs))); err != nil {
				return fmt.Errorf("%w: prepare insert: %v", ErrIndex, err)
			}
			defer stmt.Close()
		}
		args := make([]any, 0, 7*len(recs))
		for _, r := range recs {
			args = append(args, f.Node, f.Epoch, int64(r.Seq), f.Stream, r.TS, m.At, []byte(r.Data))
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("%w: insert events: %v", ErrIndex, err)
		}
		isNew := make(map[int64]bool, len(recs))
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return fmt.Errorf("%w: insert events: %v", ErrIndex, err)
			}
			isNew[seq] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: insert events: %v", ErrIndex, err)
		}
		for _, r := range recs {
			if isNew[int64(r.Seq)] {
				inserted++
				a.Inserted = append(a.Inserted, stream.Event{Node: f.Node, Epoch: f.Epoch, Seq: r.Seq, Stream: f.Stream, TS: r.TS, Received: m.At, Data: r.Data})
			} else {
				a.Duplicates++
			}
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
