package index

import (
	"context"
	"database/sql"
	"fmt"
)

// span is an inclusive range of seqs.
type span struct{ lo, hi int64 }

// loadSpans returns the received intervals of (node, epoch) that overlap or
// touch [lo, hi], in ascending order.
func loadSpans(ctx context.Context, tx *sql.Tx, node, epoch string, lo, hi int64) ([]span, error) {
	rows, err := tx.QueryContext(ctx, "SELECT lo, hi FROM seqs WHERE node = ? AND epoch = ? AND lo <= ? ORDER BY lo DESC", node, epoch, hi+1)
	if err != nil {
		return nil, fmt.Errorf("%w: read received seqs: %v", ErrIndex, err)
	}
	defer rows.Close()
	var out []span
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.lo, &s.hi); err != nil {
			return nil, fmt.Errorf("%w: read received seqs: %v", ErrIndex, err)
		}
		// Intervals are disjoint, so in descending lo their hi descends too.
		if s.hi < lo-1 {
			break
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: read received seqs: %v", ErrIndex, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// covered reports whether seq lies in one of spans (ascending); at is the
// index to start looking from, returned advanced, so that a walk over
// ascending seqs costs one pass.
func covered(spans []span, at int, seq int64) (bool, int) {
	for at < len(spans) && spans[at].hi < seq {
		at++
	}
	return at < len(spans) && spans[at].lo <= seq, at
}

// union merges ascending, distinct seqs into ascending disjoint spans,
// joining spans that touch.
func union(spans []span, seqs []int64) []span {
	var runs []span
	for _, s := range seqs {
		if n := len(runs); n > 0 && runs[n-1].hi+1 == s {
			runs[n-1].hi = s
			continue
		}
		runs = append(runs, span{s, s})
	}
	all := make([]span, 0, len(spans)+len(runs))
	i, j := 0, 0
	for i < len(spans) || j < len(runs) {
		var next span
		if j == len(runs) || i < len(spans) && spans[i].lo <= runs[j].lo {
			next, i = spans[i], i+1
		} else {
			next, j = runs[j], j+1
		}
		if n := len(all); n > 0 && next.lo <= all[n-1].hi+1 {
			all[n-1].hi = max(all[n-1].hi, next.hi)
			continue
		}
		all = append(all, next)
	}
	return all
}

// saveSpans replaces old (as loaded) with merged in the seqs table.
func saveSpans(ctx context.Context, tx *sql.Tx, node, epoch string, old, merged []span) error {
	for _, s := range old {
		if _, err := tx.ExecContext(ctx, "DELETE FROM seqs WHERE node = ? AND epoch = ? AND lo = ?", node, epoch, s.lo); err != nil {
			return wrapWrite("update received seqs", err)
		}
	}
	for _, s := range merged {
		if _, err := tx.ExecContext(ctx, "INSERT INTO seqs (node, epoch, lo, hi) VALUES (?, ?, ?, ?)", node, epoch, s.lo, s.hi); err != nil {
			return wrapWrite("update received seqs", err)
		}
	}
	return nil
}

// receivedIn returns how many seqs of [lo, hi] the spans cover.
func receivedIn(spans []span, lo, hi int64) int64 {
	var n int64
	for _, s := range spans {
		a, b := max(s.lo, lo), min(s.hi, hi)
		if a <= b {
			n += b - a + 1
		}
	}
	return n
}
