package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// OnlineWindow is how recent a node's last heartbeat must be for it to be online.
const OnlineWindow = 15 * time.Second

// NodeInfo is the hub's record of one node, as GET /api/v1/nodes shows it.
type NodeInfo struct {
	Node     string `json:"node"`
	Online   bool   `json:"online"`
	LastSeen string `json:"last_seen"`
	// Events counts the events the hub holds for the node, over all epochs.
	Events int64 `json:"events"`
	// Epochs counts the buffer epochs the hub has seen from the node.
	Epochs int `json:"epochs"`
	// Epoch is the node's current epoch and HighSeq the highest seq received or
	// reported dropped in it.
	Epoch   string `json:"epoch"`
	HighSeq int64  `json:"high_seq"`
	// Buffered is the edge's backlog as it last reported it.
	Buffered int64 `json:"buffered"`
	// Dropped counts events the edge discarded and reported; Missing the seqs
	// neither received nor reported dropped, over all epochs.
	Dropped int64 `json:"dropped"`
	Missing int64 `json:"missing"`
	// BadFrames counts messages under the node's subjects that were rejected.
	BadFrames int64 `json:"bad_frames"`
}

// Nodes returns every known node's record, sorted by node ID.
func (x *Index) NodeInfos(ctx context.Context, now time.Time) ([]NodeInfo, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT n.node, n.last_seen, n.last_hb, n.epoch, n.heartbeat, n.bad_frames,
			coalesce(sum(e.received), 0), count(e.epoch), coalesce(sum(e.dropped), 0),
			coalesce(sum(max(e.high_seq - e.received - e.dropped, 0)), 0)
		FROM nodes n LEFT JOIN epochs e ON e.node = n.node
		GROUP BY n.node ORDER BY n.node`)
	if err != nil {
		return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
	}
	defer rows.Close()
	out := []NodeInfo{}
	for rows.Next() {
		var ni NodeInfo
		var lastSeen, lastHB int64
		var hbJSON string
		if err := rows.Scan(&ni.Node, &lastSeen, &lastHB, &ni.Epoch, &hbJSON, &ni.BadFrames, &ni.Events, &ni.Epochs, &ni.Dropped, &ni.Missing); err != nil {
			return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
		}
		ni.LastSeen = stream.FormatTime(max(lastSeen, lastHB))
		ni.Online = lastHB > 0 && now.Sub(time.Unix(0, lastHB)) < OnlineWindow
		var hb stream.Heartbeat
		if json.Unmarshal([]byte(hbJSON), &hb) == nil {
			ni.Buffered = hb.Buffered
		}
		out = append(out, ni)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
	}
	for i := range out {
		if err := x.currentEpoch(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// currentEpoch fills Epoch (when no heartbeat named it) and HighSeq.
func (x *Index) currentEpoch(ctx context.Context, ni *NodeInfo) error {
	q := "SELECT epoch, high_seq FROM epochs WHERE node = ? ORDER BY last_seen DESC LIMIT 1"
	args := []any{ni.Node}
	if ni.Epoch != "" {
		q = "SELECT epoch, high_seq FROM epochs WHERE node = ? AND epoch = ?"
		args = append(args, ni.Epoch)
	}
	err := x.r.QueryRowContext(ctx, q, args...).Scan(&ni.Epoch, &ni.HighSeq)
	if err != nil && err.Error() != "sql: no rows in result set" {
		return fmt.Errorf("%w: current epoch: %v", ErrIndex, err)
	}
	return nil
}

// Gap is a range of seqs the hub does not hold, and why.
type Gap struct {
	Epoch    string `json:"epoch"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Count    int64  `json:"count"`
	Reason   string `json:"reason"`
}

// Gaps returns a node's dropped and missing ranges, epoch by epoch and in seq
// order: the ranges the edge reported dropped (Count is the number of their seqs
// the hub does not hold) and the ranges neither received nor reported (reason
// "missing"). For every epoch, received + dropped + missing covers every seq up to
// the highest known. It returns ErrUnknownNode for a node the hub never heard of.
func (x *Index) Gaps(ctx context.Context, node string) ([]Gap, error) {
	ok, err := x.HasNode(ctx, node)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	type epochRow struct {
		epoch                            string
		received, high, dropped, firstAt int64
	}
	rows, err := x.r.QueryContext(ctx, "SELECT epoch, received, high_seq, dropped, first_seen FROM epochs WHERE node = ? ORDER BY first_seen, epoch", node)
	if err != nil {
		return nil, fmt.Errorf("%w: gaps: %v", ErrIndex, err)
	}
	var epochs []epochRow
	for rows.Next() {
		var e epochRow
		if err := rows.Scan(&e.epoch, &e.received, &e.high, &e.dropped, &e.firstAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%w: gaps: %v", ErrIndex, err)
		}
		epochs = append(epochs, e)
	}
	rows.Close()
	gaps := []Gap{}
	for _, e := range epochs {
		drops, err := x.drops(ctx, node, e.epoch)
		if err != nil {
			return nil, err
		}
		var missing []Gap
		if e.high-e.received-e.dropped > 0 {
			if missing, err = x.missing(ctx, node, e.epoch, e.high, drops); err != nil {
				return nil, err
			}
		}
		gaps = append(gaps, mergeGaps(drops, missing)...)
	}
	return gaps, nil
}

func (x *Index) drops(ctx context.Context, node, epoch string) ([]Gap, error) {
	rows, err := x.r.QueryContext(ctx, "SELECT first_seq, last_seq, effective, reason FROM drops WHERE node = ? AND epoch = ? AND effective > 0 ORDER BY first_seq", node, epoch)
	if err != nil {
		return nil, fmt.Errorf("%w: drops: %v", ErrIndex, err)
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		g := Gap{Epoch: epoch}
		if err := rows.Scan(&g.FirstSeq, &g.LastSeq, &g.Count, &g.Reason); err != nil {
			return nil, fmt.Errorf("%w: drops: %v", ErrIndex, err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// missing returns the seqs in [1, high] that are neither received nor inside a
// reported drop range, as ranges. It reads the epoch's received seqs as islands
// (runs of consecutive seqs), so its cost grows with the epoch's events; callers
// only ask when the counts say something is missing.
func (x *Index) missing(ctx context.Context, node, epoch string, high int64, drops []Gap) ([]Gap, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT min(seq), max(seq) FROM (
			SELECT seq, seq - row_number() OVER (ORDER BY seq) AS island FROM events WHERE node = ? AND epoch = ?
		) GROUP BY island ORDER BY 1`, node, epoch)
	if err != nil {
		return nil, fmt.Errorf("%w: received ranges: %v", ErrIndex, err)
	}
	defer rows.Close()
	// covered holds received islands and drop ranges; what lies between is missing.
	var covered [][2]int64
	for rows.Next() {
		var lo, hi int64
		if err := rows.Scan(&lo, &hi); err != nil {
			return nil, fmt.Errorf("%w: received ranges: %v", ErrIndex, err)
		}
		covered = append(covered, [2]int64{lo, hi})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: received ranges: %v", ErrIndex, err)
	}
	for _, d := range drops {
		covered = append(covered, [2]int64{d.FirstSeq, d.LastSeq})
	}
	return uncovered(epoch, high, covered), nil
}

// uncovered returns the ranges of [1, high] that no range in covered touches.
func uncovered(epoch string, high int64, covered [][2]int64) []Gap {
	sortRanges(covered)
	var out []Gap
	next := int64(1)
	for _, c := range covered {
		if c[0] > next {
			out = append(out, Gap{Epoch: epoch, FirstSeq: next, LastSeq: c[0] - 1, Count: c[0] - next, Reason: stream.ReasonMissing})
		}
		next = max(next, c[1]+1)
	}
	if next <= high {
		out = append(out, Gap{Epoch: epoch, FirstSeq: next, LastSeq: high, Count: high - next + 1, Reason: stream.ReasonMissing})
	}
	return out
}
