package pattern

// Certain reports whether a verdict can still change as events arrive, from
// each node's completeness. Events are never taken back, so a match found
// stays found: for single, multiple and all, holds true is certain, and holds
// false is certain only when every node in scope without a match is
// complete; for any, holds true is certain, and holds false only when every
// node in scope is complete. A node counts as without a match when Matched is
// 0, which for a page without a count means none in that page: that can only
// make the answer less certain, never wrongly certain.
func Certain(kind Kind, holds bool, nodes map[string]NodeResult) bool {
	if holds {
		return true
	}
	for _, n := range nodes {
		if n.Complete {
			continue
		}
		if kind == Any || n.Matched == 0 {
			return false
		}
	}
	return true
}

// SetCompleteness fills every node's completeness in r from of and settles
// r.Certain for a query of kind.
func (r *Result) SetCompleteness(kind Kind, of func(node string) Completeness) {
	for n, nr := range r.Nodes {
		nr.Completeness = of(n)
		r.Nodes[n] = nr
	}
	r.Certain = Certain(kind, r.Holds, r.Nodes)
}
