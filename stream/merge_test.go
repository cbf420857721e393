package stream

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// sliceIter yields evs in order. It reuses one Event value, as a database
// iterator reusing its row buffer would, so a merge that advanced an input too
// early would see its held event change under it.
type sliceIter struct {
	evs   []Event
	i     int
	cur   Event
	err   error // returned once evs are used up
	calls int
}

func (s *sliceIter) Next() bool {
	s.calls++
	if s.i >= len(s.evs) {
		return false
	}
	s.cur = s.evs[s.i]
	s.i++
	return true
}

func (s *sliceIter) Event() *Event { return &s.cur }
func (s *sliceIter) Err() error {
	if s.i >= len(s.evs) {
		return s.err
	}
	return nil
}

func collect(t *testing.T, m *Merge) []Event {
	t.Helper()
	var out []Event
	for m.Next() {
		out = append(out, *m.Event())
	}
	return out
}

func ev(ts int64, node, epoch string, seq uint64) Event {
	return Event{TS: ts, Node: node, Epoch: epoch, Seq: seq}
}

func TestMergeOrder(t *testing.T) {
	tests := []struct {
		name   string
		inputs [][]Event
		want   []Event
	}{
		{name: "no inputs"},
		{name: "empty inputs", inputs: [][]Event{{}, {}}},
		{
			name:   "one input",
			inputs: [][]Event{{ev(1, "a", "e", 1), ev(2, "a", "e", 2)}},
			want:   []Event{ev(1, "a", "e", 1), ev(2, "a", "e", 2)},
		},
		{
			name: "interleaved by ts",
			inputs: [][]Event{
				{ev(1, "b", "e", 1), ev(4, "b", "e", 2), ev(5, "b", "e", 3)},
				{ev(2, "a", "e", 1), ev(3, "a", "e", 2), ev(6, "a", "e", 3)},
			},
			want: []Event{ev(1, "b", "e", 1), ev(2, "a", "e", 1), ev(3, "a", "e", 2), ev(4, "b", "e", 2), ev(5, "b", "e", 3), ev(6, "a", "e", 3)},
		},
		{
			name: "ts tie broken by node",
			inputs: [][]Event{
				{ev(7, "c", "e", 1)},
				{ev(7, "a", "e", 9)},
				{ev(7, "b", "e", 5)},
			},
			want: []Event{ev(7, "a", "e", 9), ev(7, "b", "e", 5), ev(7, "c", "e", 1)},
		},
		{
			name: "ts and node tie broken by epoch then seq",
			inputs: [][]Event{
				{ev(7, "a", "e1", 3), ev(7, "a", "e2", 1), ev(7, "a", "e2", 2)},
				{ev(7, "b", "e0", 1)},
				{ev(6, "b", "e9", 1)},
			},
			want: []Event{ev(6, "b", "e9", 1), ev(7, "a", "e1", 3), ev(7, "a", "e2", 1), ev(7, "a", "e2", 2), ev(7, "b", "e0", 1)},
		},
		{
			name: "equal events keep input order",
			inputs: [][]Event{
				{{TS: 1, Node: "a", Epoch: "e", Seq: 1, Stream: "first"}},
				{{TS: 1, Node: "a", Epoch: "e", Seq: 1, Stream: "second"}},
			},
			want: []Event{{TS: 1, Node: "a", Epoch: "e", Seq: 1, Stream: "first"}, {TS: 1, Node: "a", Epoch: "e", Seq: 1, Stream: "second"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var its []Iterator
			for _, in := range tt.inputs {
				its = append(its, &sliceIter{evs: in})
			}
			m := NewMerge(its...)
			got := collect(t, m)
			if m.Err() != nil {
				t.Fatal(m.Err())
			}
			if !slices.EqualFunc(got, tt.want, sameEvent) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
			if m.Next() {
				t.Fatal("Next after the end returned true")
			}
		})
	}
}

func TestMergeRandom(t *testing.T) {
	for round := range 200 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		k := rng.IntN(6)
		var inputs [][]Event
		var all []Event
		for n := range k {
			node := fmt.Sprintf("n%d", rng.IntN(3)) // equal node names on purpose
			var evs []Event
			for range rng.IntN(30) {
				evs = append(evs, ev(int64(rng.IntN(10)), node, fmt.Sprintf("e%d", rng.IntN(2)), uint64(rng.IntN(5))+uint64(n*100)))
			}
			slices.SortFunc(evs, func(a, b Event) int { return cmpEv(&a, &b) })
			inputs = append(inputs, evs)
			all = append(all, evs...)
		}
		var its []Iterator
		for _, in := range inputs {
			its = append(its, &sliceIter{evs: in})
		}
		got := collect(t, NewMerge(its...))
		if len(got) != len(all) {
			t.Fatalf("round %d: got %d events, want %d", round, len(got), len(all))
		}
		for i := 1; i < len(got); i++ {
			if Less(&got[i], &got[i-1]) {
				t.Fatalf("round %d: event %d %v comes before %v", round, i, got[i], got[i-1])
			}
		}
		want := slices.Clone(all)
		slices.SortStableFunc(want, func(a, b Event) int { return cmpEv(&a, &b) })
		slices.SortStableFunc(got, func(a, b Event) int { return cmpEv(&a, &b) })
		if !slices.EqualFunc(got, want, sameEvent) {
			t.Fatalf("round %d: merged events are not the inputs' events", round)
		}
	}
}

func sameEvent(a, b Event) bool {
	return a.TS == b.TS && a.Node == b.Node && a.Epoch == b.Epoch && a.Seq == b.Seq && a.Stream == b.Stream
}

func cmpEv(a, b *Event) int {
	switch {
	case Less(a, b):
		return -1
	case Less(b, a):
		return 1
	}
	return 0
}

func TestMergeStopsOnInputError(t *testing.T) {
	boom := errors.New("disk gone")
	good := &sliceIter{evs: []Event{ev(1, "a", "e", 1), ev(5, "a", "e", 2), ev(9, "a", "e", 3)}}
	bad := &sliceIter{evs: []Event{ev(2, "b", "e", 1)}, err: boom}
	m := NewMerge(good, bad)
	got := collect(t, m)
	if !errors.Is(m.Err(), boom) {
		t.Fatalf("Err = %v, want %v", m.Err(), boom)
	}
	// The failing input ends after ts 2: events after that point cannot be
	// ordered correctly any more, so the merge must stop there.
	want := []Event{ev(1, "a", "e", 1), ev(2, "b", "e", 1)}
	if !slices.EqualFunc(got, want, sameEvent) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestMergeFailsAtStart(t *testing.T) {
	boom := errors.New("no table")
	m := NewMerge(&sliceIter{evs: []Event{ev(1, "a", "e", 1)}}, &sliceIter{err: boom})
	if m.Next() {
		t.Fatal("Next returned true with a failed input")
	}
	if !errors.Is(m.Err(), boom) {
		t.Fatalf("Err = %v", m.Err())
	}
}

func TestMergeReadsLazily(t *testing.T) {
	a := &sliceIter{evs: []Event{ev(1, "a", "e", 1), ev(2, "a", "e", 2), ev(3, "a", "e", 3)}}
	b := &sliceIter{evs: []Event{ev(10, "b", "e", 1), ev(11, "b", "e", 2)}}
	m := NewMerge(a, b)
	if !m.Next() || m.Source() != 0 || m.Event().TS != 1 {
		t.Fatalf("first event: %v from %d", m.Event(), m.Source())
	}
	// One read per input to start; the returned event's input is advanced only
	// on the following Next, so a caller that stops early reads no more.
	if a.calls != 1 || b.calls != 1 {
		t.Fatalf("reads after first Next: a=%d b=%d, want 1 and 1", a.calls, b.calls)
	}
	if !m.Next() || m.Event().TS != 2 || a.calls != 2 || b.calls != 1 {
		t.Fatalf("second event %v, reads a=%d b=%d", m.Event(), a.calls, b.calls)
	}
}
