package aggregate

import "github.com/tributary-edge/tributary/pattern"

// Settle fills in, from each node's completeness, whether each window's holds
// is certain and whether the whole answer is, by the rule of
// pattern.Certain applied to each window alone: events are never taken back,
// so holds true is certain; for single, multiple and all, holds false is
// certain when every node in scope without an event in that window is
// complete; for any, when every node in scope is complete. The answer is
// certain when every window is. res must be p.Result(st); complete reports
// whether the hub holds everything a node has reported (see
// pattern.Completeness), and is asked once per node in scope.
func (p *Plan) Settle(res *Result, st *State, complete func(node string) bool) {
	if st.p != p || len(res.Windows) != p.n {
		panic("aggregate: Settle of an answer of another plan")
	}
	// Bit i of done: scope[i] is complete.
	done := make([]uint64, st.words)
	all := true
	for i, n := range st.scope {
		if complete(n) {
			done[i/64] |= 1 << (i % 64)
		} else {
			all = false
		}
	}
	res.Certain = true
	for i := range res.Windows {
		w := &res.Windows[i]
		switch {
		case w.Holds || all:
			w.Certain = true
		case p.q.Kind == pattern.Any:
			w.Certain = false
		default:
			w.Certain = !st.incompleteWithout(i, done)
		}
		res.Certain = res.Certain && w.Certain
	}
}

// incompleteWithout reports whether some node in scope has no event in window
// i and is not complete (not in done).
func (s *State) incompleteWithout(i int, done []uint64) bool {
	seen := s.seen[i]
	for wi := range s.words {
		var has uint64
		if seen != nil {
			has = seen[wi]
		}
		missing := ^(has | done[wi])
		if last := len(s.scope) - wi*64; last < 64 {
			missing &= 1<<last - 1
		}
		if missing != 0 {
			return true
		}
	}
	return false
}
