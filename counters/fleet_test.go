package counters

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// write is one write a node made: a delta for a sum, a value otherwise, and
// the state it left.
type write struct {
	delta int64
	value float64
	state Register
}

// TestFleetConvergesUnderAnyDelivery plays, for every kind, nodes that write
// and send their whole state after every write, each with a wall clock that
// stalls and jumps back and forward, through a network that repeats, reorders
// and delays states. After every delivery the fleet view is what the writes
// say it should be given the latest state that arrived from each node, worked
// out from the writes themselves; once every node's last state has arrived, it
// is the fleet value of all writes.
func TestFleetConvergesUnderAnyDelivery(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(23, uint64(k)))
			for round := range 500 {
				type sent struct {
					node string
					k    int // the state after the node's k-th write
				}
				writes := map[string][]write{}
				var msgs []sent
				// Nodes draw their clocks from two sequences, so that equal stamps
				// on different nodes are common and the tie-break by node is
				// exercised.
				clockSeed := r.Uint64()
				for i := range 1 + r.IntN(5) {
					node := fmt.Sprintf("edge-%d", i)
					clock := &testClock{r: rand.New(rand.NewPCG(clockSeed, uint64(r.IntN(2)))), now: 1_700_000_000_000}
					reg := Register{Kind: k}
					n := r.IntN(20)
					for j := 1; j <= n; j++ {
						w := write{delta: r.Int64N(2001) - 1000, value: float64(r.IntN(41)-20) / 4}
						var err error
						if k == KindSum {
							reg, err = reg.Add(w.delta)
						} else {
							reg, err = reg.Put(w.value, clock.tick())
						}
						if err != nil {
							t.Fatal(err)
						}
						w.state = reg
						writes[node] = append(writes[node], w)
						msgs = append(msgs, sent{node, j})
					}
				}
				for range r.IntN(3 * (len(msgs) + 1)) {
					if len(msgs) > 0 {
						msgs = append(msgs, msgs[r.IntN(len(msgs))])
					}
				}
				r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

				merged := map[string]Register{}
				latest := map[string]int{}
				for _, m := range msgs {
					in := writes[m.node][m.k-1].state
					if cur, ok := merged[m.node]; ok {
						in = mustMerge(t, cur, in)
					}
					merged[m.node] = in
					latest[m.node] = max(latest[m.node], m.k)
					if msg := checkView(k, merged, writes, latest); msg != "" {
						t.Fatalf("round %d: after %s's state %d: %s", round, m.node, m.k, msg)
					}
				}
				all := map[string]int{}
				for node, ws := range writes {
					all[node] = len(ws)
				}
				if msg := checkView(k, merged, writes, all); msg != "" {
					t.Fatalf("round %d: in the end: %s", round, msg)
				}
			}
		})
	}
}

// checkView compares Fleet's view of merged with the view the first latest[n]
// writes of each node n make, worked out from the writes: the sum of deltas,
// the largest or smallest value, the write with the greatest (stamp, node).
func checkView(k Kind, merged map[string]Register, writes map[string][]write, latest map[string]int) string {
	v, err := Fleet(k, merged)
	if err != nil {
		return err.Error()
	}
	want := View{Kind: k, Value: Value{Kind: k, Set: k == KindSum}, Nodes: map[string]Value{}}
	var newest LWW
	for node, n := range latest {
		var nodeValue Value
		switch k {
		case KindSum:
			var s int64
			for _, w := range writes[node][:n] {
				s += w.delta
			}
			nodeValue = Value{Kind: k, Int: s, Set: true}
			want.Value.Int += s
		case KindMax, KindMin:
			nodeValue = Value{Kind: k, Float: writes[node][0].value, Set: true}
			for _, w := range writes[node][:n] {
				if k == KindMax && w.value > nodeValue.Float || k == KindMin && w.value < nodeValue.Float {
					nodeValue.Float = w.value
				}
			}
			if !want.Value.Set || k == KindMax && nodeValue.Float > want.Value.Float || k == KindMin && nodeValue.Float < want.Value.Float {
				want.Value = nodeValue
			}
		case KindLast:
			// Every write the node made so far, not only its latest: the latest
			// must win over the node's own earlier ones however its clock moved.
			for _, w := range writes[node][:n] {
				c := LWW{Value: w.value, Stamp: w.state.Stamp, Node: node}
				if !newest.Set() || newest.Stamp.Less(c.Stamp) || newest.Stamp == c.Stamp && newest.Node < c.Node {
					newest = c
				}
			}
			nodeValue = Value{Kind: k, Float: writes[node][n-1].value, Set: true}
		}
		want.Nodes[node] = nodeValue
	}
	if newest.Set() {
		want.Value = Value{Kind: k, Float: newest.Value, Set: true}
		want.Updated, want.Writer = newest.Stamp.Wall, newest.Node
	}
	if v.Kind != want.Kind || v.Value != want.Value || v.Updated != want.Updated || v.Writer != want.Writer || len(v.Nodes) != len(want.Nodes) {
		return fmt.Sprintf("view %+v, want %+v", v, want)
	}
	for node, nv := range want.Nodes {
		if v.Nodes[node] != nv {
			return fmt.Sprintf("node %s: %+v, want %+v", node, v.Nodes[node], nv)
		}
	}
	return ""
}

// TestFleetLastAcrossClockSteps shows the rules of last on a small fleet: a
// node's later write wins over its earlier one after its clock stepped back,
// and equal stamps on two nodes go to the greater node name in either order.
func TestFleetLastAcrossClockSteps(t *testing.T) {
	put := func(r Register, v float64, now int64) Register {
		r, err := r.Put(v, now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := put(Register{Kind: KindLast}, 1, 10_000)
	a = put(a, 2, 5_000) // the clock stepped back five seconds
	b := put(Register{Kind: KindLast}, 3, 8_000)
	v, err := Fleet(KindLast, map[string]Register{"a": a, "b": b})
	if err != nil || v.Value.Float != 2 || v.Updated != 10_000 || v.Writer != "a" {
		t.Fatalf("view %+v, %v; want a's second write, 2, updated 10000", v, err)
	}
	x, y := put(Register{Kind: KindLast}, 7, 9_000), put(Register{Kind: KindLast}, 8, 9_000)
	for _, nodes := range []map[string]Register{{"x": x, "y": y}, {"y": y, "x": x}} {
		v, err := Fleet(KindLast, nodes)
		if err != nil || v.Value.Float != 8 || v.Writer != "y" || v.Updated != 9_000 {
			t.Fatalf("tie: view %+v, %v; want y's write", v, err)
		}
	}
}

func TestFleetRefuses(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		nodes map[string]Register
		want  error
	}{
		{"kind conflict", KindMax, map[string]Register{"a": {Kind: KindMax}, "b": {Kind: KindMin}}, ErrKindConflict},
		{"sum in a last counter", KindLast, map[string]Register{"a": {}}, ErrKindConflict},
		{"invalid state", KindMax, map[string]Register{"a": {Kind: KindMax, Value: math.Inf(1), Set: true}}, ErrInvalid},
		{"negative sum", KindSum, map[string]Register{"a": {PN: PN{P: -1}}}, ErrInvalid},
		{"overflow", KindSum, map[string]Register{"a": {PN: PN{P: math.MaxInt64}}, "b": {PN: PN{P: 1}}}, ErrOverflow},
		{"unknown kind", Kind(5), nil, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := Fleet(tt.kind, tt.nodes); !errors.Is(err, tt.want) {
				t.Fatalf("Fleet = %+v, %v; want %v", v, err, tt.want)
			}
		})
	}
}

func TestFleetJSON(t *testing.T) {
	tests := []struct {
		kind  Kind
		nodes map[string]Register
		value string
		nodeJ string
	}{
		{KindSum, nil, `0`, `{}`},
		{KindSum, map[string]Register{"a": {PN: PN{P: math.MaxInt64}}, "b": {PN: PN{N: 2}}}, `9223372036854775805`, `{"a":9223372036854775807,"b":-2}`},
		{KindMax, nil, `null`, `{}`},
		{KindMax, map[string]Register{"a": {Kind: KindMax}, "b": {Kind: KindMax, Value: -1.5, Set: true}}, `-1.5`, `{"a":null,"b":-1.5}`},
		{KindMin, map[string]Register{"a": {Kind: KindMin, Value: 3, Set: true}, "b": {Kind: KindMin, Value: 1e21, Set: true}}, `3`, `{"a":3,"b":1e+21}`},
		{KindLast, map[string]Register{"a": {Kind: KindLast}}, `null`, `{"a":null}`},
	}
	for _, tt := range tests {
		v, err := Fleet(tt.kind, tt.nodes)
		if err != nil {
			t.Fatal(err)
		}
		val, err1 := json.Marshal(v.Value)
		nodes, err2 := json.Marshal(v.Nodes)
		if err1 != nil || err2 != nil || string(val) != tt.value || string(nodes) != tt.nodeJ {
			t.Errorf("%v %v: value %s, nodes %s (%v, %v); want %s, %s", tt.kind, tt.nodes, val, nodes, err1, err2, tt.value, tt.nodeJ)
		}
		if f, ok := v.Value.Float64(); ok != v.Value.Set || ok && tt.kind == KindMax && f != -1.5 {
			t.Errorf("%v: Float64() = %v, %v", tt.kind, f, ok)
		}
	}
}
