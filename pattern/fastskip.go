package pattern

// noneMatch reports whether the fast evaluator is certain to answer fastNo
// for every one of the n events of the bound columns cols: then a scan can
// pass over the chunk without evaluating it event by event. It is sound, not
// complete: it looks only for a conjunct made of comparisons of a column with
// a literal that no event of the chunk satisfies (temp > 1000 over a chunk of
// temperatures), and answers false for anything else.
func (fp *fastPredicate) noneMatch(cols []*Column, n int) bool {
	// An object or an array leaves an event to the full predicate.
	for _, col := range cols {
		if col == nil {
			continue
		}
		for _, k := range col.Kind[:n] {
			if k == ColComplex {
				return false
			}
		}
	}
	return neverTrue(fp.root, cols, n)
}

// neverTrue reports whether x yields true for none of the n events. An and
// is true only when both sides are, so one side that never is suffices.
func neverTrue(x fnode, cols []*Column, n int) bool {
	switch x := x.(type) {
	case andNode:
		return neverTrue(x.l, cols, n) || neverTrue(x.r, cols, n)
	case pathCmp:
		return x.neverTrue(cols[x.col], n)
	}
	return false
}

// neverTrue reports whether p is false for each of the n events of col, each
// value being of a kind p compares directly (see pathCmp.eval).
func (p pathCmp) neverTrue(col *Column, n int) bool {
	if col == nil {
		return false
	}
	for i, k := range col.Kind[:n] {
		var c int
		switch {
		case k == ColFloat && isNum(p.c):
			x, y := col.Float[i], p.c.float()
			c = cmp3(x < y, x > y)
		case k == ColInt && p.c.k == ColInt:
			x, y := col.Int[i], p.c.i
			c = cmp3(x < y, x > y)
		case k == ColInt && p.c.k == ColFloat:
			x, y := float64(col.Int[i]), p.c.f
			c = cmp3(x < y, x > y)
		case k == ColString && p.c.k == ColString:
			x := col.Dict[col.Str[i]]
			c = cmp3(x < p.c.s, x > p.c.s)
		default:
			return false
		}
		if p.op.result(c) {
			return false
		}
	}
	return true
}
