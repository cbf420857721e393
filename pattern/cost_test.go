package pattern

import (
	"errors"
	"strings"
	"testing"
)

func TestWhereCost(t *testing.T) {
	tests := []struct {
		where             string
		perEvent, perByte float64 // when accepted
		msg               string  // when refused
	}{
		{where: `temp > 30 && site == "north"`, perEvent: 13},
		{where: `gps.lat > 52`, perEvent: 6},
		{where: `any(tags, # == "x")`, perEvent: 1, perByte: 5},
		{where: `any(tags, # in ["a", "b", "c"])`, perEvent: 1, perByte: 5},
		{where: `code in 1..1000000 && code in [1, 2, 3]`, perEvent: 8, perByte: 1},
		{where: `len(filter(readings, # > 0)) > 3`, perEvent: 5, perByte: 5},
		{where: `all(items, all(#.values, # > 0))`, perEvent: 1, perByte: 9},
		{where: `all(1..300, # > 0)`, perEvent: 1800},
		{where: `let x = 1..10; all(x, any(x, # == 3))`, perEvent: 531},
		{where: `repeat("ab", 100) != ""`, perEvent: 408},
		{where: `reduce(1..20, #acc + #, 0) > 0`, perEvent: 564},
		{where: `sort(readings)[0] > 1`, perEvent: 7, perByte: 21},
		{where: `count(flags) > 1 && sum(1..10) > 1`, perEvent: 28, perByte: 1},
		{where: `sortBy(items, .t, "desc")[0].t > 1`, perEvent: 9, perByte: 24},

		// The expression of issue 11: 69 ms of CPU per event.
		{where: `all(1..900000, # > 0)`, msg: "the range 1..900000 has 900000 elements, over the limit of 1000 at column 5"},
		{where: `all(1..400, # > 0)`, msg: "all() costs about 2400 steps per event, over the limit of 2000 at column 1"},
		{where: `let x = 1..100; all(x, all(x, # > 0))`, msg: "all() costs about 50201 steps per event, over the limit of 2000 at column 17"},
		{where: `temp > 0 &&` + "\n" + `all(1..n, # > 0)`, msg: "a range's bounds must be integer literals (such as 1..10) at line 2, column 5"},
		{where: `all(readings, all(readings, # > 0))`, msg: "all() grows with the square of the event's size (a loop over the event's data inside another) at column 1"},
		{where: `all(items, let o = #; any(items, # == o))`, msg: "grows with the square of the event's size"},
		{where: `site matches pattern`, msg: "the operator matches grows with the square of the event's size (a pattern taken from the event's data) at column 6"},
		{where: `map(1..100, pad + pad) | len() > 0`, msg: "map() costs about 200 steps per byte of the event's data, over the limit of 32 at column 1"},
		{where: `repeat(pad, 1000000) != ""`, msg: "repeat() costs about 1000001 steps per byte of the event's data"},
		{where: `repeat("x", n) != ""`, msg: "repeat()'s count must be an integer literal at column 1"},
		{where: `reduce(1..30, #acc + #acc, "x") != ""`, msg: "reduce()'s accumulator may double at every step at column 1"},
		{where: `reduce(1..100, #acc + pad, "") != ""`, msg: "steps per byte of the event's data, over the limit of 32"},
		{where: `replace(s, "", "` + strings.Repeat("x", 40) + `") != ""`, msg: "replace() costs about"},
		{where: strings.Repeat("a||", 2100) + "a", msg: "the expression has more than 2000 syntax nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.where[:min(len(tt.where), 40)], func(t *testing.T) {
			q, err := Prepare(Request{Pattern: "all", Where: tt.where})
			if tt.msg != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "where: ") || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %v, want ErrInvalid saying %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e, b := q.Cost(); e != tt.perEvent || b != tt.perByte {
				t.Fatalf("cost %v per event and %v per byte, want %v and %v", e, b, tt.perEvent, tt.perByte)
			}
		})
	}
}

func TestPolyLoopSum(t *testing.T) {
	d, e := variable("D"), variable("e1")
	rng := shape{size: constant(10), len: constant(10), elem: constant(1)}
	arr := shape{size: d, len: d, elem: d}
	body := constant(3).plus(e.scale(2)) // 3 + 2·e1
	if got := loopSum(body, "e1", rng).String(); got != "50" {
		t.Errorf("over a range of 10: %s, want 50", got)
	}
	// The elements of a data array add up to its size: 3 per element plus 2
	// per byte of all of them.
	if got := loopSum(body, "e1", arr).String(); got != "5·D" {
		t.Errorf("over a data array: %s, want 5·D", got)
	}
	if got := loopSum(d.times(e), "e1", arr).String(); got != "1·D*D" {
		t.Errorf("data inside a loop over data: %s, want 1·D*D", got)
	}
}
