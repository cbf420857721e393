package pattern

import (
	"fmt"
	"slices"
)

// probe decides the verdict over the nodes the page did not show a match for,
// in one read of s in node order: any is true at the first of them with a
// match, the others are false at the first without one. A node without a
// chunk in range has no match, which the read shows by skipping it.
func (x *execution) probe(s Scan, undecided []string) (holds bool, err error) {
	slices.Sort(undecided)
	isAny := x.q.Kind == Any
	if emptyRange(s) {
		return false, nil
	}
	if ii, ok := x.idx.(InsideIndex); ok && x.q.where == nil {
		// Without a where-expression a node with a chunk wholly inside the
		// range has a match; only the others need their chunks read.
		rest, found, err := x.probeInside(ii, s, undecided)
		switch {
		case err != nil:
			return false, err
		case found:
			return true, nil
		case len(rest) == 0:
			return !isAny, nil
		}
		undecided = rest
	}
	if len(undecided) <= probeListMax {
		s.Nodes = undecided
	}
	it, err := x.idx.Chunks(x.ctx, s)
	if err != nil {
		return false, fmt.Errorf("probe: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("probe: close: %w", cerr)
		}
	}()
	scan := newChunkScan(x.q)
	defer scan.release()
	r := &reader{ctx: x.ctx}
	defer func() { x.res.Scanned += r.scanned }()
	p, found := 0, false // the undecided node being read, and whether it has a match
	for it.Next() {
		c := it.Chunk()
		for p < len(undecided) && undecided[p] < c.Node {
			if !found && !isAny {
				return false, nil
			}
			p, found = p+1, false
		}
		if p == len(undecided) {
			break
		}
		if undecided[p] != c.Node || found {
			continue
		}
		ok, err := x.chunkMatches(c, s, scan, r)
		if err != nil {
			return false, err
		}
		if ok {
			if isAny {
				return true, nil
			}
			found = true
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("probe: %w", err)
	}
	if isAny {
		return false, nil
	}
	// Every undecided node must have been found; those after p had no chunk.
	return p == len(undecided) || p == len(undecided)-1 && found, nil
}

// probeInside asks ii which of the sorted undecided nodes have a chunk wholly
// inside s. For any, decided is true when one has; otherwise it returns the
// nodes still undecided: for all, those without such a chunk (none left means
// holds), for any, every one of them, none having a match so far.
func (x *execution) probeInside(ii InsideIndex, s Scan, undecided []string) (rest []string, found bool, err error) {
	if len(undecided) <= probeListMax {
		s.Nodes = undecided
	}
	inside, err := ii.NodesInside(x.ctx, s)
	if err != nil {
		return nil, false, fmt.Errorf("probe: %w", err)
	}
	rest = undecided[:0:0]
	j := 0
	for _, n := range undecided {
		for j < len(inside) && inside[j] < n {
			j++
		}
		if j < len(inside) && inside[j] == n {
			if x.q.Kind == Any {
				return nil, true, nil
			}
			continue
		}
		rest = append(rest, n)
	}
	return rest, false, nil
}

// chunkMatches reports whether c holds a match within s's range. Without a
// where-expression a chunk wholly inside the range matches unread.
func (x *execution) chunkMatches(c *Chunk, s Scan, scan *chunkScan, r *reader) (bool, error) {
	if x.q.where == nil && c.Count > 0 && (!s.HasFrom || c.MinTS >= s.From) && (!s.HasTo || c.MaxTS < s.To) {
		return true, nil
	}
	found := false
	err := scan.each(c, r, func(m *match) (bool, error) {
		// A probe up to a cursor reads less of the range than the query.
		if s.HasTo && m.ts >= s.To {
			return false, nil
		}
		found = true
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("probe node %q: %w", c.Node, err)
	}
	return found, nil
}
