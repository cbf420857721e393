package pattern

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/tributary-edge/tributary/stream"
)

// Index is what the hub's event index provides to Execute and Scope, its only
// callers.
// Implementations must be safe to call from the goroutine that runs Execute;
// Execute holds at most one Iterator per node in scope open at once, plus one
// probe at a time.
type Index interface {
	// Nodes returns every node the hub knows, sorted.
	Nodes(ctx context.Context) ([]string, error)
	// HasNode reports whether the hub has heard of node.
	HasNode(ctx context.Context, node string) (bool, error)
	// Scan returns node's events of s.Stream (every stream if empty) with ts in
	// [From, To) (unbounded side when HasFrom/HasTo is false), in (ts, epoch,
	// seq) order, epochs compared as bytes, starting strictly after s.After when
	// it is non-nil. Execute only passes an After whose Node is s.Node, so the
	// condition is (ts, epoch, seq) > (After.TS, After.Epoch, After.Seq).
	Scan(ctx context.Context, s Scan) (Iterator, error)
}

// Scan is one node's range read from the Index.
type Scan struct {
	Node, Stream   string
	From, To       int64
	HasFrom, HasTo bool
	After          *Position
}

// Iterator is an Index's ordered result. Next advances and reports whether
// there is an event; Event returns it, and it (including its Data bytes) need
// only stay valid until the next call to Next; Err reports why Next returned
// false (nil at the normal end); Close releases it and is called exactly once.
type Iterator interface {
	Next() bool
	Event() *stream.Event
	Err() error
	Close() error
}

// Result is one page of a query's answer, in the API's JSON form.
type Result struct {
	// Pattern is the canonical pattern text.
	Pattern string `json:"pattern"`
	// Holds is the pattern's verdict over the whole range (see the package doc).
	Holds bool `json:"holds"`
	// Nodes has an entry for every node in scope.
	Nodes map[string]NodeResult `json:"nodes"`
	// Matches are the page's matching events in merge order; never nil.
	Matches []stream.Event `json:"matches"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next"`
	// Count is the number of matches in the whole range; set only when the
	// query asked for it.
	Count *int64 `json:"count,omitempty"`
	// Scanned is how many events Execute read from the Index, probes included.
	Scanned int64 `json:"scanned"`
	// TookMS is the query's wall time; Execute leaves it 0 for the HTTP layer.
	TookMS float64 `json:"took_ms"`
}

// NodeResult is one node's share of a Result.
type NodeResult struct {
	// Matched is the node's matches in the whole range when the query asked for
	// a count, else its matches in the returned page.
	Matched int64 `json:"matched"`
}

// ctxCheckEvery is how many events Execute reads between checks of ctx.
const ctxCheckEvery = 256

// Execute runs q over idx and returns one page. Errors: ErrUnknownNode when
// single or multiple names a node idx has never heard of; the Index's errors,
// wrapped; ctx's error when it ends first.
func Execute(ctx context.Context, idx Index, q *Query) (*Result, error) {
	nodes, err := Scope(ctx, idx, q)
	if err != nil {
		return nil, err
	}
	x := &execution{ctx: ctx, idx: idx, q: q, nodes: nodes, matched: make([]int64, len(nodes)),
		res: &Result{Pattern: q.text, Nodes: make(map[string]NodeResult, len(nodes)), Matches: []stream.Event{}}}
	// A Query whose Limit was changed after Prepare still gets sane pages.
	x.limit = min(max(q.Limit, 1), MaxLimit)
	x.m = q.matcher()
	defer x.m.release()

	if q.Count {
		err = x.countAndPage()
	} else {
		err = x.page()
	}
	if err != nil {
		return nil, err
	}
	for i, n := range nodes {
		x.res.Nodes[n] = NodeResult{Matched: x.matched[i]}
	}
	return x.res, nil
}

// Scope returns the nodes in scope of q: for single and multiple the named
// ones, in the order given, after checking that idx knows each (else an error
// wrapping ErrUnknownNode that names the first unknown one); for all and any
// every node idx knows. Execute calls it; live queries can use it to refuse an
// unknown node up front.
func Scope(ctx context.Context, idx Index, q *Query) ([]string, error) {
	if q.Kind == All || q.Kind == Any {
		nodes, err := idx.Nodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		return nodes, nil
	}
	for _, n := range q.Nodes {
		ok, err := idx.HasNode(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("look up node %q: %w", n, err)
		}
		if !ok {
			return nil, unknownNode(n)
		}
	}
	return q.Nodes, nil
}

type execution struct {
	ctx     context.Context
	idx     Index
	q       *Query
	m       *matcher
	nodes   []string
	matched []int64 // per node, index as in nodes
	res     *Result
	reads   int
	limit   int
}

// read counts one event read and checks ctx now and then.
func (x *execution) read() error {
	x.res.Scanned++
	x.reads++
	if x.reads%ctxCheckEvery == 0 {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("execute query: %w", err)
		}
	}
	return nil
}

// open starts one scan per node in scope and returns them with, for each, the
// index of its node. With after set, each node's scan starts after the cursor
// in merge order; nodes left with an empty range are not scanned at all.
func (x *execution) open(after *Position) (its []Iterator, src []int, err error) {
	for i, n := range x.nodes {
		s, ok := x.scanAfter(n, after)
		if !ok {
			continue
		}
		it, err := x.idx.Scan(x.ctx, s)
		if err != nil {
			closeAll(its)
			return nil, nil, fmt.Errorf("scan node %q: %w", n, err)
		}
		its = append(its, it)
		src = append(src, i)
	}
	return its, src, nil
}

// scanAfter returns node's scan of q's range strictly after p in merge order
// (ts, node, epoch, seq), or false when that is empty. Only the cursor's own
// node needs (epoch, seq) to break ts ties; other nodes sort before or after it
// at equal ts by name.
func (x *execution) scanAfter(node string, p *Position) (Scan, bool) {
	s := Scan{Node: node, Stream: x.q.Stream, From: x.q.From, To: x.q.To, HasFrom: x.q.HasFrom, HasTo: x.q.HasTo}
	if p != nil {
		switch {
		case node == p.Node:
			after := *p
			s.After = &after
		case node < p.Node:
			if p.TS == math.MaxInt64 {
				return s, false
			}
			s.From, s.HasFrom = raise(s.From, s.HasFrom, p.TS+1)
		default:
			s.From, s.HasFrom = raise(s.From, s.HasFrom, p.TS)
		}
	}
	if s.HasFrom && s.HasTo && s.From >= s.To {
		return s, false
	}
	return s, true
}

func raise(from int64, has bool, to int64) (int64, bool) {
	if !has || to > from {
		return to, true
	}
	return from, true
}

func closeAll(its []Iterator) error {
	var errs []error
	for _, it := range its {
		if err := it.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func iterators(its []Iterator) []stream.Iterator {
	out := make([]stream.Iterator, len(its))
	for i, it := range its {
		out[i] = it
	}
	return out
}

// page reads the merged stream from the cursor until it has one match more
// than the page holds, then settles holds, probing nodes the page did not show
// a match for.
func (x *execution) page() (err error) {
	its, src, err := x.open(x.q.after)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(its); cerr != nil && err == nil {
			err = fmt.Errorf("close scan: %w", cerr)
		}
	}()
	merge := stream.NewMerge(iterators(its)...)
	exhausted := true
	for merge.Next() {
		if err := x.read(); err != nil {
			return err
		}
		ev := merge.Event()
		if !x.m.match(ev) {
			continue
		}
		if len(x.res.Matches) == x.limit {
			// A match beyond the page: there is a next page.
			x.res.Next = EncodeCursor(PositionOf(&x.res.Matches[len(x.res.Matches)-1]))
			exhausted = false
			break
		}
		x.keep(ev)
		x.matched[src[merge.Source()]]++
	}
	if err := merge.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	return x.settleHolds(exhausted)
}

// countAndPage reads the whole range once: it counts every match, per node
// and in total, and keeps the page of matches after the cursor on the way.
func (x *execution) countAndPage() (err error) {
	its, src, err := x.open(nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(its); cerr != nil && err == nil {
			err = fmt.Errorf("close scan: %w", cerr)
		}
	}()
	merge := stream.NewMerge(iterators(its)...)
	var total int64
	after := x.q.after
	for merge.Next() {
		if err := x.read(); err != nil {
			return err
		}
		ev := merge.Event()
		if !x.m.match(ev) {
			continue
		}
		total++
		x.matched[src[merge.Source()]]++
		if after != nil && !posBefore(after, ev) {
			continue
		}
		switch {
		case len(x.res.Matches) < x.limit:
			x.keep(ev)
		case x.res.Next == "":
			x.res.Next = EncodeCursor(PositionOf(&x.res.Matches[len(x.res.Matches)-1]))
		}
	}
	if err := merge.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	x.res.Count = &total
	x.res.Holds = x.verdict(func(i int) bool { return x.matched[i] > 0 })
	return nil
}

// keep appends a copy of ev to the page; the iterator may reuse its memory.
func (x *execution) keep(ev *stream.Event) {
	c := *ev
	c.Data = bytes.Clone(ev.Data)
	x.res.Matches = append(x.res.Matches, c)
}

// verdict applies the pattern's rule to has, which tells whether node i has a
// match in range.
func (x *execution) verdict(has func(i int) bool) bool {
	if len(x.nodes) == 0 {
		return false
	}
	for i := range x.nodes {
		if has(i) == (x.q.Kind == Any) {
			return x.q.Kind == Any
		}
	}
	return x.q.Kind != Any
}

// settleHolds decides holds after page. A node with a match in the page has
// one in range. When the first page read the whole range, the page counts
// are the whole story. Otherwise nodes still undecided are probed from the
// start of the range until their first match, and only as far as needed: any
// stops at the first node with a match, the others at the first without.
func (x *execution) settleHolds(exhausted bool) error {
	pageShows := func(i int) bool { return x.matched[i] > 0 }
	if x.q.after == nil && exhausted {
		x.res.Holds = x.verdict(pageShows)
		return nil
	}
	// With the rest of the range after the cursor read to its end, a probe
	// only needs what lies up to the cursor.
	var upTo *int64
	if exhausted && x.q.after != nil && x.q.after.TS < math.MaxInt64 {
		t := x.q.after.TS + 1
		upTo = &t
	}
	anyShown, allShown := false, true
	for i := range x.nodes {
		anyShown = anyShown || pageShows(i)
		allShown = allShown && pageShows(i)
	}
	if x.q.Kind == Any && anyShown || x.q.Kind != Any && allShown {
		x.res.Holds = true
		return nil
	}
	var probeErr error
	x.res.Holds = x.verdict(func(i int) bool {
		if pageShows(i) || probeErr != nil {
			return true
		}
		found, err := x.probe(x.nodes[i], upTo)
		if err != nil {
			probeErr = err
			return true
		}
		return found
	})
	return probeErr
}

// probe reports whether node has a match in range (below *upTo when set).
func (x *execution) probe(node string, upTo *int64) (found bool, err error) {
	s := Scan{Node: node, Stream: x.q.Stream, From: x.q.From, To: x.q.To, HasFrom: x.q.HasFrom, HasTo: x.q.HasTo}
	if upTo != nil && (!s.HasTo || *upTo < s.To) {
		s.To, s.HasTo = *upTo, true
	}
	if s.HasFrom && s.HasTo && s.From >= s.To {
		return false, nil
	}
	it, err := x.idx.Scan(x.ctx, s)
	if err != nil {
		return false, fmt.Errorf("probe node %q: %w", node, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("probe node %q: close: %w", node, cerr)
		}
	}()
	for it.Next() {
		if err := x.read(); err != nil {
			return false, err
		}
		if x.m.match(it.Event()) {
			return true, nil
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("probe node %q: %w", node, err)
	}
	return false, nil
}

// posBefore reports whether p comes strictly before ev in merge order.
func posBefore(p *Position, ev *stream.Event) bool {
	if p.TS != ev.TS {
		return p.TS < ev.TS
	}
	if p.Node != ev.Node {
		return p.Node < ev.Node
	}
	if p.Epoch != ev.Epoch {
		return p.Epoch < ev.Epoch
	}
	return p.Seq < ev.Seq
}
