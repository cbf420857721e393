package counters

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
)

var kinds = []Kind{KindSum, KindMax, KindMin, KindLast}

// randValue returns a finite float64 that is often a boundary or a repeat:
// signed zeros, the largest and smallest magnitudes, small integers.
func randValue(r *rand.Rand) float64 {
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.MaxFloat64 * float64(1-2*r.IntN(2))
	case 3:
		return math.SmallestNonzeroFloat64 * float64(1-2*r.IntN(2))
	case 4, 5:
		return float64(r.IntN(5) - 2)
	}
	return (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20))
}

// randRegister returns a valid register of kind k; a register may be empty.
func randRegister(r *rand.Rand, k Kind) Register {
	switch {
	case k == KindSum:
		return Register{PN: randPN(r)}
	case r.IntN(6) == 0:
		return Register{Kind: k}
	case k == KindLast:
		return Register{Kind: k, Value: randValue(r), Set: true, Stamp: HLC{Wall: r.Int64N(3), Logical: 1 + uint32(r.IntN(2))}}
	}
	return Register{Kind: k, Value: randValue(r), Set: true}
}

// same compares two registers, values bit for bit, so -0 and +0 differ.
func same(a, b Register) bool {
	return a.Kind == b.Kind && a.PN == b.PN && a.Set == b.Set && a.Stamp == b.Stamp &&
		math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

func mustMerge(t *testing.T, a, b Register) Register {
	t.Helper()
	m, err := a.Merge(b)
	if err != nil {
		t.Fatalf("%+v ⊔ %+v: %v", a, b, err)
	}
	return m
}

func TestMaxMinMergeLaws(t *testing.T) {
	cfg := &quick.Config{MaxCount: iterations}
	// quick draws any fields, a value without Set included: the laws hold for
	// every pair.
	laws := map[string]any{
		"max commutative": func(a, b Max) bool { return a.Merge(b) == b.Merge(a) },
		"max associative": func(a, b, c Max) bool { return a.Merge(b).Merge(c) == a.Merge(b.Merge(c)) },
		"max idempotent":  func(a, b Max) bool { return a.Merge(a).Merge(a) == a.Merge(a) && a.Merge(b).Merge(b) == a.Merge(b) },
		"max upper bound": func(a, b Max) bool {
			m := a.Merge(b)
			return m.Set == (a.Set || b.Set) && (!a.Set || m.Value >= a.Value) && (!b.Set || m.Value >= b.Value) &&
				(!m.Set || a.Set && m.Value == a.Value || b.Set && m.Value == b.Value)
		},
		"min commutative": func(a, b Min) bool { return a.Merge(b) == b.Merge(a) },
		"min associative": func(a, b, c Min) bool { return a.Merge(b).Merge(c) == a.Merge(b.Merge(c)) },
		"min idempotent":  func(a, b Min) bool { return a.Merge(a).Merge(a) == a.Merge(a) && a.Merge(b).Merge(b) == a.Merge(b) },
		"min lower bound": func(a, b Min) bool {
			m := a.Merge(b)
			return m.Set == (a.Set || b.Set) && (!a.Set || m.Value <= a.Value) && (!b.Set || m.Value <= b.Value) &&
				(!m.Set || a.Set && m.Value == a.Value || b.Set && m.Value == b.Value)
		},
	}
	for name, law := range laws {
		t.Run(name, func(t *testing.T) {
			if err := quick.Check(law, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	neg0 := math.Copysign(0, -1)
	for _, pair := range [][2]float64{{neg0, 0}, {0, neg0}} {
		mx := Max{Value: pair[0], Set: true}.Merge(Max{Value: pair[1], Set: true})
		mn := Min{Value: pair[0], Set: true}.Merge(Min{Value: pair[1], Set: true})
		if math.Signbit(mx.Value) || !math.Signbit(mn.Value) {
			t.Fatalf("signed zeros %v: max %v, min %v; want +0 and -0 in either order", pair, mx.Value, mn.Value)
		}
	}
}

func TestRegisterMergeLaws(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(17, uint64(k)))
			for i := range iterations {
				a, b, c := randRegister(r, k), randRegister(r, k), randRegister(r, k)
				ab := mustMerge(t, a, b)
				if !same(ab, mustMerge(t, b, a)) {
					t.Fatalf("iteration %d: not commutative: %+v, %+v", i, a, b)
				}
				if !same(mustMerge(t, ab, c), mustMerge(t, a, mustMerge(t, b, c))) {
					t.Fatalf("iteration %d: not associative: %+v, %+v, %+v", i, a, b, c)
				}
				if !same(mustMerge(t, a, a), a) || !same(mustMerge(t, ab, b), ab) {
					t.Fatalf("iteration %d: not idempotent: %+v, %+v", i, a, b)
				}
				if err := ab.Validate(); err != nil {
					t.Fatalf("iteration %d: %+v ⊔ %+v = %+v: %v", i, a, b, ab, err)
				}
				if msg := bound(k, a, b, ab); msg != "" {
					t.Fatalf("iteration %d: %+v ⊔ %+v = %+v: %s", i, a, b, ab, msg)
				}
			}
		})
	}
}

// bound says how m fails to be the least upper bound of a and b in the order of
// kind k, or "" when it is.
func bound(k Kind, a, b, m Register) string {
	switch k {
	case KindSum:
		if m.PN != (PN{P: max(a.PN.P, b.PN.P), N: max(a.PN.N, b.PN.N)}) {
			return "not the maximum per field"
		}
	case KindMax, KindMin:
		if m.Set != (a.Set || b.Set) {
			return "set differs from the inputs'"
		}
		for _, x := range []Register{a, b} {
			if x.Set && (k == KindMax && m.Value < x.Value || k == KindMin && m.Value > x.Value) {
				return "passes an input"
			}
		}
		if m.Set && !(a.Set && m.Value == a.Value || b.Set && m.Value == b.Value) {
			return "a value of neither input"
		}
	case KindLast:
		if !same(m, a) && !same(m, b) {
			return "neither input"
		}
		if m.lww("").Compare(a.lww("")) < 0 || m.lww("").Compare(b.lww("")) < 0 {
			return "older than an input"
		}
	}
	return ""
}

func TestRegisterWrites(t *testing.T) {
	sum, err := Register{}.Add(-4)
	if err != nil || !same(sum, Register{PN: PN{N: 4}}) {
		t.Fatalf("Add(-4) = %+v, %v", sum, err)
	}
	if _, err := (Register{PN: PN{P: math.MaxInt64}}).Add(1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Add past MaxInt64: %v, want ErrOverflow", err)
	}
	if got, err := sum.Put(1, 0); !errors.Is(err, ErrKindConflict) || !same(got, sum) {
		t.Fatalf("Put on a sum = %+v, %v; want ErrKindConflict", got, err)
	}
	steps := []struct {
		v    float64
		now  int64
		want map[Kind]Register
	}{
		{5, 1000, map[Kind]Register{
			KindMax:  {Kind: KindMax, Value: 5, Set: true},
			KindMin:  {Kind: KindMin, Value: 5, Set: true},
			KindLast: {Kind: KindLast, Value: 5, Set: true, Stamp: HLC{Wall: 1000}},
		}},
		{-2, 900, map[Kind]Register{ // the clock went back
			KindMax:  {Kind: KindMax, Value: 5, Set: true},
			KindMin:  {Kind: KindMin, Value: -2, Set: true},
			KindLast: {Kind: KindLast, Value: -2, Set: true, Stamp: HLC{Wall: 1000, Logical: 1}},
		}},
		{7, 1005, map[Kind]Register{
			KindMax:  {Kind: KindMax, Value: 7, Set: true},
			KindMin:  {Kind: KindMin, Value: -2, Set: true},
			KindLast: {Kind: KindLast, Value: 7, Set: true, Stamp: HLC{Wall: 1005}},
		}},
	}
	for _, k := range []Kind{KindMax, KindMin, KindLast} {
		reg := Register{Kind: k}
		for _, s := range steps {
			next, err := reg.Put(s.v, s.now)
			if err != nil || !same(next, s.want[k]) {
				t.Fatalf("%v: Put(%v, %d) on %+v = %+v, %v; want %+v", k, s.v, s.now, reg, next, err, s.want[k])
			}
			reg = next
		}
		for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			if got, err := reg.Put(v, 2000); !errors.Is(err, ErrNotFinite) || !same(got, reg) {
				t.Fatalf("%v: Put(%v) = %+v, %v; want ErrNotFinite and the register unchanged", k, v, got, err)
			}
		}
		if got, err := reg.Add(1); !errors.Is(err, ErrKindConflict) || !same(got, reg) {
			t.Fatalf("%v: Add = %+v, %v; want ErrKindConflict", k, got, err)
		}
		for _, other := range kinds {
			if other == k {
				continue
			}
			if got, err := reg.Merge(Register{Kind: other}); !errors.Is(err, ErrKindConflict) || !same(got, reg) {
				t.Fatalf("%v ⊔ %v = %+v, %v; want ErrKindConflict", k, other, got, err)
			}
		}
	}
}

func TestRegisterValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Register
		want string // "" when valid
	}{
		{"empty sum", Register{}, ""},
		{"sum", Register{PN: PN{P: math.MaxInt64, N: 3}}, ""},
		{"negative sum", Register{PN: PN{P: -1}}, "must not be negative"},
		{"sum with a value", Register{Value: 1}, "no value or stamp"},
		{"sum set", Register{Set: true}, "no value or stamp"},
		{"sum with a stamp", Register{Stamp: HLC{Wall: 1}}, "no value or stamp"},
		{"unknown kind", Register{Kind: 4}, "kind(4)"},
		{"empty max", Register{Kind: KindMax}, ""},
		{"max", Register{Kind: KindMax, Value: -math.MaxFloat64, Set: true}, ""},
		{"max with p", Register{Kind: KindMax, PN: PN{P: 1}, Set: true}, "no p or n"},
		{"max NaN", Register{Kind: KindMax, Value: math.NaN(), Set: true}, "not a finite number"},
		{"min +Inf", Register{Kind: KindMin, Value: math.Inf(1), Set: true}, "not a finite number"},
		{"unset min with a value", Register{Kind: KindMin, Value: 2}, "never set"},
		{"min with a stamp", Register{Kind: KindMin, Set: true, Stamp: HLC{Logical: 1}}, "no stamp"},
		{"empty last", Register{Kind: KindLast}, ""},
		{"last", Register{Kind: KindLast, Set: true, Stamp: HLC{Logical: 1}}, ""},
		{"set last without a stamp", Register{Kind: KindLast, Value: 1, Set: true}, "exactly when set"},
		{"unset last with a stamp", Register{Kind: KindLast, Stamp: HLC{Wall: 5}}, "exactly when set"},
		{"last before 1970", Register{Kind: KindLast, Set: true, Stamp: HLC{Wall: -1, Logical: 5}}, "negative wall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
	if err := (Register{Kind: KindMax, Value: math.NaN(), Set: true}).Validate(); !errors.Is(err, ErrNotFinite) {
		t.Fatalf("NaN: %v, want ErrNotFinite too", err)
	}
}
