package aggregate

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// TestSettle checks the certainty rule window by window: three one-minute
// windows where a has an event in the first two and b in the first only.
func TestSettle(t *testing.T) {
	evs := []stream.Event{
		{Node: "a", TS: t0, Data: json.RawMessage(`{}`)},
		{Node: "b", TS: t0 + 1, Data: json.RawMessage(`{}`)},
		{Node: "a", TS: t0 + int64(time.Minute), Data: json.RawMessage(`{}`)},
	}
	tests := []struct {
		name     string
		pattern  string
		scope    []string
		complete []string
		want     []bool // per window
	}{
		// A window that holds is certain, however incomplete the nodes.
		{"all, none complete", "all", []string{"a", "b"}, nil, []bool{true, false, false}},
		// Window 1 lacks b: certain once b is complete; window 2 lacks both.
		{"all, b complete", "all", []string{"a", "b"}, []string{"b"}, []bool{true, true, false}},
		{"all, a complete", "all", []string{"a", "b"}, []string{"a"}, []bool{true, false, false}},
		{"all, both complete", "all", []string{"a", "b"}, []string{"a", "b"}, []bool{true, true, true}},
		{"multiple with a node without events", "multiple(a,c)", []string{"a", "c"}, []string{"a"}, []bool{false, false, false}},
		{"multiple, c complete", "multiple(a,c)", []string{"a", "c"}, []string{"c"}, []bool{true, true, false}},
		{"single, incomplete", "single(b)", []string{"b"}, nil, []bool{true, false, false}},
		{"single, complete", "single(b)", []string{"b"}, []string{"b"}, []bool{true, true, true}},
		// Any: false is certain only when every node is complete, even one
		// that has events elsewhere.
		{"any, b complete", "any", []string{"a", "b"}, []string{"b"}, []bool{true, true, false}},
		{"any, a complete", "any", []string{"a", "b"}, []string{"a"}, []bool{true, true, false}},
		{"any, both complete", "any", []string{"a", "b"}, []string{"a", "b"}, []bool{true, true, true}},
		{"any, no nodes", "any", nil, nil, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(Request{Pattern: tt.pattern, From: day0, To: "2026-11-25T00:03:00Z", Window: "1m"})
			if err != nil {
				t.Fatal(err)
			}
			st := p.NewState(tt.scope)
			for i := range evs {
				if err := st.Add(&evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			res := p.Result(st)
			asked := map[string]int{}
			p.Settle(res, st, func(n string) bool {
				asked[n]++
				for _, c := range tt.complete {
					if c == n {
						return true
					}
				}
				return false
			})
			all := true
			for i, w := range res.Windows {
				if w.Certain != tt.want[i] {
					t.Errorf("window %d (holds %v): certain %v, want %v", i, w.Holds, w.Certain, tt.want[i])
				}
				all = all && tt.want[i]
			}
			if res.Certain != all {
				t.Errorf("certain %v, want %v", res.Certain, all)
			}
			for _, n := range tt.scope {
				if asked[n] != 1 {
					t.Errorf("completeness of %s asked %d times, want once", n, asked[n])
				}
			}
		})
	}
}

// TestSettleManyNodes crosses the 64-node words of the bitsets: of 130
// nodes, only the last is without an event and incomplete.
func TestSettleManyNodes(t *testing.T) {
	p, err := Prepare(Request{Pattern: "all", From: day0, To: "2026-11-25T00:01:00Z", Window: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	var scope []string
	for i := range 130 {
		scope = append(scope, fmt.Sprintf("n%03d", i))
	}
	st := p.NewState(scope)
	for _, n := range scope[:129] {
		if err := st.Add(&stream.Event{Node: n, TS: t0, Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, last := range []bool{false, true} {
		res := p.Result(st)
		p.Settle(res, st, func(n string) bool { return last || n != scope[129] })
		if res.Windows[0].Certain != last || res.Certain != last {
			t.Fatalf("last node complete %v: window certain %v, answer %v", last, res.Windows[0].Certain, res.Certain)
		}
	}
}
