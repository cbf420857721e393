package index

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/tributary-edge/tributary/internal/sqlitex"
	"github.com/tributary-edge/tributary/stream"
)

// NodeRow is a node's row in the registry: when the hub first and last heard
// of it, its last heartbeat (the hub's time of it, the epoch it named, and the
// heartbeat itself as JSON), and how many of its messages were rejected.
type NodeRow struct {
	Node                string
	FirstSeen, LastSeen int64
	LastHB              int64
	Epoch               string
	Heartbeat           string
	BadFrames           int64
}

// EpochRow is the accounting of one (node, epoch): seqs received, the
// highest seq received or reported dropped, and the seqs the edge reported
// dropped that were not received.
type EpochRow struct {
	Node, Epoch         string
	Received, HighSeq   int64
	Dropped             int64
	FirstSeen, LastSeen int64
}

// Missing returns the seqs of the epoch up to HighSeq neither received nor
// reported dropped.
func (e EpochRow) Missing() int64 { return max(e.HighSeq-e.Received-e.Dropped, 0) }

// LoadNodes returns every node's row, sorted by node.
func (x *Index) LoadNodes(ctx context.Context) ([]NodeRow, error) {
	var out []NodeRow
	err := sqlitex.EachRow(ctx, x.r, "SELECT node, first_seen, last_seen, last_hb, epoch, heartbeat, bad_frames FROM nodes ORDER BY node", func(rows *sql.Rows) error {
		var n NodeRow
		err := rows.Scan(&n.Node, &n.FirstSeen, &n.LastSeen, &n.LastHB, &n.Epoch, &n.Heartbeat, &n.BadFrames)
		out = append(out, n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: load nodes: %v", ErrIndex, err)
	}
	return out, nil
}

// LoadEpochs returns every epoch's accounting row.
func (x *Index) LoadEpochs(ctx context.Context) ([]EpochRow, error) {
	var out []EpochRow
	err := sqlitex.EachRow(ctx, x.r, "SELECT node, epoch, received, high_seq, dropped, first_seen, last_seen FROM epochs", func(rows *sql.Rows) error {
		var e EpochRow
		err := rows.Scan(&e.Node, &e.Epoch, &e.Received, &e.HighSeq, &e.Dropped, &e.FirstSeen, &e.LastSeen)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: load epochs: %v", ErrIndex, err)
	}
	return out, nil
}

// HeartbeatRow is one node's newest heartbeat, to store.
type HeartbeatRow struct {
	Node      string
	At        int64 // the hub's time of the heartbeat, Unix ns
	Epoch     string
	Heartbeat string // JSON
}

// SaveHeartbeats stores many nodes' newest heartbeats in one transaction. A
// heartbeat older than the one stored is ignored; a node the hub had not
// heard of becomes known.
func (x *Index) SaveHeartbeats(ctx context.Context, hbs []HeartbeatRow) error {
	if len(hbs) == 0 {
		return nil
	}
	err := sqlitex.Tx(ctx, x.w, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO nodes (node, first_seen, last_seen, last_hb, epoch, heartbeat) VALUES (?1, ?2, ?2, ?2, ?3, ?4)
			ON CONFLICT (node) DO UPDATE SET
				heartbeat = CASE WHEN excluded.last_hb >= last_hb THEN excluded.heartbeat ELSE heartbeat END,
				epoch = CASE WHEN excluded.last_hb >= last_hb THEN excluded.epoch ELSE epoch END,
				last_hb = max(last_hb, excluded.last_hb), last_seen = max(last_seen, excluded.last_seen)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, h := range hbs {
			if _, err := st.ExecContext(ctx, h.Node, h.At, h.Epoch, h.Heartbeat); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapWrite("save heartbeats", err)
	}
	return nil
}

// Gaps returns a node's dropped and missing ranges, epoch by epoch and in seq
// order: the ranges the edge reported dropped (Count is the number of their
// seqs the hub does not hold) and the ranges neither received nor reported
// (reason "missing"). For every epoch, received + dropped + missing covers
// every seq up to the highest known. The caller checks that the node exists.
func (x *Index) Gaps(ctx context.Context, node string) ([]stream.Drop, error) {
	type epochRow struct {
		epoch                   string
		received, high, dropped int64
	}
	var epochs []epochRow
	err := sqlitex.EachRow(ctx, x.r, "SELECT epoch, received, high_seq, dropped FROM epochs WHERE node = ? ORDER BY first_seen, epoch", func(rows *sql.Rows) error {
		var e epochRow
		err := rows.Scan(&e.epoch, &e.received, &e.high, &e.dropped)
		epochs = append(epochs, e)
		return err
	}, node)
	if err != nil {
		return nil, fmt.Errorf("%w: gaps: %v", ErrIndex, err)
	}
	gaps := []stream.Drop{}
	for _, e := range epochs {
		var drops, missing []stream.Drop
		var covered []span
		err := sqlitex.EachRow(ctx, x.r, "SELECT first_seq, last_seq, effective, reason FROM drops WHERE node = ? AND epoch = ? ORDER BY first_seq", func(rows *sql.Rows) error {
			var lo, hi, eff int64
			var reason string
			if err := rows.Scan(&lo, &hi, &eff, &reason); err != nil {
				return err
			}
			covered = append(covered, span{lo, hi})
			if eff > 0 {
				drops = append(drops, stream.Drop{Epoch: e.epoch, FirstSeq: uint64(lo), LastSeq: uint64(hi), Count: uint64(eff), Reason: reason})
			}
			return nil
		}, node, e.epoch)
		if err != nil {
			return nil, fmt.Errorf("%w: drops: %v", ErrIndex, err)
		}
		if e.high-e.received-e.dropped > 0 {
			err := sqlitex.EachRow(ctx, x.r, "SELECT lo, hi FROM seqs WHERE node = ? AND epoch = ? ORDER BY lo", func(rows *sql.Rows) error {
				var s span
				err := rows.Scan(&s.lo, &s.hi)
				covered = append(covered, s)
				return err
			}, node, e.epoch)
			if err != nil {
				return nil, fmt.Errorf("%w: received ranges: %v", ErrIndex, err)
			}
			missing = uncovered(e.epoch, e.high, covered)
		}
		gaps = append(gaps, mergeGaps(drops, missing)...)
	}
	return gaps, nil
}

// uncovered returns the ranges of [1, high] that no range in covered touches.
func uncovered(epoch string, high int64, covered []span) []stream.Drop {
	sort.Slice(covered, func(i, j int) bool { return covered[i].lo < covered[j].lo })
	var out []stream.Drop
	next := int64(1)
	for _, c := range covered {
		if c.lo > next {
			out = append(out, stream.Drop{Epoch: epoch, FirstSeq: uint64(next), LastSeq: uint64(c.lo - 1), Count: uint64(c.lo - next), Reason: stream.ReasonMissing})
		}
		next = max(next, c.hi+1)
	}
	if next <= high {
		out = append(out, stream.Drop{Epoch: epoch, FirstSeq: uint64(next), LastSeq: uint64(high), Count: uint64(high - next + 1), Reason: stream.ReasonMissing})
	}
	return out
}

// mergeGaps merges two lists of ranges, each in seq order, into one.
func mergeGaps(a, b []stream.Drop) []stream.Drop {
	out := make([]stream.Drop, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0].FirstSeq <= b[0].FirstSeq {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// Prune deletes the chunks received before cut (Unix ns) and returns how many
// events they held. The per-epoch accounting keeps counting them as received.
func (x *Index) Prune(ctx context.Context, cut int64) (int64, error) {
	var n int64
	err := sqlitex.Tx(ctx, x.w, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "SELECT coalesce(sum(count), 0) FROM chunks WHERE received < ?", cut).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrIndex, err)
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := x.w.ExecContext(ctx, "DELETE FROM chunks WHERE received < ?", cut); err != nil {
		return 0, wrapWrite("prune", err)
	}
	return n, nil
}
