package index

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tributary-edge/tributary/pattern"
)

// TestNodesInside lists the nodes with a chunk wholly inside the range, by
// node, stream and either bound, whatever the number of nodes named.
func TestNodesInside(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	// One chunk each: a in s over 1–3 s, b in t at 5 s, c in s over 10–11 s.
	msgs := []Message{eventsMsg("a", "e", "s", 1, 2, 3), eventsMsg("b", "e", "t", 5), eventsMsg("c", "e", "s", 10, 11)}
	if _, err := x.Apply(ctx, msgs, false); err != nil {
		t.Fatal(err)
	}
	many := []string{"a", "c"}
	for i := range 2 * nodeListMax {
		many = append(many, fmt.Sprintf("x%04d", i))
	}
	slices.Sort(many)
	tests := []struct {
		name string
		s    pattern.Scan
		want []string
	}{
		{"everything", pattern.Scan{}, []string{"a", "b", "c"}},
		{"one stream", pattern.Scan{Stream: "s"}, []string{"a", "c"}},
		{"from inside a's chunk", pattern.Scan{From: 2e9, HasFrom: true}, []string{"b", "c"}},
		{"to c's last event", pattern.Scan{To: 11e9, HasTo: true}, []string{"a", "b"}},
		{"both bounds", pattern.Scan{From: 1e9, HasFrom: true, To: 6e9, HasTo: true}, []string{"a", "b"}},
		{"named", pattern.Scan{Nodes: []string{"a", "b"}}, []string{"a", "b"}},
		{"named, more than SQL takes", pattern.Scan{Nodes: many}, []string{"a", "c"}},
		{"none named", pattern.Scan{Nodes: []string{}}, nil},
		{"empty range", pattern.Scan{From: 4e9, HasFrom: true, To: 4e9, HasTo: true}, nil},
	}
	for _, tt := range tests {
		got, err := x.NodesInside(ctx, tt.s)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
