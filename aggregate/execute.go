package aggregate

import (
	"context"
	"sync"

	"github.com/tributary-edge/tributary/pattern"
)

// Execute answers p over idx: it resolves the scope with pattern.Scope (an
// error wrapping pattern.ErrUnknownNode for a named node idx never heard
// of), reads the range once on every worker of idx with a State per worker
// (pattern.EachMatch), merges the states, and settles holds' certainty with
// complete (see Plan.Settle). It sets every field of the Result but TookMS,
// which is the caller's, who has a clock. Errors: the MaxCells error of Add,
// which wraps pattern.ErrInvalid; idx's, wrapped; ctx's when it ends first.
// Memory is bounded by the plan's limits: at most MaxCells cells per worker.
func Execute(ctx context.Context, idx pattern.Index, p *Plan, complete func(node string) bool) (*Result, error) {
	q := p.Query()
	scope, err := pattern.Scope(ctx, idx, q)
	if err != nil {
		return nil, err
	}
	states := make([]*State, max(idx.Workers(), 1))
	for i := range states {
		states[i] = p.NewState(scope)
	}
	// The first error of a state is the answer's (a cell limit is a 400
	// that must keep its message); the scan's own come wrapped.
	var once sync.Once
	var addErr error
	scanned, err := pattern.EachMatch(ctx, idx, q, scope, func(w int, m *pattern.ChunkMatches) error {
		if err := states[w].AddMatches(m); err != nil {
			once.Do(func() { addErr = err })
			return err
		}
		return nil
	})
	if addErr != nil {
		return nil, addErr
	}
	if err != nil {
		return nil, err
	}
	st := states[0]
	for _, o := range states[1:] {
		if err := st.Merge(o); err != nil {
			return nil, err
		}
	}
	res := p.Result(st)
	res.Scanned = scanned
	p.Settle(res, st, complete)
	return res, nil
}
