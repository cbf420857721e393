package aggregate

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/pattern"
)

// Limits on a request and its answer.
const (
	// MaxWindows is the most windows a request's range may make.
	MaxWindows = 10_000
	// MaxCells is the most window × group cells an answer may hold.
	MaxCells = 100_000
	// MaxGroupBy is the most group_by fields.
	MaxGroupBy = 8
	// MaxAggregates is the most aggregates a request may ask for.
	MaxAggregates = 32
	// MaxPathBytes is the longest field path, in bytes.
	MaxPathBytes = 256
)

// Request is an aggregate query as the API receives it, as a JSON body or, via
// RequestFromValues, as query parameters of the same names.
type Request struct {
	Pattern    string   `json:"pattern"`
	Where      string   `json:"where"`
	Stream     string   `json:"stream"`
	From       string   `json:"from"`       // RFC 3339, required
	To         string   `json:"to"`         // RFC 3339, required
	Window     string   `json:"window"`     // a duration: 30s, 1m, 5m, 1h, 1d
	GroupBy    []string `json:"group_by"`   // node, stream or data field paths
	Aggregates []string `json:"aggregates"` // count, sum(f), ..., p99(f); empty means count
}

// requestError is a user-facing message that wraps pattern.ErrInvalid, so that
// the HTTP layer answers it with 400 like any other bad query.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return pattern.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// RequestFromValues reads a Request from query parameters: pattern, where,
// stream, from, to and window once each, group_by and aggregates as
// comma-separated lists (repeating the parameter appends to the list).
// Other parameters are left to the caller. The error wraps pattern.ErrInvalid
// and names the parameter: a single-valued one given twice, or an empty list
// item.
func RequestFromValues(v url.Values) (Request, error) {
	var r Request
	for _, f := range []struct {
		name string
		dst  *string
	}{{"pattern", &r.Pattern}, {"where", &r.Where}, {"stream", &r.Stream}, {"from", &r.From}, {"to", &r.To}, {"window", &r.Window}} {
		switch vals := v[f.name]; len(vals) {
		case 0:
		case 1:
			*f.dst = vals[0]
		default:
			return Request{}, invalidf("%s: given %d times; give it once", f.name, len(vals))
		}
	}
	var err error
	if r.GroupBy, err = splitList("group_by", v["group_by"]); err != nil {
		return Request{}, err
	}
	if r.Aggregates, err = splitList("aggregates", v["aggregates"]); err != nil {
		return Request{}, err
	}
	return r, nil
}

// splitList splits comma-separated parameter values into trimmed items; an
// empty parameter is an empty list, an empty item is an error.
func splitList(name string, vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		if strings.TrimSpace(v) == "" {
			continue
		}
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, invalidf("%s: item %d of %q is empty", name, len(out)+1, v)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

// Values returns r as query parameters, leaving out empty fields.
// RequestFromValues reads them back as r when no group_by or aggregates item
// is empty, has a comma or starts or ends with white space, which holds for
// every request that Prepare accepts in its canonical form (Plan.Request).
func (r Request) Values() url.Values {
	v := url.Values{}
	for _, f := range []struct{ name, val string }{{"pattern", r.Pattern}, {"where", r.Where}, {"stream", r.Stream},
		{"from", r.From}, {"to", r.To}, {"window", r.Window},
		{"group_by", strings.Join(r.GroupBy, ",")}, {"aggregates", strings.Join(r.Aggregates, ",")}} {
		if f.val != "" {
			v.Set(f.name, f.val)
		}
	}
	return v
}

// durationRE matches the syntax of time.ParseDuration without a sign.
var durationRE = regexp.MustCompile(`^(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`)

// parseWindow reads a window: a Go duration, optionally led by whole days
// ("1d", "1d12h"), of at least 1ms and a whole number of milliseconds.
func parseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, invalidf("window: required; give a duration such as 30s, 1m, 5m, 1h or 1d")
	}
	bad := invalidf("window: %q is not a duration such as 30s, 1m, 5m, 1h or 1d", s)
	rest, days := s, int64(0)
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 63)
		if err != nil || s[0] == '+' {
			return 0, bad
		}
		if n > uint64(1<<63-1)/uint64(24*time.Hour) {
			return 0, invalidf("window: %s is over the longest duration, about 290 years", s)
		}
		days, rest = int64(n), s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		if days > 0 && (rest[0] == '-' || rest[0] == '+') {
			return 0, bad
		}
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			if durationRE.MatchString(rest) {
				// Well formed, so too long for a time.Duration.
				return 0, invalidf("window: %s is over the longest duration, about 290 years", s)
			}
			return 0, bad
		}
	}
	if days > 0 {
		dd := time.Duration(days) * 24 * time.Hour
		if d > time.Duration(1<<63-1)-dd {
			return 0, invalidf("window: %s is over the longest duration, about 290 years", s)
		}
		d += dd
	}
	switch {
	case d <= 0:
		return 0, invalidf("window: %s is not a positive duration", s)
	case d < time.Millisecond:
		return 0, invalidf("window: %s is under the minimum of 1ms", s)
	case d%time.Millisecond != 0:
		return 0, invalidf("window: %s is not a whole number of milliseconds", s)
	}
	return d, nil
}

// Envelope names. node and stream may be grouped by; ts and seq may not, and
// none of them is a data field an aggregate can read: they hide data fields
// of the same name, as in where-expressions.
const (
	envNode   = "node"
	envStream = "stream"
	envTS     = "ts"
	envSeq    = "seq"
)

func isEnvelope(s string) bool { return s == envNode || s == envStream || s == envTS || s == envSeq }

// parsePath splits a data field path such as gps.zone into its keys. It
// returns a reason when the path is not one.
func parsePath(s string) ([]string, string) {
	if len(s) > MaxPathBytes {
		return nil, fmt.Sprintf("%d bytes is over the limit of %d", len(s), MaxPathBytes)
	}
	if !utf8.ValidString(s) {
		return nil, "it is not valid UTF-8"
	}
	col := 1
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`,()"'[]`, r) {
			return nil, fmt.Sprintf("character %q at column %d is not allowed in a field path", r, col)
		}
		col++
	}
	keys := strings.Split(s, ".")
	for i, k := range keys {
		if k == "" {
			return nil, fmt.Sprintf("key %d is empty; write keys joined by dots, as in gps.zone", i+1)
		}
	}
	if isEnvelope(keys[0]) && len(keys) > 1 {
		return nil, fmt.Sprintf("%s is the event's envelope, not a data object", keys[0])
	}
	return keys, ""
}

// groupSource says where a group field's value comes from.
type groupSource int

const (
	fromNode groupSource = iota
	fromStream
	fromData
)

type groupField struct {
	name string
	src  groupSource
	path []string
}

// parseGroupBy checks the group_by fields and returns them canonically.
func parseGroupBy(items []string) ([]groupField, error) {
	if len(items) > MaxGroupBy {
		return nil, invalidf("group_by: %d fields is over the limit of %d", len(items), MaxGroupBy)
	}
	out := make([]groupField, 0, len(items))
	seen := map[string]bool{}
	for i, item := range items {
		item = strings.TrimSpace(item)
		switch item {
		case "":
			return nil, invalidf("group_by: item %d is empty", i+1)
		case envNode:
			out = append(out, groupField{name: item, src: fromNode})
		case envStream:
			out = append(out, groupField{name: item, src: fromStream})
		case envTS:
			return nil, invalidf("group_by: ts is not allowed: windows already split the range by event time")
		case envSeq:
			return nil, invalidf("group_by: seq is not allowed: every event would be a group of its own")
		default:
			keys, why := parsePath(item)
			if why != "" {
				return nil, invalidf("group_by: %q is not a field path such as site or gps.zone: %s", item, why)
			}
			out = append(out, groupField{name: item, src: fromData, path: keys})
		}
		if seen[item] {
			return nil, invalidf("group_by: %s appears twice", item)
		}
		seen[item] = true
	}
	return out, nil
}

// aggKind is an aggregate function.
type aggKind int

const (
	aggCount aggKind = iota
	aggSum
	aggMin
	aggMax
	aggAvg
	aggPct // a percentile; aggSpec.pct says which
)

var aggNames = map[string]aggKind{"sum": aggSum, "min": aggMin, "max": aggMax, "avg": aggAvg,
	"p50": aggPct, "p90": aggPct, "p95": aggPct, "p99": aggPct}

const aggList = "count, sum(f), min(f), max(f), avg(f), p50(f), p90(f), p95(f) or p99(f)"

type aggSpec struct {
	name  string // canonical: count, avg(temp)
	kind  aggKind
	pct   int    // 50, 90, 95 or 99 for aggPct
	field string // the data field path, for all but count
	path  []string
}

// parseAggregates checks the aggregates and returns them canonically; an
// empty list means count.
func parseAggregates(items []string) ([]aggSpec, error) {
	if len(items) == 0 {
		return []aggSpec{{name: "count", kind: aggCount}}, nil
	}
	if len(items) > MaxAggregates {
		return nil, invalidf("aggregates: %d aggregates is over the limit of %d", len(items), MaxAggregates)
	}
	out := make([]aggSpec, 0, len(items))
	seen := map[string]bool{}
	for i, item := range items {
		a, err := parseAggregate(i, strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		if seen[a.name] {
			return nil, invalidf("aggregates: %s appears twice", a.name)
		}
		seen[a.name] = true
		out = append(out, a)
	}
	return out, nil
}

func parseAggregate(i int, s string) (aggSpec, error) {
	if s == "" {
		return aggSpec{}, invalidf("aggregates: item %d is empty", i+1)
	}
	open := strings.IndexByte(s, '(')
	fn := strings.ToLower(strings.TrimSpace(s[:max(open, 0)]))
	if open < 0 {
		fn = strings.ToLower(s)
	}
	kind, known := aggNames[fn]
	switch {
	case fn == "count" && open < 0:
		return aggSpec{name: "count", kind: aggCount}, nil
	case fn == "count":
		return aggSpec{}, invalidf("aggregates: %s: count takes no field; write count", s)
	case !known:
		return aggSpec{}, invalidf("aggregates: unknown aggregate %q; want %s", s, aggList)
	case open < 0:
		return aggSpec{}, invalidf("aggregates: %s needs a field, as in %s(temp)", s, fn)
	case !strings.HasSuffix(s, ")"):
		return aggSpec{}, invalidf("aggregates: %s: expected ) at the end", s)
	}
	field := strings.TrimSpace(s[open+1 : len(s)-1])
	if field == "" {
		return aggSpec{}, invalidf("aggregates: %s needs a field, as in %s(temp)", s, fn)
	}
	if isEnvelope(field) {
		return aggSpec{}, invalidf("aggregates: %s: %s is the event's envelope; aggregates read numeric data fields", s, field)
	}
	keys, why := parsePath(field)
	if why != "" {
		return aggSpec{}, invalidf("aggregates: %s: %q is not a field path such as temp or gps.lat: %s", s, field, why)
	}
	a := aggSpec{name: fn + "(" + field + ")", kind: kind, field: field, path: keys}
	if kind == aggPct {
		a.pct, _ = strconv.Atoi(fn[1:])
	}
	return a, nil
}
