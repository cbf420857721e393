package aggregate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// State accumulates the events of one plan over one scope. Plan.NewState
// makes it; Add feeds it and Merge combines states built in parallel over
// disjoint sets of events. A State is for one goroutine at a time.
type State struct {
	p       *Plan
	scope   []string
	nodeIdx map[string]int
	last    string // the node of the previous event, and its index: the engine
	lastIdx int    // scans node by node, so most lookups end here

	words int        // uint64 words of a window's bitset
	seen  [][]uint64 // per window, bit i: scope[i] has an event there; nil until one does

	cells    map[string]int32 // window (4 bytes) and group key → index in meta
	lastCell int32            // the cell of the previous event: with the scan node by node, often the next one's
	meta     []cell
	nums     []numAcc // len(p.fpath) per cell, cell by cell

	vals    []pattern.Value
	bound   []*pattern.Column // per data path of the plan, its column in the chunk at hand
	key     []byte
	compact bytes.Buffer
}

type cell struct {
	key   string // as in cells: window, then the group key
	count int64
}

// ErrMismatch is returned by Merge for states of different plans or scopes.
var ErrMismatch = errors.New("aggregate: merge of states of different plans or scopes")

// NewState returns an empty State for the nodes in scope, as pattern.Scope
// gives them (in any order; repeats count once). Holds, in the answer, is
// about these nodes.
func (p *Plan) NewState(scope []string) *State {
	s := &State{p: p, nodeIdx: make(map[string]int, len(scope)), lastIdx: -1, lastCell: -1,
		seen: make([][]uint64, p.n), cells: map[string]int32{}}
	for _, n := range scope {
		if _, dup := s.nodeIdx[n]; !dup {
			s.nodeIdx[n] = len(s.scope)
			s.scope = append(s.scope, n)
		}
	}
	s.words = (len(s.scope) + 63) / 64
	if p.x != nil {
		s.vals = make([]pattern.Value, p.x.Len())
	}
	return s
}

// Add counts ev, an event for which Plan.Query().Matches is true, in its
// window and group. It does not evaluate the query itself: it ignores only
// an event outside [from, to) or of a node not in scope. Data that is not a
// JSON object, or that Extract refuses, leaves every data field missing: the
// event counts, in the group with null for its data fields. The only error
// is for an event that would make a cell beyond MaxCells; it wraps
// pattern.ErrInvalid and says which limit, and the event is not counted.
func (s *State) Add(ev *stream.Event) error {
	p := s.p
	if ev.TS < p.from || ev.TS >= p.to {
		return nil
	}
	ni := s.lastIdx
	if ev.Node != s.last || ni < 0 {
		var ok bool
		if ni, ok = s.nodeIdx[ev.Node]; !ok {
			return nil
		}
		s.last, s.lastIdx = ev.Node, ni
	}
	w := floorDiv(ev.TS, p.window) - p.first
	if p.x != nil {
		// An error leaves every value Missing, which is what it means here.
		_ = p.x.Extract(ev.Data, s.vals)
	}
	key := binary.LittleEndian.AppendUint32(s.key[:0], uint32(w))
	for i, g := range p.groups {
		switch g.src {
		case fromNode:
			key = appendString(key, ev.Node)
		case fromStream:
			key = appendString(key, ev.Stream)
		default:
			key = appendValue(key, &s.vals[p.gsrc[i]], &s.compact)
		}
	}
	s.key = key
	ci, err := s.cell(key)
	if err != nil {
		return err
	}
	s.meta[ci].count++
	if nf := len(p.fpath); nf > 0 {
		nums := s.nums[int(ci)*nf : int(ci+1)*nf]
		for f := range nums {
			if v := &s.vals[p.fpath[f]]; v.Kind == pattern.JSONNumber {
				nums[f].add(v.Num, p.fsketch[f])
			}
		}
	}
	s.mark(int(w), ni)
	return nil
}

// cell returns the index of the cell of key, making it if need be.
func (s *State) cell(key []byte) (int32, error) {
	ci := s.lastCell
	if ci < 0 || s.meta[ci].key != string(key) {
		var ok bool
		if ci, ok = s.cells[string(key)]; !ok {
			var err error
			if ci, err = s.newCell(string(key)); err != nil {
				return 0, err
			}
		}
		s.lastCell = ci
	}
	return ci, nil
}

func (s *State) newCell(key string) (int32, error) {
	if len(s.meta) >= MaxCells {
		return 0, invalidf("group_by: the answer would have more than %d window × group cells, the limit; group by fewer fields, or use a longer window or a shorter range", MaxCells)
	}
	ci := int32(len(s.meta))
	s.cells[key] = ci
	s.meta = append(s.meta, cell{key: key})
	s.nums = append(s.nums, make([]numAcc, len(s.p.fpath))...)
	return ci, nil
}

func (s *State) mark(w, node int) {
	bits := s.seen[w]
	if bits == nil {
		bits = make([]uint64, s.words)
		s.seen[w] = bits
	}
	bits[node/64] |= 1 << (node % 64)
}

// Merge adds other's events into s, as if they had been added to s, and
// leaves other empty (it takes over other's memory). Both must come from the same Plan and scope (else
// ErrMismatch). Counts, minima, maxima, percentile sketches and the record
// of which nodes matched merge exactly, so merging is commutative and
// associative; sums differ by float64 rounding only. The error for more than
// MaxCells cells is Add's; after it the query has failed, and neither state
// is of further use.
func (s *State) Merge(other *State) error {
	if other == s {
		return nil
	}
	if other.p != s.p || !slices.Equal(other.scope, s.scope) {
		return ErrMismatch
	}
	for w, bits := range other.seen {
		switch {
		case bits == nil:
		case s.seen[w] == nil:
			s.seen[w] = bits
		default:
			for i, b := range bits {
				s.seen[w][i] |= b
			}
		}
	}
	nf := len(s.p.fpath)
	for oi := range other.meta {
		oc := &other.meta[oi]
		ci, ok := s.cells[oc.key]
		if !ok {
			var err error
			if ci, err = s.newCell(oc.key); err != nil {
				return err
			}
		}
		s.meta[ci].count += oc.count
		for f := range nf {
			s.nums[int(ci)*nf+f].merge(&other.nums[oi*nf+f])
		}
	}
	*other = *s.p.NewState(other.scope)
	return nil
}
