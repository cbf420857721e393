package stream

import "container/heap"

// Iterator is one ordered input of a Merge: a sequence of events in merge order
// (for one node's events, (ts, epoch, seq) order is merge order). Next advances
// to the next event and reports whether there is one; Event returns it, valid
// only until the following call to Next; Err reports why Next returned false,
// nil at the normal end.
type Iterator interface {
	Next() bool
	Event() *Event
	Err() error
}

// Merge is a k-way merge of ordered iterators into one sequence in merge order
// (ts, node, epoch, seq). Events that compare equal come in the order of their
// iterators. It reads each input lazily, holding one event per input, so its
// cost is O(log k) per event. A Merge is not safe for concurrent use.
type Merge struct {
	h       mergeHeap
	its     []Iterator
	started bool
	done    bool
	err     error
}

// NewMerge returns a Merge over its. Each iterator must already be in merge
// order; the Merge does not reorder within an input.
func NewMerge(its ...Iterator) *Merge {
	return &Merge{its: its, h: make(mergeHeap, 0, len(its))}
}

// Next advances to the next event in merge order and reports whether there is
// one. It returns false at the end of every input, or as soon as an input fails;
// Err then says which.
func (m *Merge) Next() bool {
	if m.done {
		return false
	}
	if !m.started {
		m.started = true
		for i, it := range m.its {
			if it.Next() {
				m.h = append(m.h, mergeItem{ev: it.Event(), src: i})
			} else if err := it.Err(); err != nil {
				return m.fail(err)
			}
		}
		heap.Init(&m.h)
	} else if len(m.h) > 0 {
		// Advance the input of the event returned last only now, so that the
		// event stayed valid until this call.
		top := &m.h[0]
		it := m.its[top.src]
		if it.Next() {
			top.ev = it.Event()
			heap.Fix(&m.h, 0)
		} else {
			if err := it.Err(); err != nil {
				return m.fail(err)
			}
			heap.Pop(&m.h)
		}
	}
	if len(m.h) == 0 {
		m.done = true
		return false
	}
	return true
}

func (m *Merge) fail(err error) bool {
	m.err = err
	m.done = true
	m.h = m.h[:0]
	return false
}

// Event returns the current event, valid until the next call to Next. It must
// be called only after Next returned true.
func (m *Merge) Event() *Event { return m.h[0].ev }

// Source returns the index, in the arguments of NewMerge, of the iterator the
// current event came from. It must be called only after Next returned true.
func (m *Merge) Source() int { return m.h[0].src }

// Err returns the error of the input that stopped the merge, or nil.
func (m *Merge) Err() error { return m.err }

type mergeItem struct {
	ev  *Event
	src int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }

func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].ev, h[j].ev
	if Less(a, b) {
		return true
	}
	if Less(b, a) {
		return false
	}
	return h[i].src < h[j].src
}

func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *mergeHeap) Push(x any) { *h = append(*h, x.(mergeItem)) }

func (h *mergeHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = mergeItem{}
	*h = old[:n-1]
	return it
}
