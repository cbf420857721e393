package aggregate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQuantilesEveryRank checks every rank of value sets that go through the
// sketch: negatives, zeros, positives, and the magnitudes the sketch cannot
// index, against the exact sorted values.
func TestQuantilesEveryRank(t *testing.T) {
	if minIndexable > 2.3e-308 || minIndexable < math.SmallestNonzeroFloat64 ||
		maxIndexable < 1.26e308 || maxIndexable > 1.27e308 {
		t.Fatalf("indexable magnitudes [%g, %g] are not what the docs say", minIndexable, maxIndexable)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	odd := []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		minIndexable, -minIndexable, math.Nextafter(maxIndexable, math.Inf(1)), -math.Nextafter(maxIndexable, math.Inf(1))}
	tests := []struct {
		name string
		gen  func() float64
	}{
		{"positive", func() float64 { return 15 + rng.Float64()*20 }},
		{"negative", func() float64 { return -1 - rng.ExpFloat64()*100 }},
		{"mixed with zeros", func() float64 {
			switch rng.IntN(4) {
			case 0:
				return 0
			case 1:
				return math.Copysign(0, -1)
			case 2:
				return -rng.Float64() * 1e6
			}
			return rng.NormFloat64() * 1e-3
		}},
		{"wide range", func() float64 { return math.Copysign(math.Pow(10, rng.Float64()*600-300), rng.Float64()-0.5) }},
		{"odd magnitudes", func() float64 {
			if rng.IntN(3) == 0 {
				return odd[rng.IntN(len(odd))]
			}
			return rng.NormFloat64()
		}},
		{"integers", func() float64 { return float64(rng.IntN(1000) - 500) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{1, 64, 65, 1000} {
				var a numAcc
				vals := make([]float64, n)
				for i := range vals {
					vals[i] = tt.gen()
					a.add(vals[i], true)
				}
				if n > exactValues && a.q.sk == nil {
					t.Fatalf("%d values without a sketch", n)
				}
				slices.Sort(vals)
				for r := range vals {
					got := a.q.at(int64(r))
					if !within(got, vals[r], 0.01) {
						t.Fatalf("n=%d rank %d: %g, want %g within 1%%", n, r, got, vals[r])
					}
				}
				for _, pct := range []int{50, 90, 95, 99} {
					k := int(math.Ceil(float64(pct) / 100 * float64(n)))
					got, ok := a.percentile(pct)
					if !ok || !within(got, vals[k-1], 0.01) || got < vals[0] || got > vals[n-1] {
						t.Fatalf("n=%d p%d: %g, want %g within 1%% and inside [%g, %g]", n, pct, got, vals[k-1], vals[0], vals[n-1])
					}
				}
			}
		})
	}
}

// within reports whether got is within rel of want, relatively.
func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestNumAccMerge(t *testing.T) {
	// Every split of the same values merges to the same counts, extremes and
	// percentiles, and the same sum up to rounding.
	rng := rand.New(rand.NewPCG(9, 10))
	vals := make([]float64, 500)
	for i := range vals {
		vals[i] = rng.NormFloat64() * 100
	}
	var whole numAcc
	for _, v := range vals {
		whole.add(v, true)
	}
	for _, parts := range []int{2, 3, 10, 500} {
		accs := make([]numAcc, parts)
		for i, v := range vals {
			accs[i%parts].add(v, true)
		}
		var got numAcc
		for _, i := range rng.Perm(parts) {
			got.merge(&accs[i])
		}
		ws, _ := whole.total()
		gs, _ := got.total()
		if got.n != whole.n || got.min != whole.min || got.max != whole.max || !within(gs, ws, 1e-12) {
			t.Fatalf("%d parts: n %d min %v max %v sum %v, want %d %v %v %v", parts, got.n, got.min, got.max, gs, whole.n, whole.min, whole.max, ws)
		}
		for _, pct := range []int{50, 90, 95, 99} {
			g, _ := got.percentile(pct)
			w, _ := whole.percentile(pct)
			if g != w {
				t.Fatalf("%d parts: p%d %v, unsplit %v", parts, pct, g, w)
			}
		}
	}
}

func TestCompensatedSum(t *testing.T) {
	// 1e16 + 1 + 1 + ... - 1e16: a plain float64 sum loses every 1.
	var a numAcc
	a.add(1e16, false)
	for range 1000 {
		a.add(1, false)
	}
	a.add(-1e16, false)
	if s, ok := a.total(); !ok || s != 1000 {
		t.Fatalf("sum %v, want 1000", s)
	}
}
