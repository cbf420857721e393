package aggregate

import (
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// numAcc accumulates one numeric field in one cell: count, min and max
// exactly, the sum with Neumaier's compensation (so that the order in which
// events and states arrive moves it by rounding only), and, when a percentile
// is asked for, a sketch.
type numAcc struct {
	n        int64
	sum, c   float64 // the sum is sum + c
	min, max float64
	q        *quantiles
}

func (a *numAcc) add(v float64, sketch bool) {
	if a.n == 0 {
		a.min, a.max = v, v
	} else if v < a.min {
		a.min = v
	} else if v > a.max {
		a.max = v
	}
	a.n++
	a.sum, a.c = twoSum(a.sum, a.c, v)
	if sketch {
		if a.q == nil {
			a.q = newQuantiles()
		}
		a.q.add(v)
	}
}

// twoSum adds v to the compensated sum (s, c).
func twoSum(s, c, v float64) (float64, float64) {
	t := s + v
	if math.Abs(s) >= math.Abs(v) {
		c += (s - t) + v
	} else {
		c += (v - t) + s
	}
	return t, c
}

// merge adds o into a; o's sketch may be taken over, so o must not be used
// afterwards.
func (a *numAcc) merge(o *numAcc) {
	if o.n == 0 {
		return
	}
	if a.n == 0 {
		*a = *o
		return
	}
	a.n += o.n
	a.min = min(a.min, o.min)
	a.max = max(a.max, o.max)
	a.sum, a.c = twoSum(a.sum, a.c, o.sum)
	a.c += o.c
	switch {
	case a.q == nil:
		a.q = o.q
	case o.q != nil:
		a.q.merge(o.q)
	}
}

// total returns the sum, and false when there is none or it is beyond
// float64's range.
func (a *numAcc) total() (float64, bool) {
	s := a.sum + a.c
	return s, a.n > 0 && !math.IsInf(s, 0) && !math.IsNaN(s)
}

// percentile returns the nearest-rank pct-th percentile: exact for up to
// exactValues values, else within the sketch's relative accuracy, clamped to [min, max] where the exact answer
// lies too.
func (a *numAcc) percentile(pct int) (float64, bool) {
	if a.n == 0 || a.q == nil {
		return 0, false
	}
	// Nearest rank: the ceil(pct/100 × n)-th smallest, in integers so that
	// no rounding moves the rank.
	k := (int64(pct)*a.n + 99) / 100
	v := a.q.at(max(k, 1) - 1)
	return min(max(v, a.min), a.max), true
}

// relativeAccuracy is the sketch's α: every value it returns is within α of
// the true value of the rank asked for, relatively. The contract asks for 1%
// of the exact nearest-rank value; α = 0.5% leaves half of it as a margin for
// the floating-point rounding of the logarithm that places a value at the
// edge of a bucket (such a value lands in the bucket next door, whose
// representative is still within about α of it). A smaller α would cost
// more buckets: about ln(max/min) / 2α of them per sign, 85 for values
// between 15 and 35.
const relativeAccuracy = 0.005

var sketchMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(relativeAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

// Magnitudes the sketch can place in a bucket. Below minIndexable it would
// count a value as zero, above maxIndexable it refuses it; quantiles keeps
// those few values exactly instead.
var (
	minIndexable = sketchMapping.MinIndexableValue()
	maxIndexable = sketchMapping.MaxIndexableValue()
)

// exactValues is how many values quantiles keeps as they are before it
// moves to a sketch: small groups get exact percentiles, for the cost of a
// sketch's first pages.
const exactValues = 64

// quantiles holds a field's values for percentiles: up to exactValues of
// them exactly, then a DDSketch with unbounded stores (the buffered
// paginated store: it never collapses buckets, so it loses no accuracy, and
// costs little for few values). DDSketch keeps negative values in a store of
// their own, indexed by magnitude, and zeros in a counter; odd holds the
// values it cannot index (magnitudes below about 2.2e-308, the subnormal
// ones, and above about 1.26e308), exactly.
type quantiles struct {
	exact []float64 // every value, while sk is nil
	sk    *ddsketch.DDSketch
	odd   []float64
}

func newQuantiles() *quantiles { return &quantiles{} }

func (q *quantiles) add(v float64) {
	if q.sk == nil {
		q.exact = append(q.exact, v)
		if len(q.exact) > exactValues {
			q.toSketch()
		}
		return
	}
	if a := math.Abs(v); v == 0 || a > minIndexable && a <= maxIndexable {
		// Cannot fail: v is in range and not NaN.
		_ = q.sk.Add(v)
		return
	}
	q.odd = append(q.odd, v)
}

// toSketch moves the exact values into a new sketch.
func (q *quantiles) toSketch() {
	exact := q.exact
	q.exact = nil
	q.sk = ddsketch.NewDDSketchFromStoreProvider(sketchMapping, store.DefaultProvider)
	for _, v := range exact {
		q.add(v)
	}
}

func (q *quantiles) merge(o *quantiles) {
	if o.sk == nil {
		for _, v := range o.exact {
			q.add(v)
		}
		return
	}
	if q.sk == nil {
		q.exact, o.exact = o.exact, q.exact
		q.sk, o.sk = o.sk, nil
		q.odd, o.odd = o.odd, nil
		for _, v := range o.exact {
			q.add(v)
		}
		return
	}
	// Cannot fail: both use sketchMapping.
	_ = q.sk.MergeWith(o.sk)
	q.odd = append(q.odd, o.odd...)
}

// at returns the value of 0-based rank r in ascending order, r below the
// number of values added.
func (q *quantiles) at(r int64) float64 {
	if q.sk == nil {
		exact := slices.Clone(q.exact)
		slices.Sort(exact)
		return exact[r]
	}
	odd := slices.Clone(q.odd)
	slices.Sort(odd)
	// In ascending order: odd values below -maxIndexable, the sketch's
	// negatives, odd negatives near zero, zeros, odd positives near zero, the
	// sketch's positives, odd values above maxIndexable.
	hugeNeg := int64(countWhile(odd, func(v float64) bool { return v < -maxIndexable }))
	neg := int64(countWhile(odd, func(v float64) bool { return v < 0 }))
	pos := int64(countWhile(odd, func(v float64) bool { return v <= maxIndexable }))
	negStore, posStore := q.sk.GetNegativeValueStore(), q.sk.GetPositiveValueStore()
	nNeg := int64(negStore.TotalCount())
	nZero := int64(q.sk.GetZeroCount())
	if r < hugeNeg {
		return odd[r]
	}
	r -= hugeNeg
	if r < nNeg {
		// The negative store orders by magnitude, so rank r from the most
		// negative is rank nNeg-1-r there.
		return -q.sk.Value(negStore.KeyAtRank(float64(nNeg - 1 - r)))
	}
	r -= nNeg
	if r < neg-hugeNeg {
		return odd[hugeNeg+r]
	}
	r -= neg - hugeNeg
	if r < nZero {
		return 0
	}
	r -= nZero
	if r < pos-neg {
		return odd[neg+r]
	}
	r -= pos - neg
	if nPos := int64(posStore.TotalCount()); r < nPos {
		return q.sk.Value(posStore.KeyAtRank(float64(r)))
	}
	r -= int64(posStore.TotalCount())
	return odd[min(pos+r, int64(len(odd)-1))]
}

// countWhile returns how many leading elements of sorted s satisfy f.
func countWhile(s []float64, f func(float64) bool) int {
	n, _ := slices.BinarySearchFunc(s, 0, func(v float64, _ int) int {
		if f(v) {
			return -1
		}
		return 1
	})
	return n
}
