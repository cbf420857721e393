package pattern

import (
	"bytes"
	"container/heap"
	"slices"

	"github.com/tributary-edge/tributary/stream"
)

// topK keeps the k first events in merge order among those offered, in any
// order of offering, so that a read in no particular order can still give
// the first page. It keeps copies: the offered events' memory may be reused.
type topK struct {
	k   int
	evs maxHeap
}

func newTopK(k int) *topK { return &topK{k: k} }

// offer considers ev.
func (t *topK) offer(ev *stream.Event) {
	if len(t.evs) < t.k {
		heap.Push(&t.evs, clone(ev))
		return
	}
	if t.k == 0 || !stream.Less(ev, &t.evs[0]) {
		return
	}
	t.evs[0] = clone(ev)
	heap.Fix(&t.evs, 0)
}

// admits reports whether an event at this position would be kept by offer,
// so that a reader can skip decoding events that would not be.
func (t *topK) admits(ts int64, node, epoch string, seq uint64) bool {
	if len(t.evs) < t.k {
		return true
	}
	if t.k == 0 {
		return false
	}
	top := &t.evs[0]
	ev := stream.Event{TS: ts, Node: node, Epoch: epoch, Seq: seq}
	return stream.Less(&ev, top)
}

// merge adds o's events to t.
func (t *topK) merge(o *topK) {
	for i := range o.evs {
		t.offer(&o.evs[i])
	}
}

// sorted returns the kept events in merge order.
func (t *topK) sorted() []stream.Event {
	out := slices.Clone([]stream.Event(t.evs))
	slices.SortFunc(out, func(a, b stream.Event) int {
		switch {
		case stream.Less(&a, &b):
			return -1
		case stream.Less(&b, &a):
			return 1
		}
		return 0
	})
	return out
}

func clone(ev *stream.Event) stream.Event {
	c := *ev
	c.Data = bytes.Clone(ev.Data)
	return c
}

// maxHeap has the last event in merge order on top.
type maxHeap []stream.Event

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return stream.Less(&h[j], &h[i]) }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(stream.Event)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
