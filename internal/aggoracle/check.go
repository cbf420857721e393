package aggoracle

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Got is an answer as its JSON reads, for Check.
type Got struct {
	Pattern string `json:"pattern"`
	Window  string `json:"window"`
	Windows []struct {
		Start   time.Time        `json:"start"`
		End     time.Time        `json:"end"`
		Holds   bool             `json:"holds"`
		Certain bool             `json:"certain"`
		Groups  []map[string]any `json:"groups"`
	} `json:"windows"`
	Scanned int64 `json:"scanned"`
	Certain bool  `json:"certain"`
}

// Check compares the JSON of an answer with want, for the group fields
// groupBy and the aggregates aggs of the request in canonical form: every
// window in order with its bounds, holds and certainty, every group with its
// key, and every aggregate: count, min and max exactly, sum and avg within
// 1e-9 relative to the sum of magnitudes, percentiles within 1 % of the exact
// nearest-rank value, null where no number was taken. It returns the first
// difference, or nil.
func Check(gotJSON []byte, want Answer, groupBy, aggs []string) error {
	var got Got
	if err := json.Unmarshal(gotJSON, &got); err != nil {
		return fmt.Errorf("decode answer: %v", err)
	}
	if len(got.Windows) != len(want.Windows) {
		return fmt.Errorf("%d windows, want %d", len(got.Windows), len(want.Windows))
	}
	for wi, gw := range got.Windows {
		ww := want.Windows[wi]
		if !gw.Start.Equal(ww.Start) || !gw.End.Equal(ww.End) {
			return fmt.Errorf("window %d: [%v, %v), want [%v, %v)", wi, gw.Start, gw.End, ww.Start, ww.End)
		}
		if gw.Holds != ww.Holds {
			return fmt.Errorf("window %d (%v): holds %v, want %v", wi, ww.Start, gw.Holds, ww.Holds)
		}
		if gw.Certain != ww.Certain {
			return fmt.Errorf("window %d (%v): certain %v, want %v", wi, ww.Start, gw.Certain, ww.Certain)
		}
		if gw.Groups == nil {
			return fmt.Errorf("window %d: groups is null, want a list", wi)
		}
		if len(gw.Groups) != len(ww.Groups) {
			return fmt.Errorf("window %d (%v): %d groups, want %d", wi, ww.Start, len(gw.Groups), len(ww.Groups))
		}
		for gi, g := range gw.Groups {
			if err := checkGroup(g, ww.Groups[gi], groupBy, aggs); err != nil {
				return fmt.Errorf("window %d (%v) group %d: %v", wi, ww.Start, gi, err)
			}
		}
	}
	if got.Certain != want.Certain {
		return fmt.Errorf("certain %v, want %v", got.Certain, want.Certain)
	}
	return nil
}

// canon returns v's JSON with object keys sorted, so that a key read back
// from the answer compares with one the oracle made.
func canon(v any) string {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		_ = json.Unmarshal(raw, &x)
		v = x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func checkGroup(g map[string]any, want Group, groupBy, aggs []string) error {
	key, ok := g["key"].(map[string]any)
	if !ok || len(key) != len(groupBy) {
		return fmt.Errorf("key %v, want %d fields %v", g["key"], len(groupBy), groupBy)
	}
	for i, f := range groupBy {
		v, ok := key[f]
		if !ok || canon(v) != canon(want.Key[i]) {
			return fmt.Errorf("key %s = %s, want %s", f, canon(v), canon(want.Key[i]))
		}
	}
	if len(g) != len(aggs)+1 {
		return fmt.Errorf("%d members, want key and %v", len(g), aggs)
	}
	for _, a := range aggs {
		v, ok := g[a]
		if !ok {
			return fmt.Errorf("no %s", a)
		}
		if a == "count" {
			if v != float64(want.Count) {
				return fmt.Errorf("count %v, want %d", v, want.Count)
			}
			continue
		}
		fn, field, _ := strings.Cut(strings.TrimSuffix(a, ")"), "(")
		vals := slices.Clone(want.Nums[field])
		if len(vals) == 0 {
			if v != nil {
				return fmt.Errorf("%s = %v, want null", a, v)
			}
			continue
		}
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%s = %v, want a number", a, v)
		}
		slices.Sort(vals)
		var sum, abs float64
		for _, x := range vals {
			sum += x
			abs += math.Abs(x)
		}
		exact, tol := 0.0, 0.0
		switch fn {
		case "sum":
			exact, tol = sum, 1e-9*abs
		case "avg":
			exact, tol = sum/float64(len(vals)), 1e-9*abs/float64(len(vals))
		case "min":
			exact = vals[0]
		case "max":
			exact = vals[len(vals)-1]
		default:
			pct := 0
			fmt.Sscanf(fn, "p%d", &pct)
			exact = NearestRank(vals, pct)
			tol = 0.01 * math.Abs(exact)
		}
		if math.Abs(f-exact) > tol {
			return fmt.Errorf("%s = %v, want %v within %g (%d numbers)", a, f, exact, tol, len(vals))
		}
	}
	return nil
}
