package pattern

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// poly is a cost or a size as a polynomial: D is the size of a value read from
// the event's data (in bytes, or elements, whichever is more), e<k> and a<k>
// the size of the element and of the accumulator of the k-th closure. A key
// is a monomial, its variables sorted and joined by "*"; "" is the constant.
type poly map[string]float64

func constant(c float64) poly { return poly{"": c} }

func variable(v string) poly { return poly{v: 1} }

func (p poly) plus(qs ...poly) poly {
	out := poly{}
	for _, q := range append([]poly{p}, qs...) {
		for m, c := range q {
			out[m] += c
		}
	}
	return out
}

func (p poly) times(q poly) poly {
	out := poly{}
	for m1, c1 := range p {
		for m2, c2 := range q {
			out[monomial(m1, m2)] += c1 * c2
		}
	}
	return out
}

func (p poly) scale(c float64) poly { return p.times(constant(c)) }

// max is a bound on both p and q: the larger coefficient of each monomial.
func (p poly) max(q poly) poly {
	out := poly{}
	for m, c := range p {
		out[m] = c
	}
	for m, c := range q {
		out[m] = math.Max(out[m], c)
	}
	return out
}

func monomial(a, b string) string {
	var vs []string
	for _, s := range []string{a, b} {
		if s != "" {
			vs = append(vs, strings.Split(s, "*")...)
		}
	}
	slices.Sort(vs)
	return strings.Join(vs, "*")
}

// degree returns how often variable v appears in monomial m.
func degree(m, v string) int {
	if m == "" {
		return 0
	}
	n := 0
	for _, f := range strings.Split(m, "*") {
		if f == v {
			n++
		}
	}
	return n
}

// without returns monomial m with every v taken out.
func without(m, v string) string {
	var vs []string
	for _, f := range strings.Split(m, "*") {
		if f != v && f != "" {
			vs = append(vs, f)
		}
	}
	return strings.Join(vs, "*")
}

// subst replaces variable v by q.
func (p poly) subst(v string, q poly) poly {
	out := poly{}
	for m, c := range p {
		term := poly{without(m, v): c}
		for range degree(m, v) {
			term = term.times(q)
		}
		out = out.plus(term)
	}
	return out
}

// constantOnly reports whether p has no variable.
func (p poly) constantOnly() bool {
	for m, c := range p {
		if m != "" && c != 0 {
			return false
		}
	}
	return true
}

// String renders p for tests and messages: "3 + 2·D".
func (p poly) String() string {
	keys := make([]string, 0, len(p))
	for m, c := range p {
		if c != 0 {
			keys = append(keys, m)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, m := range keys {
		if m == "" {
			parts = append(parts, round(p[m]))
		} else {
			parts = append(parts, fmt.Sprintf("%s·%s", round(p[m]), m))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " + ")
}
