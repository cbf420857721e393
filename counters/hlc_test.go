package counters

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

// testClock is a wall clock that stays, steps on, and jumps back and forward
// (NTP steps, an RTC reset to the build date), in Unix milliseconds.
type testClock struct {
	r   *rand.Rand
	now int64
}

func (c *testClock) tick() int64 {
	switch c.r.IntN(10) {
	case 0, 1, 2, 3:
		// The same millisecond again.
	case 4:
		c.now -= 1 + c.r.Int64N(3_600_000) // stepped back up to an hour
	case 5:
		c.now -= 1 + c.r.Int64N(3) // a small step back
	case 6:
		c.now += 1 + c.r.Int64N(86_400_000) // jumped forward up to a day
	default:
		c.now += c.r.Int64N(5)
	}
	return c.now
}

// pred returns the stamp just before h.
func pred(h HLC) HLC {
	if h.Logical > 0 {
		return HLC{Wall: h.Wall, Logical: h.Logical - 1}
	}
	return HLC{Wall: h.Wall - 1, Logical: math.MaxUint32}
}

func TestHLCNextNeverGoesBack(t *testing.T) {
	for seed := range uint64(50) {
		c := &testClock{r: rand.New(rand.NewPCG(seed, 1)), now: 1_700_000_000_000}
		var h HLC
		for i := range 5000 {
			now := c.tick()
			next := h.Next(now)
			if !h.Less(next) {
				t.Fatalf("seed %d step %d: %v.Next(%d) = %v, not after it", seed, i, h, now, next)
			}
			if next.Less(HLC{Wall: now}) {
				t.Fatalf("seed %d step %d: %v.Next(%d) = %v, before the wall clock", seed, i, h, now, next)
			}
			// It is the least such stamp: a clock that has fallen behind catches
			// up at once, and one ahead counts on from where it was.
			if p := pred(next); h.Less(p) && !p.Less(HLC{Wall: now}) {
				t.Fatalf("seed %d step %d: %v.Next(%d) = %v, but %v would do", seed, i, h, now, next, p)
			}
			h = next
		}
	}
}

func TestHLCSameMillisecond(t *testing.T) {
	h := HLC{}.Next(1000)
	if h != (HLC{Wall: 1000}) {
		t.Fatalf("first stamp %v, want 1000.0", h)
	}
	for i := 1; i <= 100_000; i++ {
		next := h.Next(1000)
		if next != (HLC{Wall: 1000, Logical: uint32(i)}) {
			t.Fatalf("call %d in the same millisecond: %v", i, next)
		}
		h = next
	}
	// The clock stepped back: the stamps go on from where they were.
	if got := h.Next(400); got != (HLC{Wall: 1000, Logical: 100_001}) {
		t.Fatalf("after a step back: %v", got)
	}
	if got := h.Next(1001); got != (HLC{Wall: 1001}) {
		t.Fatalf("a millisecond later: %v", got)
	}
}

func TestHLCLogicalOverflow(t *testing.T) {
	const maxL = math.MaxUint32
	tests := []struct {
		name string
		h    HLC
		now  int64
		want HLC
	}{
		{"borrows the next millisecond", HLC{5, maxL}, 5, HLC{6, 0}},
		{"borrows while the clock is behind", HLC{5, maxL}, -100, HLC{6, 0}},
		{"the clock reached the borrowed millisecond", HLC{5, maxL}, 6, HLC{6, 0}},
		{"the clock passed it", HLC{5, maxL}, 7, HLC{7, 0}},
		{"just below the limit", HLC{5, maxL - 1}, 5, HLC{5, maxL}},
		{"the zero stamp at time 0", HLC{}, 0, HLC{0, 1}},
		{"the zero stamp before 1970", HLC{}, -5, HLC{0, 1}},
		{"the last millisecond", HLC{math.MaxInt64, 3}, 0, HLC{math.MaxInt64, 4}},
		{"the top stays", HLC{math.MaxInt64, maxL}, math.MaxInt64, HLC{math.MaxInt64, maxL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Next(tt.now); got != tt.want {
				t.Fatalf("%v.Next(%d) = %v, want %v", tt.h, tt.now, got, tt.want)
			}
		})
	}
	if got := (HLC{Wall: 9, Logical: maxL}).Observe(HLC{Wall: 9, Logical: 3}, 2); got != (HLC{Wall: 10}) {
		t.Fatalf("Observe with a full local Logical: %v, want 10.0", got)
	}
	if got := (HLC{Wall: 9, Logical: 3}).Observe(HLC{Wall: 9, Logical: maxL}, 2); got != (HLC{Wall: 10}) {
		t.Fatalf("Observe with a full remote Logical: %v, want 10.0", got)
	}
}

func TestHLCObserve(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	stamp := func() HLC {
		return HLC{Wall: 1000 + r.Int64N(6), Logical: uint32(r.IntN(3))}
	}
	for range iterations {
		h, remote, now := stamp(), stamp(), 1000+r.Int64N(8)
		got := h.Observe(remote, now)
		if !h.Less(got) || !remote.Less(got) || got.Less(HLC{Wall: now}) {
			t.Fatalf("%v.Observe(%v, %d) = %v: not after both and the clock", h, remote, now, got)
		}
		if p := pred(got); h.Less(p) && remote.Less(p) && !p.Less(HLC{Wall: now}) {
			t.Fatalf("%v.Observe(%v, %d) = %v, but %v would do", h, remote, now, got, p)
		}
	}
	tests := []struct {
		h, remote HLC
		now       int64
		want      HLC
	}{
		{HLC{10, 2}, HLC{10, 5}, 3, HLC{10, 6}},
		{HLC{10, 7}, HLC{10, 5}, 3, HLC{10, 8}},
		{HLC{12, 0}, HLC{10, 5}, 3, HLC{12, 1}},
		{HLC{10, 2}, HLC{20, 5}, 15, HLC{20, 6}},
		{HLC{10, 2}, HLC{20, 5}, 25, HLC{25, 0}},
	}
	for _, tt := range tests {
		if got := tt.h.Observe(tt.remote, tt.now); got != tt.want {
			t.Errorf("%v.Observe(%v, %d) = %v, want %v", tt.h, tt.remote, tt.now, got, tt.want)
		}
	}
}

func TestHLCOrder(t *testing.T) {
	cfg := &quick.Config{MaxCount: iterations}
	laws := map[string]any{
		"antisymmetric": func(a, b HLC) bool { return a.Compare(b) == -b.Compare(a) },
		"equal is zero": func(a, b HLC) bool { return (a.Compare(b) == 0) == (a == b) },
		"less": func(a, b HLC) bool {
			return a.Less(b) == (a.Wall < b.Wall || a.Wall == b.Wall && a.Logical < b.Logical)
		},
		"transitive": func(a, b, c HLC) bool {
			return !(a.Less(b) && b.Less(c)) || a.Less(c)
		},
		"zero is first": func(a HLC) bool { return a.Wall < 0 || !a.Less(HLC{}) },
	}
	for name, law := range laws {
		t.Run(name, func(t *testing.T) {
			if err := quick.Check(law, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !(HLC{}).IsZero() || (HLC{Logical: 1}).IsZero() {
		t.Fatal("IsZero")
	}
}

// sameLWW compares two writes, values bit for bit, so -0 and +0 differ.
func sameLWW(a, b LWW) bool {
	return a.Stamp == b.Stamp && a.Node == b.Node && math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

// randLWW returns a write from a small space, so that equal stamps, equal
// nodes and equal values, -0 and +0 among them, are common.
func randLWW(r *rand.Rand) LWW {
	values := []float64{0, math.Copysign(0, -1), 1, -1, 2.5, math.MaxFloat64}
	w := LWW{Value: values[r.IntN(len(values))], Node: []string{"a", "b", "c"}[r.IntN(3)]}
	if r.IntN(8) > 0 {
		w.Stamp = HLC{Wall: r.Int64N(3), Logical: uint32(r.IntN(2))}
	}
	return w
}

func TestLWWMergeLaws(t *testing.T) {
	cfg := &quick.Config{MaxCount: iterations}
	laws := map[string]any{
		"commutative": func(a, b LWW) bool { return sameLWW(a.Merge(b), b.Merge(a)) },
		"associative": func(a, b, c LWW) bool { return sameLWW(a.Merge(b).Merge(c), a.Merge(b.Merge(c))) },
		"idempotent":  func(a, b LWW) bool { return sameLWW(a.Merge(a), a) && sameLWW(a.Merge(b).Merge(b), a.Merge(b)) },
	}
	for name, law := range laws {
		t.Run(name, func(t *testing.T) {
			if err := quick.Check(law, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	r := rand.New(rand.NewPCG(15, 16))
	for range iterations {
		a, b, c := randLWW(r), randLWW(r), randLWW(r)
		ab := a.Merge(b)
		if !sameLWW(ab, b.Merge(a)) || !sameLWW(ab.Merge(c), a.Merge(b.Merge(c))) || !sameLWW(a.Merge(a), a) {
			t.Fatalf("merge laws broken for %+v %+v %+v", a, b, c)
		}
		// The merge is one of the two and not older than either.
		if !sameLWW(ab, a) && !sameLWW(ab, b) || ab.Compare(a) < 0 || ab.Compare(b) < 0 {
			t.Fatalf("%+v ⊔ %+v = %+v", a, b, ab)
		}
		if (a.Compare(b) == 0) != sameLWW(a, b) {
			t.Fatalf("Compare(%+v, %+v) = 0 for different writes", a, b)
		}
	}
}

func TestLWWPut(t *testing.T) {
	w := LWW{Node: "edge-1"}
	if w.Set() {
		t.Fatal("the zero LWW is set")
	}
	w, err := w.Put(3, 1000)
	if err != nil || !sameLWW(w, LWW{Value: 3, Stamp: HLC{Wall: 1000}, Node: "edge-1"}) {
		t.Fatalf("Put(3, 1000) = %+v, %v", w, err)
	}
	// The wall clock went back: the later write still wins.
	later, err := w.Put(4, 200)
	if err != nil || later.Stamp != (HLC{Wall: 1000, Logical: 1}) || !sameLWW(w.Merge(later), later) || !sameLWW(later.Merge(w), later) {
		t.Fatalf("Put(4, 200) after %+v = %+v, %v", w, later, err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := later.Put(v, 2000); !errors.Is(err, ErrNotFinite) || !sameLWW(got, later) {
			t.Fatalf("Put(%v) = %+v, %v; want ErrNotFinite and the register unchanged", v, got, err)
		}
	}
}
