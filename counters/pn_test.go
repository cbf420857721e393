package counters

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"testing/quick"
)

const iterations = 20000

// field returns a non-negative int64 that is often at or near a boundary, where
// overflow bugs live.
func field(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxInt64 - r.Int64N(4)
	case 2:
		return math.MaxInt64/2 + r.Int64N(4) - 2
	case 3:
		return r.Int64N(10)
	default:
		return r.Int64()
	}
}

func randPN(r *rand.Rand) PN { return PN{P: field(r), N: field(r)} }

// randState returns a state over a few of six nodes, so that states overlap.
func randState(r *rand.Rand) State {
	s := State{}
	for range r.IntN(5) {
		s[fmt.Sprintf("n%d", r.IntN(6))] = randPN(r)
	}
	return s
}

func TestPNMergeLaws(t *testing.T) {
	// testing/quick draws any int64s, negative ones included: the laws hold for
	// every pair, valid or not.
	cfg := &quick.Config{MaxCount: iterations}
	laws := map[string]any{
		"commutative": func(a, b PN) bool { return a.Merge(b) == b.Merge(a) },
		"associative": func(a, b, c PN) bool { return a.Merge(b).Merge(c) == a.Merge(b.Merge(c)) },
		"idempotent":  func(a, b PN) bool { return a.Merge(a) == a && a.Merge(b).Merge(b) == a.Merge(b) },
		"least upper bound": func(a, b PN) bool {
			m := a.Merge(b)
			return m.P >= a.P && m.P >= b.P && m.N >= a.N && m.N >= b.N &&
				(m.P == a.P || m.P == b.P) && (m.N == a.N || m.N == b.N)
		},
	}
	for name, law := range laws {
		t.Run(name, func(t *testing.T) {
			if err := quick.Check(law, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The same laws on values at the boundaries, which quick rarely draws.
	r := rand.New(rand.NewPCG(1, 2))
	for range iterations {
		a, b, c := randPN(r), randPN(r), randPN(r)
		if a.Merge(b) != b.Merge(a) || a.Merge(b).Merge(c) != a.Merge(b.Merge(c)) || a.Merge(a) != a {
			t.Fatalf("merge laws broken for %+v %+v %+v", a, b, c)
		}
	}
}

func TestStateMergeLaws(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range iterations {
		a, b, c := randState(r), randState(r), randState(r)
		a0, b0 := maps.Clone(a), maps.Clone(b)
		ab := a.Merge(b)
		if !reflect.DeepEqual(a, a0) || !reflect.DeepEqual(b, b0) {
			t.Fatalf("iteration %d: Merge changed its inputs", i)
		}
		if !reflect.DeepEqual(ab, b.Merge(a)) {
			t.Fatalf("iteration %d: not commutative: %v ⊔ %v", i, a, b)
		}
		if !reflect.DeepEqual(ab.Merge(c), a.Merge(b.Merge(c))) {
			t.Fatalf("iteration %d: not associative: %v, %v, %v", i, a, b, c)
		}
		if !reflect.DeepEqual(a.Merge(a), a) || !reflect.DeepEqual(ab.Merge(b), ab) {
			t.Fatalf("iteration %d: not idempotent: %v, %v", i, a, b)
		}
		// Node by node, the merge is the PN merge; no node appears from nowhere.
		union := maps.Clone(a)
		maps.Copy(union, b)
		if got, want := ab.Nodes(), slices.Sorted(maps.Keys(union)); !slices.Equal(got, want) {
			t.Fatalf("iteration %d: nodes %v, want %v", i, got, want)
		}
		for n, got := range ab {
			if got != a[n].Merge(b[n]) {
				t.Fatalf("iteration %d: node %s: %+v, want %+v", i, n, got, a[n].Merge(b[n]))
			}
		}
	}
}

// TestMergerCountsEveryIncrementOnce plays nodes that add random deltas and send
// their whole state after every add, through a network that repeats, reorders
// and delays those states arbitrarily. Whatever arrives, the merged value is the
// sum of the increments of the latest state that arrived from each node, and
// once every node's last state has arrived, exactly the sum of all increments.
func TestMergerCountsEveryIncrementOnce(t *testing.T) {
	type sent struct {
		node  string
		k     int // this is the node's state after its k-th add
		state PN
	}
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 2000 {
		nodes := 1 + r.IntN(5)
		var msgs []sent
		sums := map[string][]int64{} // node → running sum after each add
		var total int64
		for i := range nodes {
			node := fmt.Sprintf("edge-%d", i)
			var c PN
			sums[node] = []int64{0}
			adds := r.IntN(30)
			for k := 1; k <= adds; k++ {
				delta := r.Int64N(2001) - 1000
				next, err := c.Add(delta)
				if err != nil {
					t.Fatalf("add %d: %v", delta, err)
				}
				c = next
				sums[node] = append(sums[node], sums[node][k-1]+delta)
				total += delta
				msgs = append(msgs, sent{node, k, c})
			}
		}
		// Every state goes out once, then repeats and stale copies at random, in
		// any order.
		for range r.IntN(3 * (len(msgs) + 1)) {
			if len(msgs) > 0 {
				msgs = append(msgs, msgs[r.IntN(len(msgs))])
			}
		}
		r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

		merged := State{}
		latest := map[string]int{}
		for _, m := range msgs {
			merged = merged.Merge(State{m.node: m.state})
			latest[m.node] = max(latest[m.node], m.k)
			var want int64
			for n, k := range latest {
				want += sums[n][k]
			}
			if got, err := merged.Value(); err != nil || got != want {
				t.Fatalf("round %d: after %s's state %d: value %d, %v; want %d", round, m.node, m.k, got, err, want)
			}
		}
		if got, err := merged.Value(); err != nil || got != total {
			t.Fatalf("round %d: final value %d, %v; want the sum of increments %d", round, got, err, total)
		}
	}
}

func TestAddOverflow(t *testing.T) {
	tests := []struct {
		name    string
		c       PN
		delta   int64
		want    PN
		wantErr bool
	}{
		{"zero delta", PN{P: 3, N: 4}, 0, PN{P: 3, N: 4}, false},
		{"p to the limit", PN{P: math.MaxInt64 - 5}, 5, PN{P: math.MaxInt64}, false},
		{"p past the limit", PN{P: math.MaxInt64 - 5, N: 1}, 6, PN{}, true},
		{"p at the limit", PN{P: math.MaxInt64}, 1, PN{}, true},
		{"p max plus max", PN{P: math.MaxInt64}, math.MaxInt64, PN{}, true},
		{"n to the limit", PN{N: 1}, -(math.MaxInt64 - 1), PN{N: math.MaxInt64}, false},
		{"n past the limit", PN{P: 2, N: 2}, -(math.MaxInt64 - 1), PN{}, true},
		{"n at the limit", PN{N: math.MaxInt64}, -1, PN{}, true},
		{"min int64 from zero", PN{}, math.MinInt64, PN{}, true},
		{"min int64 near the limits", PN{P: math.MaxInt64, N: math.MaxInt64 - 1}, math.MinInt64, PN{}, true},
		{"max magnitude from zero", PN{}, -math.MaxInt64, PN{N: math.MaxInt64}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Add(tt.delta)
			if tt.wantErr {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("Add(%d) error %v, want ErrOverflow", tt.delta, err)
				}
				if got != tt.c {
					t.Fatalf("Add(%d) refused but returned %+v, want the state unchanged %+v", tt.delta, got, tt.c)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Add(%d) = %+v, %v; want %+v", tt.delta, got, err, tt.want)
			}
		})
	}
}

// TestAddMatchesExactArithmetic checks Add against big integers: it either adds
// exactly or refuses, and refuses exactly when P or N would pass MaxInt64.
func TestAddMatchesExactArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	limit := big.NewInt(math.MaxInt64)
	for range iterations {
		c := randPN(r)
		var delta int64
		switch r.IntN(4) {
		case 0:
			delta = math.MinInt64 + r.Int64N(3)
		case 1:
			delta = math.MaxInt64 - r.Int64N(3)
		default:
			delta = int64(r.Uint64())
		}
		wantP, wantN := big.NewInt(c.P), big.NewInt(c.N)
		if delta > 0 {
			wantP.Add(wantP, big.NewInt(delta))
		} else {
			wantN.Sub(wantN, big.NewInt(delta))
		}
		overflow := wantP.Cmp(limit) > 0 || wantN.Cmp(limit) > 0
		got, err := c.Add(delta)
		switch {
		case overflow && (!errors.Is(err, ErrOverflow) || got != c):
			t.Fatalf("%+v.Add(%d) = %+v, %v; want ErrOverflow and the state unchanged", c, delta, got, err)
		case !overflow && (err != nil || got.P != wantP.Int64() || got.N != wantN.Int64()):
			t.Fatalf("%+v.Add(%d) = %+v, %v; want {%v %v}", c, delta, got, err, wantP, wantN)
		}
	}
}

func TestStateValueOverflow(t *testing.T) {
	const max = math.MaxInt64
	tests := []struct {
		name    string
		s       State
		want    int64
		wantErr bool
	}{
		{"empty", State{}, 0, false},
		{"one node at the top", State{"a": {P: max}}, max, false},
		{"one node at the bottom", State{"a": {N: max}}, -max, false},
		{"two nodes past the top", State{"a": {P: max}, "b": {P: 1}}, 0, true},
		{"min int64 fits", State{"a": {N: max}, "b": {N: 1}}, math.MinInt64, false},
		{"past min int64", State{"a": {N: max}, "b": {N: 2}}, 0, true},
		// A partial sum in name order (a, b) passes the top; the total does not.
		{"partial sum over, total fits", State{"a": {P: max}, "b": {P: 1}, "c": {N: 1}}, max, false},
		{"partial sum under, total fits", State{"a": {N: max}, "b": {N: max}, "c": {P: max}}, -max, false},
		{"huge both ways cancel", State{"a": {P: max, N: 3}, "b": {P: max}, "c": {N: max}, "d": {N: max}}, -3, false},
		{"three at the top", State{"a": {P: max}, "b": {P: max}, "c": {P: max}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Value()
			if tt.wantErr {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("Value() = %d, %v; want ErrOverflow", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Value() = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestStateValueMatchesExactArithmetic checks Value against big integers on
// states with huge fields: the exact total, or ErrOverflow exactly when it does
// not fit.
func TestStateValueMatchesExactArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	lo, hi := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	for range iterations {
		s := randState(r)
		want := new(big.Int)
		for _, c := range s {
			want.Add(want, big.NewInt(c.P))
			want.Sub(want, big.NewInt(c.N))
		}
		got, err := s.Value()
		if want.Cmp(lo) < 0 || want.Cmp(hi) > 0 {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("%v: Value() = %d, %v; the total %v does not fit, want ErrOverflow", s, got, err, want)
			}
			continue
		}
		if err != nil || got != want.Int64() {
			t.Fatalf("%v: Value() = %d, %v; want %v", s, got, err, want)
		}
	}
}

func TestPNValidAndNodes(t *testing.T) {
	tests := []struct {
		c    PN
		want bool
	}{
		{PN{}, true},
		{PN{P: math.MaxInt64, N: math.MaxInt64}, true},
		{PN{P: -1}, false},
		{PN{N: math.MinInt64}, false},
	}
	for _, tt := range tests {
		if got := tt.c.Valid(); got != tt.want {
			t.Errorf("%+v.Valid() = %v, want %v", tt.c, got, tt.want)
		}
	}
	s := State{"b": {}, "a-1": {}, "A": {}, "a": {}}
	if got, want := s.Nodes(), []string{"A", "a", "a-1", "b"}; !slices.Equal(got, want) {
		t.Errorf("Nodes() = %v, want %v", got, want)
	}
}
