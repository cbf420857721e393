package aggregate

import (
	"slices"
	"time"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// Plan is a checked Request: the query that selects the events, the windows,
// the group fields and the aggregates. Prepare makes it; it does not change
// afterwards and is safe for concurrent use, so that states built on many
// goroutines share one Plan.
type Plan struct {
	q      *pattern.Query
	req    Request // canonical
	window int64   // ns
	from   int64   // ns, inclusive
	to     int64   // ns, exclusive
	first  int64   // index of the first window: it starts at first × window
	n      int     // windows

	groups []groupField
	gsrc   []int // per group field of fromData, its output in the extractor
	aggs   []aggSpec
	afield []int // per aggregate but count, its numeric field

	// Data paths, each read once, in the extractor's output order.
	paths [][]string
	// Numeric fields, each read once however many aggregates use it.
	fpath   []int  // per field, its output in the extractor
	fsketch []bool // per field, whether a percentile needs its sketch
	x       *pattern.Extractor
}

// Prepare checks every field of r and returns its Plan. Every error wraps
// pattern.ErrInvalid and starts with the field at fault: "pattern: ...",
// "where: ...", "stream: ...", "from: ...", "to: ...", "window: ...",
// "group_by: ..." or "aggregates: ...". A range that makes more than
// MaxWindows windows is a "window: " error that says how many it would make.
func Prepare(r Request) (*Plan, error) {
	q, err := pattern.Prepare(pattern.Request{Pattern: r.Pattern, Where: r.Where, Stream: r.Stream, From: r.From, To: r.To})
	if err != nil {
		return nil, err
	}
	if !q.HasFrom {
		return nil, invalidf("from: required: aggregates need a bounded range; give an RFC 3339 time such as 2026-11-25T00:00:00Z")
	}
	if !q.HasTo {
		return nil, invalidf("to: required: aggregates need a bounded range; give an RFC 3339 time such as 2026-11-25T01:00:00Z")
	}
	w, err := parseWindow(r.Window)
	if err != nil {
		return nil, err
	}
	p := &Plan{q: q, window: int64(w), from: q.From, to: q.To}
	p.first = floorDiv(q.From, p.window)
	if n := floorDiv(q.To-1, p.window) - p.first + 1; n > MaxWindows {
		return nil, invalidf("window: %s windows from %s to %s make %d windows, over the limit of %d; use a longer window or a shorter range",
			w, stream.FormatTime(q.From), stream.FormatTime(q.To), n, MaxWindows)
	} else {
		p.n = int(n)
	}
	if p.groups, err = parseGroupBy(r.GroupBy); err != nil {
		return nil, err
	}
	if p.aggs, err = parseAggregates(r.Aggregates); err != nil {
		return nil, err
	}
	p.compile()
	p.req = Request{Pattern: q.String(), Where: r.Where, Stream: r.Stream,
		From: stream.FormatTime(q.From), To: stream.FormatTime(q.To), Window: w.String()}
	for _, g := range p.groups {
		p.req.GroupBy = append(p.req.GroupBy, g.name)
	}
	for _, a := range p.aggs {
		p.req.Aggregates = append(p.req.Aggregates, a.name)
	}
	return p, nil
}

// compile assigns extractor outputs to the data paths, each distinct path
// once, and numeric fields to the aggregates, each distinct field once.
func (p *Plan) compile() {
	var paths [][]string
	pathIndex := func(path []string) int {
		for i, q := range paths {
			if slices.Equal(q, path) {
				return i
			}
		}
		paths = append(paths, path)
		return len(paths) - 1
	}
	p.gsrc = make([]int, len(p.groups))
	for i, g := range p.groups {
		p.gsrc[i] = -1
		if g.src == fromData {
			p.gsrc[i] = pathIndex(g.path)
		}
	}
	p.afield = make([]int, len(p.aggs))
	fields := map[string]int{}
	for i, a := range p.aggs {
		p.afield[i] = -1
		if a.kind == aggCount {
			continue
		}
		f, ok := fields[a.field]
		if !ok {
			f = len(p.fpath)
			fields[a.field] = f
			p.fpath = append(p.fpath, pathIndex(a.path))
			p.fsketch = append(p.fsketch, false)
		}
		p.afield[i] = f
		if a.kind == aggPct {
			p.fsketch[f] = true
		}
	}
	if len(paths) > 0 {
		p.x = pattern.NewExtractor(paths)
	}
	p.paths = paths
}

// floorDiv is a / b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// Query returns the query that selects the events to aggregate: pattern,
// where, stream, from and to. The engine resolves its scope with
// pattern.Scope and passes the events for which Matches is true to
// State.Add.
func (p *Plan) Query() *pattern.Query { return p.q }

// Request returns the request in canonical form: the pattern as
// pattern.Query.String gives it, from and to in UTC, the window as
// time.Duration.String gives it, group_by and aggregates trimmed and with
// lowercase function names, and aggregates ["count"] when none were given.
// Preparing it gives the same plan.
func (p *Plan) Request() Request {
	r := p.req
	r.GroupBy = slices.Clone(r.GroupBy)
	r.Aggregates = slices.Clone(r.Aggregates)
	return r
}

// Window returns the window length.
func (p *Plan) Window() time.Duration { return time.Duration(p.window) }

// Windows returns the number of windows of the range, 1 to MaxWindows.
func (p *Plan) Windows() int { return p.n }

// windowStart returns the start of window i as a time, computed in
// milliseconds so that windows reaching past the years of Unix nanoseconds
// do not overflow.
func (p *Plan) windowStart(i int) time.Time {
	ms := p.window / int64(time.Millisecond)
	return time.UnixMilli((p.first + int64(i)) * ms).UTC()
}
