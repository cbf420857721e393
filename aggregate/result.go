package aggregate

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"slices"
	"time"

	"github.com/tributary-edge/tributary/pattern"
)

// Result is the API's answer to an aggregate request. Plan.Result fills
// every field but Scanned, TookMS and Certain, which are the engine's.
type Result struct {
	// Pattern is the canonical pattern text.
	Pattern string `json:"pattern"`
	// Window is the window length as time.Duration.String writes it ("1m0s").
	Window string `json:"window"`
	// Windows lists every window of the range, in time order.
	Windows []Window `json:"windows"`
	// Scanned is the number of events the engine read.
	Scanned int64 `json:"scanned"`
	// TookMS is how long the engine took, in milliseconds.
	TookMS int64 `json:"took_ms"`
	// Certain is true when no event still to arrive can change any holds.
	Certain bool `json:"certain"`
}

// Window is one window [Start, End) of the answer.
type Window struct {
	// Start and End are in UTC.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Holds applies the pattern's quantifier to this window alone: for
	// single, multiple and all, every node in scope has an event in it; for
	// any, at least one does. It is false when the scope is empty.
	Holds bool `json:"holds"`
	// Certain is true when no event still to arrive can change Holds (see
	// Plan.Settle); Plan.Result leaves it false.
	Certain bool `json:"certain"`
	// Groups are the window's groups in key order, empty (not nil) when no
	// event fell in the window.
	Groups []Group `json:"groups"`
}

// Group is the aggregates of one group in one window. Its JSON form is an
// object: {"key": {FIELD: VALUE, ...}, AGGREGATE: VALUE, ...}, the key's
// fields in group_by order and the aggregates in request order.
type Group struct {
	Key    []KeyField
	Values []Aggregate
}

// KeyField is one group_by field of a group's key.
type KeyField struct {
	// Name is the group_by field: node, stream or a data path.
	Name string
	// Value is nil (the field is missing or JSON null), a bool, a float64, a
	// string, or, for an array or object, a json.RawMessage of its compact
	// JSON text.
	Value any
}

// Aggregate is one aggregate's value in a group.
type Aggregate struct {
	// Name is the canonical aggregate: count, avg(temp).
	Name string
	// Value is the aggregate; for count, the number of events.
	Value float64
	// Null is true when no event of the group had a number in the field (or
	// a sum overflowed float64); never for count.
	Null bool
}

// Get returns the value of the named aggregate, and false when the group
// has none of that name or it is null.
func (g Group) Get(name string) (float64, bool) {
	for _, a := range g.Values {
		if a.Name == name {
			return a.Value, !a.Null
		}
	}
	return 0, false
}

// MarshalJSON writes the group as {"key": {...}, "count": 12, ...}.
func (g Group) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"key":{`)
	for i, f := range g.Key {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeMember(&b, f.Name, f.Value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	for _, a := range g.Values {
		b.WriteByte(',')
		var v any = a.Value
		if a.Null {
			v = nil
		}
		if err := writeMember(&b, a.Name, v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeMember(b *bytes.Buffer, name string, v any) error {
	k, err := json.Marshal(name)
	if err != nil {
		return err
	}
	b.Write(k)
	b.WriteByte(':')
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(val)
	return nil
}

// Result returns the answer for st, which must come from p.NewState (else
// Result panics). It does not change st.
func (p *Plan) Result(st *State) *Result {
	if st.p != p {
		panic("aggregate: Result of a state of another plan")
	}
	res := &Result{Pattern: p.q.String(), Window: p.Window().String(), Windows: make([]Window, p.n)}
	for i := range res.Windows {
		start := p.windowStart(i)
		res.Windows[i] = Window{Start: start, End: start.Add(p.Window()), Holds: p.holds(st, i), Groups: []Group{}}
	}
	type sorted struct {
		win  int
		key  []keyValue
		cell int
	}
	cells := make([]sorted, len(st.meta))
	for i, c := range st.meta {
		cells[i] = sorted{win: int(uint32(c.key[0]) | uint32(c.key[1])<<8 | uint32(c.key[2])<<16 | uint32(c.key[3])<<24),
			key: decodeKey(c.key[4:]), cell: i}
	}
	slices.SortFunc(cells, func(a, b sorted) int {
		if a.win != b.win {
			return a.win - b.win
		}
		return compareKeys(a.key, b.key)
	})
	nf := len(p.fpath)
	for _, c := range cells {
		g := Group{Key: make([]KeyField, len(p.groups)), Values: make([]Aggregate, len(p.aggs))}
		for i, f := range p.groups {
			g.Key[i] = KeyField{Name: f.name, Value: c.key[i].value()}
		}
		nums := st.nums[c.cell*nf : (c.cell+1)*nf]
		for i, a := range p.aggs {
			v := Aggregate{Name: a.name}
			if a.kind == aggCount {
				v.Value = float64(st.meta[c.cell].count)
			} else {
				val, ok := value(a, &nums[p.afield[i]])
				if ok {
					v.Value = val
				}
				v.Null = !ok
			}
			g.Values[i] = v
		}
		w := &res.Windows[c.win]
		w.Groups = append(w.Groups, g)
	}
	return res
}

// value computes a numeric aggregate; ok is false for null.
func value(a aggSpec, n *numAcc) (v float64, ok bool) {
	if n.n == 0 {
		return 0, false
	}
	switch a.kind {
	case aggSum:
		return n.total()
	case aggAvg:
		s, ok := n.total()
		return s / float64(n.n), ok
	case aggMin:
		return n.min, true
	case aggMax:
		return n.max, true
	case aggPct:
		return n.percentile(a.pct)
	}
	return 0, false
}

// holds applies the quantifier to window i.
func (p *Plan) holds(st *State, i int) bool {
	seen := st.seen[i]
	if len(st.scope) == 0 || seen == nil {
		return false
	}
	if p.q.Kind == pattern.Any {
		return true // a window's bitset exists once some node has an event there
	}
	n := 0
	for _, w := range seen {
		n += bits.OnesCount64(w)
	}
	return n == len(st.scope)
}
