package pattern

import (
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// Page size limits.
const (
	// DefaultLimit is the page size when a request gives none.
	DefaultLimit = 100
	// MaxLimit is the largest page size a request may ask for.
	MaxLimit = 10000
)

// Request is a query as the API receives it, as a JSON body or as query
// parameters of the same names.
type Request struct {
	Pattern string `json:"pattern"`
	Where   string `json:"where"`
	Stream  string `json:"stream"`
	From    string `json:"from"`  // RFC 3339, may be empty
	To      string `json:"to"`    // RFC 3339, may be empty
	Limit   int    `json:"limit"` // 0 means DefaultLimit; below 0 or above MaxLimit is invalid
	After   string `json:"after"` // the Next of a previous Result
	Count   bool   `json:"count"`
	// Consistency is "eventual" (or empty) or "strong"; Wait, a Go duration,
	// bounds how long a strong read waits (DefaultWait, at most MaxWait).
	Consistency string `json:"consistency"`
	Wait        string `json:"wait"`
}

// Consistency levels and the bounds of a strong read's wait.
const (
	Eventual    = "eventual"
	Strong      = "strong"
	DefaultWait = 5 * time.Second
	MaxWait     = 60 * time.Second
)

// Query is a checked, compiled Request. Prepare makes it; it does not change
// afterwards and is safe for concurrent use (Matches from many goroutines,
// Execute more than once).
type Query struct {
	// Kind is the pattern kind.
	Kind Kind
	// Nodes are the named nodes of single and multiple, deduplicated, in the
	// order given; nil for all and any.
	Nodes []string
	// Stream is the only stream considered; empty means every stream.
	Stream string
	// From and To bound event time to [From, To), in Unix nanoseconds; a bound
	// applies only when its Has flag is set.
	From, To       int64
	HasFrom, HasTo bool
	// Limit is the page size, 1 to MaxLimit.
	Limit int
	// Count asks for the total number of matches in range.
	Count bool
	// Strong asks the hub to catch up with every online node in scope first,
	// waiting at most Wait.
	Strong bool
	Wait   time.Duration

	after *Position // the page starts strictly after it; nil for the first page
	where *predicate
	text  string
	named map[string]struct{} // Nodes as a set, for Matches
}

// Prepare checks every field of r and compiles its where-expression, once.
// Every error wraps ErrInvalid and names the field at fault: "pattern: ...",
// "where: ...", "stream: ...", "from: ...", "to: ...", "limit: ...", "after: ...".
// Whether the named nodes exist is Execute's business (ErrUnknownNode).
func Prepare(r Request) (*Query, error) {
	kind, nodes, err := parsePattern(r.Pattern)
	if err != nil {
		return nil, err
	}
	q := &Query{Kind: kind, Nodes: nodes, Stream: r.Stream, Count: r.Count, text: canonical(kind, nodes)}
	if len(nodes) > 0 {
		q.named = make(map[string]struct{}, len(nodes))
		for _, n := range nodes {
			q.named[n] = struct{}{}
		}
	}
	if r.Stream != "" {
		if err := stream.ValidateName("stream", r.Stream); err != nil {
			return nil, invalidf("stream: %v", err)
		}
	}
	if q.From, q.HasFrom, err = parseTime("from", r.From); err != nil {
		return nil, err
	}
	if q.To, q.HasTo, err = parseTime("to", r.To); err != nil {
		return nil, err
	}
	if q.HasFrom && q.HasTo && q.From >= q.To {
		return nil, invalidf("from: %s is not before to %s; the range [from, to) would be empty", r.From, r.To)
	}
	switch {
	case r.Limit == 0:
		q.Limit = DefaultLimit
	case r.Limit < 0:
		return nil, invalidf("limit: %d is negative; give 1 to %d, or leave it out for %d", r.Limit, MaxLimit, DefaultLimit)
	case r.Limit > MaxLimit:
		return nil, invalidf("limit: %d is over the limit of %d", r.Limit, MaxLimit)
	default:
		q.Limit = r.Limit
	}
	if r.After != "" {
		p, err := DecodeCursor(r.After)
		if err != nil {
			return nil, err
		}
		q.after = &p
	}
	if r.Where != "" {
		if q.where, err = compileWhere(r.Where); err != nil {
			return nil, err
		}
	}
	if q.Strong, q.Wait, err = ParseConsistency(r.Consistency, r.Wait); err != nil {
		return nil, err
	}
	return q, nil
}

// ParseConsistency checks a request's consistency and wait: strong reports
// a strong read, with its wait (DefaultWait when wait is empty).
func ParseConsistency(consistency, wait string) (strong bool, d time.Duration, err error) {
	switch consistency {
	case "", Eventual:
		if wait != "" {
			return false, 0, invalidf("wait: %q applies only to consistency %q", wait, Strong)
		}
		return false, 0, nil
	case Strong:
	default:
		return false, 0, invalidf("consistency: %q is not %q or %q", consistency, Eventual, Strong)
	}
	if wait == "" {
		return true, DefaultWait, nil
	}
	d, perr := time.ParseDuration(wait)
	switch {
	case perr != nil:
		return false, 0, invalidf("wait: %q is not a duration such as 5s or 500ms", wait)
	case d <= 0:
		return false, 0, invalidf("wait: %s must be more than 0", wait)
	case d > MaxWait:
		return false, 0, invalidf("wait: %s is over the limit of %v", wait, MaxWait)
	}
	return true, d, nil
}

// parseTime reads an RFC 3339 time (fractional seconds allowed) as Unix
// nanoseconds; ok is false for an empty string.
func parseTime(field, s string) (ns int64, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false, invalidf("%s: %q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", field, s)
	}
	// UnixNano is undefined outside about 1678 to 2262; refuse rather than wrap.
	if !stream.InTimeRange(t) {
		return 0, false, invalidf("%s: %s is outside the years %d to %d", field, s, stream.MinYear, stream.MaxYear)
	}
	return t.UnixNano(), true, nil
}

// Cost returns the compile-time estimate of the where-expression's work, in
// steps per event and per byte of the event's data (see MaxWhereCost and
// MaxWhereCostPerByte); 0, 0 without one.
func (q *Query) Cost() (perEvent, perByte float64) {
	if q.where == nil {
		return 0, 0
	}
	return q.where.perEvent, q.where.perByte
}

// String returns the canonical pattern text: "single(a)", "multiple(a,b)",
// "all" or "any".
func (q *Query) String() string { return q.text }

// After returns the position the page starts after, or nil for the first page.
func (q *Query) After() *Position { return q.after }

// Matches reports whether ev matches q as a live event: its node is in scope
// (named for single and multiple, any node for all and any), its stream is
// q.Stream when one is set, its ts is in range, and the where-expression holds.
// It ignores the cursor. It is safe for concurrent use.
func (q *Query) Matches(ev *stream.Event) bool {
	if q.named != nil {
		if _, ok := q.named[ev.Node]; !ok {
			return false
		}
	}
	if !q.inRange(ev) {
		return false
	}
	if q.where == nil {
		return true
	}
	e := q.where.get()
	ok := q.where.eval(e, ev)
	q.where.put(e)
	return ok
}

// inRange checks the stream and time filters.
func (q *Query) inRange(ev *stream.Event) bool {
	if q.Stream != "" && ev.Stream != q.Stream {
		return false
	}
	if q.HasFrom && ev.TS < q.From {
		return false
	}
	if q.HasTo && ev.TS >= q.To {
		return false
	}
	return true
}

// matcher evaluates q's filters with one evaluator, for a single goroutine.
type matcher struct {
	q *Query
	e *evaluator
}

func (q *Query) matcher() *matcher {
	m := &matcher{q: q}
	if q.where != nil {
		m.e = q.where.get()
	}
	return m
}

func (m *matcher) match(ev *stream.Event) bool {
	if !m.q.inRange(ev) {
		return false
	}
	return m.e == nil || m.q.where.eval(m.e, ev)
}

func (m *matcher) release() {
	if m.e != nil {
		m.q.where.put(m.e)
		m.e = nil
	}
}
