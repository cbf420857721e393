package counters

import (
	"encoding/json"
	"math"
	"testing"
)

func TestCounterJSON(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		nodes map[string]Register
		want  string
	}{
		{"sum, as before kinds plus kind", KindSum,
			map[string]Register{"edge-1": {PN: PN{P: 5, N: 3}}, "edge-2": {PN: PN{P: 1}}},
			`{"name":"c","kind":"sum","value":3,"nodes":{"edge-1":2,"edge-2":1}}`},
		{"sum past 2^53 stays exact", KindSum,
			map[string]Register{"a": {PN: PN{P: math.MaxInt64}}},
			`{"name":"c","kind":"sum","value":9223372036854775807,"nodes":{"a":9223372036854775807}}`},
		{"max", KindMax,
			map[string]Register{"a": {Kind: KindMax, Value: 81.25, Set: true}, "b": {Kind: KindMax, Value: -4, Set: true}},
			`{"name":"c","kind":"max","value":81.25,"nodes":{"a":81.25,"b":-4}}`},
		{"min never set", KindMin,
			map[string]Register{"a": {Kind: KindMin}},
			`{"name":"c","kind":"min","value":null,"nodes":{"a":null}}`},
		{"last", KindLast,
			map[string]Register{
				"a": {Kind: KindLast, Value: 3, Set: true, Stamp: HLC{Wall: 1_700_000_000_123}},
				"b": {Kind: KindLast, Value: 2, Set: true, Stamp: HLC{Wall: 1_700_000_000_000, Logical: 9}},
			},
			`{"name":"c","kind":"last","value":3,"nodes":{"a":3,"b":2},"updated":"2023-11-14T22:13:20.123Z","writer":"a"}`},
		{"last never written", KindLast,
			map[string]Register{"a": {Kind: KindLast}},
			`{"name":"c","kind":"last","value":null,"nodes":{"a":null},"updated":null,"writer":null}`},
		{"no nodes", KindMax, nil, `{"name":"c","kind":"max","value":null,"nodes":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Fleet(tt.kind, tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(Counter{Name: "c", View: v})
			if err != nil || string(b) != tt.want {
				t.Fatalf("JSON %s, %v\nwant %s", b, err, tt.want)
			}
			for node, r := range tt.nodes {
				if got := r.NodeValue(); got != v.Nodes[node] {
					t.Errorf("%s: NodeValue %+v, the view has %+v", node, got, v.Nodes[node])
				}
			}
		})
	}
}
