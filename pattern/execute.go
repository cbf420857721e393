package pattern

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

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
	// Certain is true when no event still to arrive can change Holds (see
	// Certain); Execute leaves it false, for the hub, which knows how
	// complete each node is, to settle with SetCompleteness.
	Certain bool `json:"certain"`
}

// NodeResult is one node's share of a Result.
type NodeResult struct {
	// Matched is the node's matches in the whole range when the query asked for
	// a count, else its matches in the returned page.
	Matched int64 `json:"matched"`
	Completeness
}

// Completeness is what the hub knows of how complete its data of a node is.
type Completeness struct {
	// Complete is true when the hub holds every event up to the last seq the
	// node reported, with no seq missing, and the node is online.
	Complete bool `json:"complete"`
	// Pending counts the events the node had not delivered as of its report,
	// plus the missing ones.
	Pending int64 `json:"pending"`
	// AsOf is the time of the node's report; zero when it never sent one.
	AsOf time.Time `json:"as_of,omitzero"`
}

// ctxCheckEvery is how many events Execute reads between checks of ctx.
const ctxCheckEvery = 256

// probeListMax is the most nodes a probe names to the index; for more it reads
// every node's chunks in node order and skips the ones it does not need.
const probeListMax = 512

// Execute runs q over idx and returns one page. Errors: ErrUnknownNode when
// single or multiple names a node idx has never heard of; ErrTooBroad when the
// page's point in time holds too much; the Index's errors, wrapped; ctx's
// error when it ends first.
//
// Whatever the number of nodes in scope, Execute reads through one Chunks
// iterator or one Each at a time. Without a count it merges chunks in time
// order from the cursor until the page is full, then decides holds for the
// nodes the page did not show in one more read in node order. With a count it
// reads the whole range once on every worker of the index, in any order,
// counting matches per node and keeping the page's first matches.
func Execute(ctx context.Context, idx Index, q *Query) (*Result, error) {
	nodes, err := Scope(ctx, idx, q)
	if err != nil {
		return nil, err
	}
	x := &execution{ctx: ctx, idx: idx, q: q, nodes: nodes, matched: make([]int64, len(nodes)),
		pos: make(map[string]int, len(nodes)),
		res: &Result{Pattern: q.text, Nodes: make(map[string]NodeResult, len(nodes)), Matches: []stream.Event{}}}
	for i, n := range nodes {
		x.pos[n] = i
	}
	// A Query whose Limit was changed after Prepare still gets sane pages.
	x.limit = min(max(q.Limit, 1), MaxLimit)
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
	nodes   []string       // in scope, in Scope's order
	pos     map[string]int // node → its index in nodes
	matched []int64        // per node, index as in nodes
	res     *Result
	limit   int
}

// scan returns the read of q's range over the nodes in scope.
func (x *execution) scan(order Order) Scan {
	s := Scan{Stream: x.q.Stream, From: x.q.From, To: x.q.To, HasFrom: x.q.HasFrom, HasTo: x.q.HasTo, Order: order}
	if x.q.Kind != All && x.q.Kind != Any {
		s.Nodes = slices.Clone(x.nodes)
		slices.Sort(s.Nodes)
	}
	return s
}

func emptyRange(s Scan) bool { return s.HasFrom && s.HasTo && s.From >= s.To }

// reader counts the events one goroutine reads and checks ctx now and then.
type reader struct {
	ctx     context.Context
	scanned int64
}

func (r *reader) read() error {
	r.scanned++
	if r.scanned%ctxCheckEvery == 0 {
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("execute query: %w", err)
		}
	}
	return nil
}

// skip counts n events read at once, without looking at each, and checks ctx.
func (r *reader) skip(n int) error {
	r.scanned += int64(n)
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("execute query: %w", err)
	}
	return nil
}

// page merges the range in time order from the cursor until it has one match
// more than the page holds, then settles holds.
func (x *execution) page() (err error) {
	s := x.scan(ByTime)
	after := x.q.after
	if after != nil {
		s.From, s.HasFrom = raise(s.From, s.HasFrom, after.TS)
	}
	exhausted := true
	if !emptyRange(s) {
		if exhausted, err = x.readPage(s); err != nil {
			return err
		}
	}
	return x.settleHolds(exhausted)
}

// readPage fills the page from s and reports whether it read s to its end.
func (x *execution) readPage(s Scan) (exhausted bool, err error) {
	it, err := x.idx.Chunks(x.ctx, s)
	if err != nil {
		return false, fmt.Errorf("scan: %w", err)
	}
	m := newChunkMerge(it, MaxOpenBytes)
	defer func() {
		if cerr := m.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close scan: %w", cerr)
		}
	}()
	mt := x.q.matcher()
	defer mt.release()
	r := &reader{ctx: x.ctx}
	defer func() { x.res.Scanned += r.scanned }()
	after := x.q.after
	for m.next() {
		if err := r.read(); err != nil {
			return false, err
		}
		ev := m.event()
		if after != nil && !posBefore(after, ev) {
			continue
		}
		i, ok := x.pos[ev.Node]
		if !ok || !mt.match(ev) {
			continue
		}
		if len(x.res.Matches) == x.limit {
			// A match beyond the page: there is a next page.
			x.res.Next = EncodeCursor(PositionOf(&x.res.Matches[len(x.res.Matches)-1]))
			return false, nil
		}
		x.res.Matches = append(x.res.Matches, clone(ev))
		x.matched[i]++
	}
	if m.err != nil {
		return false, fmt.Errorf("scan: %w", m.err)
	}
	return true, nil
}

// worker is one goroutine's share of a read in any order.
type worker struct {
	reader
	scan   *chunkScan
	counts []int64
	top    *topK
}

// countAndPage reads the whole range once, on every worker of the index: it
// counts every match, per node and in total, and keeps the first matches after
// the cursor for the page.
func (x *execution) countAndPage() error {
	var total int64
	defer func() { x.res.Count = &total }()
	s := x.scan(ByTime)
	if emptyRange(s) {
		x.res.Holds = x.verdict(func(int) bool { return false })
		return nil
	}
	ws := make([]*worker, max(x.idx.Workers(), 1))
	for i := range ws {
		ws[i] = &worker{reader: reader{ctx: x.ctx}, scan: newChunkScan(x.q), counts: make([]int64, len(x.nodes)), top: newTopK(x.limit + 1)}
		defer ws[i].scan.release()
	}
	after := x.q.after
	err := x.idx.Each(x.ctx, s, func(w int, c *Chunk) error {
		if w < 0 || w >= len(ws) {
			return fmt.Errorf("scan: worker %d of %d", w, len(ws))
		}
		st := ws[w]
		ni, ok := x.pos[c.Node]
		if !ok {
			return nil
		}
		return st.scan.each(c, &st.reader, func(m *match) (bool, error) {
			st.counts[ni]++
			key := stream.Event{TS: m.ts, Node: c.Node, Epoch: c.Epoch, Seq: m.seq}
			if (after == nil || posBefore(after, &key)) && st.top.admits(m.ts, c.Node, c.Epoch, m.seq) {
				ev, err := m.event()
				if err != nil {
					return true, err
				}
				st.top.offer(ev)
			}
			return false, nil
		})
	})
	for _, st := range ws {
		x.res.Scanned += st.scanned
	}
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	top := newTopK(x.limit + 1)
	for _, st := range ws {
		for i, n := range st.counts {
			x.matched[i] += n
			total += n
		}
		top.merge(st.top)
	}
	page := append([]stream.Event{}, top.sorted()...)
	if len(page) > x.limit {
		page = page[:x.limit]
		x.res.Next = EncodeCursor(PositionOf(&page[len(page)-1]))
	}
	x.res.Matches = page
	x.res.Holds = x.verdict(func(i int) bool { return x.matched[i] > 0 })
	return nil
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
// are the whole story. Otherwise the nodes still undecided are probed, in one
// read in node order, and only as far as needed: any stops at the first node
// with a match, the others at the first without.
func (x *execution) settleHolds(exhausted bool) error {
	pageShows := func(i int) bool { return x.matched[i] > 0 }
	if x.q.after == nil && exhausted {
		x.res.Holds = x.verdict(pageShows)
		return nil
	}
	var undecided []string
	for i, n := range x.nodes {
		if !pageShows(i) {
			undecided = append(undecided, n)
		}
	}
	shown := len(x.nodes) - len(undecided)
	switch {
	case len(x.nodes) == 0:
		x.res.Holds = false
		return nil
	case x.q.Kind == Any && shown > 0, x.q.Kind != Any && len(undecided) == 0:
		x.res.Holds = true
		return nil
	}
	s := x.scan(ByNode)
	// With the rest of the range after the cursor read to its end, a probe
	// only needs what lies up to the cursor.
	if exhausted && x.q.after != nil && x.q.after.TS < math.MaxInt64 {
		if t := x.q.after.TS + 1; !s.HasTo || t < s.To {
			s.To, s.HasTo = t, true
		}
	}
	holds, err := x.probe(s, undecided)
	x.res.Holds = holds
	return err
}

func raise(from int64, has bool, to int64) (int64, bool) {
	if !has || to > from {
		return to, true
	}
	return from, true
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
