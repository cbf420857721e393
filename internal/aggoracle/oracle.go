// Package aggoracle computes aggregate answers by brute force, for tests of
// the engines that answer them fast: encoding/json on every event, sorting,
// and the contract's rules written out plainly. Want returns the expected
// answer; Check compares an answer's JSON with it.
package aggoracle

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// Answer is an expected aggregate answer.
type Answer struct {
	Windows []Window
	Certain bool
}

// Window is one expected window.
type Window struct {
	Start, End time.Time
	Holds      bool
	Certain    bool
	Groups     []Group
}

// Group is one expected group: its key, its count and per numeric field its
// numbers.
type Group struct {
	Key   []any // nil, bool, float64, string, or the compact JSON text (json.RawMessage) of an array or object
	Count int
	Nums  map[string][]float64
}

// Request is what Want needs of an aggregate request, checked: the query
// (pattern, where, stream, from and to), the window, and group_by and
// aggregates in canonical form.
type Request struct {
	Query      *pattern.Query
	Window     time.Duration
	GroupBy    []string
	Aggregates []string
}

// Want computes the answer to r over evs, with scope the nodes in scope and
// complete the nodes whose data the hub holds whole. Events are matched with
// pattern.Query.Matches, which evaluates the where-expression on the event's
// JSON (not on columns).
func Want(r Request, evs []stream.Event, scope []string, complete map[string]bool) Answer {
	q := r.Query
	w := int64(r.Window)
	firstStart := floorDiv(q.From, w) * w
	nw := int((floorDiv(q.To-1, w)*w-firstStart)/w) + 1
	var fields []string // the numeric fields, each once
	for _, a := range r.Aggregates {
		if _, field, ok := strings.Cut(strings.TrimSuffix(a, ")"), "("); ok && !slices.Contains(fields, field) {
			fields = append(fields, field)
		}
	}
	type cellKey struct {
		win int
		key string
	}
	cells := map[cellKey]*Group{}
	seen := make([]map[string]bool, nw)
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	for i := range evs {
		ev := &evs[i]
		if !q.Matches(ev) || !slices.Contains(scope, ev.Node) {
			continue
		}
		wi := int((ev.TS - firstStart) / w)
		key := make([]any, len(r.GroupBy))
		for j, g := range r.GroupBy {
			key[j] = KeyValue(ev, g)
		}
		ck := cellKey{wi, fmt.Sprintf("%#v", key)}
		g := cells[ck]
		if g == nil {
			g = &Group{Key: key, Nums: map[string][]float64{}}
			cells[ck] = g
		}
		g.Count++
		for _, field := range fields {
			if v, ok := Number(ev, field); ok {
				g.Nums[field] = append(g.Nums[field], v)
			}
		}
		seen[wi][ev.Node] = true
	}
	ans := Answer{Certain: true}
	for wi := range nw {
		start := time.Unix(0, firstStart+int64(wi)*w).UTC()
		win := Window{Start: start, End: start.Add(r.Window), Groups: []Group{}}
		win.Holds = len(scope) > 0 && len(seen[wi]) > 0
		if q.Kind != pattern.Any {
			win.Holds = len(scope) > 0 && len(seen[wi]) == len(scope)
		}
		win.Certain = true
		if !win.Holds {
			for _, n := range scope {
				if !complete[n] && (q.Kind == pattern.Any || !seen[wi][n]) {
					win.Certain = false
				}
			}
		}
		ans.Certain = ans.Certain && win.Certain
		for ck, g := range cells {
			if ck.win == wi {
				win.Groups = append(win.Groups, *g)
			}
		}
		slices.SortFunc(win.Groups, func(a, b Group) int { return CompareKeys(a.Key, b.Key) })
		ans.Windows = append(ans.Windows, win)
	}
	return ans
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// KeyValue reads a group field of ev as the contract says: node and stream
// from the envelope, data paths through encoding/json; nil for a missing
// field or JSON null, the compact JSON text for an array or object.
func KeyValue(ev *stream.Event, field string) any {
	switch field {
	case "node":
		return ev.Node
	case "stream":
		return ev.Stream
	}
	raw := rawAt(ev.Data, strings.Split(field, "."))
	if raw == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	switch v := v.(type) {
	case map[string]any, []any:
		var b bytes.Buffer
		_ = json.Compact(&b, raw)
		return json.RawMessage(b.String())
	case float64:
		return v + 0 // -0 is 0
	default:
		return v
	}
}

func rawAt(data json.RawMessage, path []string) json.RawMessage {
	raw := data
	for _, k := range path {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		var ok bool
		if raw, ok = m[k]; !ok {
			return nil
		}
	}
	return raw
}

// Number returns the JSON number at a data field path of ev, and false when
// the field is missing or not a number.
func Number(ev *stream.Event, field string) (float64, bool) {
	var v any
	if raw := rawAt(ev.Data, strings.Split(field, ".")); raw == nil || json.Unmarshal(raw, &v) != nil {
		return 0, false
	}
	f, ok := v.(float64)
	return f, ok
}

func typeRank(v any) int {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case float64:
		return 2
	case string:
		return 3
	case json.RawMessage:
		if v[0] == '[' {
			return 4
		}
		return 5
	}
	panic(fmt.Sprintf("aggoracle: key value %#v", v))
}

// CompareKeys orders keys as the contract does: null, false, true, numbers,
// strings by bytes, arrays, objects by their text.
func CompareKeys(a, b []any) int {
	for i := range a {
		if c := cmp.Compare(typeRank(a[i]), typeRank(b[i])); c != 0 {
			return c
		}
		var c int
		switch x := a[i].(type) {
		case bool:
			c = cmp.Compare(fmt.Sprint(x), fmt.Sprint(b[i])) // "false" < "true"
		case float64:
			c = cmp.Compare(x, b[i].(float64))
		case string:
			c = strings.Compare(x, b[i].(string))
		case json.RawMessage:
			c = bytes.Compare(x, b[i].(json.RawMessage))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// NearestRank is the ⌈pct/100 × n⌉-th smallest of sorted.
func NearestRank(sorted []float64, pct int) float64 {
	k := int(math.Ceil(float64(pct) / 100 * float64(len(sorted))))
	return sorted[max(k, 1)-1]
}
