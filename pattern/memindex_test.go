package pattern

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

// memIndex is an in-memory Index that follows the contract literally. Its
// iterators reuse one Event and one Data buffer, as a database row iterator
// would, so a caller that keeps pointers or bytes across Next sees them change.
type memIndex struct {
	t      testing.TB
	nodes  []string // known nodes, sorted; may include nodes without events
	events map[string][]stream.Event

	mu      sync.Mutex
	open    int    // iterators not yet closed
	scans   []Scan // every Scan call, in order
	failOn  string // Scan of this node fails
	failRe  string // Scan of this node fails from its second call on
	errNext string // iterators of this node fail after their first event
	fast    bool   // skip scribbling, for benchmarks
}

var errDisk = errors.New("disk on fire")

func newMemIndex(t testing.TB, known []string, evs []stream.Event) *memIndex {
	m := &memIndex{t: t, events: map[string][]stream.Event{}}
	seen := map[string]bool{}
	for _, n := range known {
		if !seen[n] {
			seen[n] = true
			m.nodes = append(m.nodes, n)
		}
	}
	for _, ev := range evs {
		if !seen[ev.Node] {
			seen[ev.Node] = true
			m.nodes = append(m.nodes, ev.Node)
		}
		m.events[ev.Node] = append(m.events[ev.Node], ev)
	}
	sort.Strings(m.nodes)
	for _, list := range m.events {
		slices.SortFunc(list, func(a, b stream.Event) int { return cmpTES(&a, &b) })
	}
	return m
}

// cmpTES orders one node's events by (ts, epoch, seq).
func cmpTES(a, b *stream.Event) int {
	switch {
	case a.TS != b.TS:
		return cmpInt(a.TS, b.TS)
	case a.Epoch != b.Epoch:
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	return cmpInt(int64(a.Seq), int64(b.Seq))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *memIndex) Nodes(ctx context.Context) ([]string, error) {
	return slices.Clone(m.nodes), nil
}

func (m *memIndex) HasNode(ctx context.Context, node string) (bool, error) {
	return slices.Contains(m.nodes, node), nil
}

func (m *memIndex) Scan(ctx context.Context, s Scan) (Iterator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scans = append(m.scans, s)
	if s.Node == m.failOn {
		return nil, errDisk
	}
	if s.Node == m.failRe {
		n := 0
		for _, prev := range m.scans {
			if prev.Node == s.Node {
				n++
			}
		}
		if n > 1 {
			return nil, errDisk
		}
	}
	if s.After != nil && s.After.Node != s.Node {
		m.t.Errorf("Scan of node %q with After in node %q", s.Node, s.After.Node)
	}
	m.open++
	return &memIter{idx: m, evs: m.events[s.Node], s: s, fail: s.Node == m.errNext}, nil
}

func (m *memIndex) openIterators() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open
}

type memIter struct {
	idx    *memIndex
	evs    []stream.Event // the node's events, in (ts, epoch, seq) order
	s      Scan
	i      int
	cur    stream.Event
	buf    []byte
	fail   bool
	err    error
	closed bool
	n      int // events returned
}

func (it *memIter) Next() bool {
	if it.fail && it.n == 1 {
		it.err = errDisk
		return false
	}
	s := &it.s
	for it.i < len(it.evs) {
		ev := &it.evs[it.i]
		it.i++
		if s.Stream != "" && ev.Stream != s.Stream {
			continue
		}
		if s.HasFrom && ev.TS < s.From {
			continue
		}
		if s.HasTo && ev.TS >= s.To {
			return false // sorted by ts: nothing further is in range
		}
		if s.After != nil && cmpTES(ev, &stream.Event{TS: s.After.TS, Epoch: s.After.Epoch, Seq: s.After.Seq}) <= 0 {
			continue
		}
		if !it.idx.fast {
			// Scribble over the previous event's bytes before reusing the buffer.
			for j := range it.buf {
				it.buf[j] = 'X'
			}
		}
		it.cur = *ev
		it.buf = append(it.buf[:0], ev.Data...)
		it.cur.Data = it.buf
		it.n++
		return true
	}
	return false
}

func (it *memIter) Event() *stream.Event { return &it.cur }
func (it *memIter) Err() error           { return it.err }

func (it *memIter) Close() error {
	it.idx.mu.Lock()
	defer it.idx.mu.Unlock()
	if it.closed {
		it.idx.t.Errorf("iterator closed twice")
	}
	it.closed = true
	it.idx.open--
	return nil
}
