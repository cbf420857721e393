package natsjs_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

// TestHubMergesEveryKind delivers every state of three nodes of a max, a min
// and a last counter to the hub, with repeats and stale copies in random order,
// with clocks that go back and stamps that tie across nodes. After every Merge
// the bucket holds the merge of what was delivered for the key, and the hub's
// view is the fleet view of those states; in the end, of the last states, and a
// freshly opened hub reads the same.
func TestHubMergesEveryKind(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)
	r := rand.New(rand.NewPCG(5, 6))

	type sent struct {
		node string
		reg  counters.Register
		name string
	}
	names := map[counters.Kind]string{counters.KindMax: "pressure", counters.KindMin: "battery", counters.KindLast: "firmware"}
	nodes := []string{"edge-a", "edge-b", "edge-c"}
	var msgs []sent
	final := map[string]map[string]counters.Register{}
	for kind, name := range names {
		final[name] = map[string]counters.Register{}
		for _, node := range nodes {
			reg := counters.Register{Kind: kind}
			now := int64(1_700_000_000_000)
			for range 8 {
				now += r.Int64N(5) - 2 // stalls and steps back: stamps tie and logical counts up
				var err error
				if reg, err = reg.Put(float64(r.IntN(200)-100)/4, now); err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, sent{node, reg, name})
			}
			final[name][node] = reg
		}
	}
	n := len(msgs)
	for range n {
		msgs = append(msgs, msgs[r.IntN(n)])
	}
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

	merged := map[string]map[string]counters.Register{}
	for _, m := range msgs {
		if err := h.Merge(ctx, m.node, []stream.CounterState{m.reg.Wire(m.name)}); err != nil {
			t.Fatalf("merge: %v", err)
		}
		if merged[m.name] == nil {
			merged[m.name] = map[string]counters.Register{}
		}
		cur, ok := merged[m.name][m.node]
		if !ok {
			cur = counters.Register{Kind: m.reg.Kind}
		}
		next, err := cur.Merge(m.reg)
		if err != nil {
			t.Fatal(err)
		}
		merged[m.name][m.node] = next
		if got, _ := storedRegister(t, kv, counters.Key(m.name, m.node)); got != next {
			t.Fatalf("%s of %s: bucket holds %+v, want %+v", m.name, m.node, got, next)
		}
		want, err := counters.Fleet(m.reg.Kind, merged[m.name])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Get(ctx, m.name); err != nil || !reflect.DeepEqual(got.View, want) {
			t.Fatalf("%s after a state of %s: Get = %+v, %v; want %+v", m.name, m.node, got, err, want)
		}
	}
	var want []counters.Counter
	for _, name := range []string{"battery", "firmware", "pressure"} {
		v, err := counters.Fleet(final[name]["edge-a"].Kind, final[name])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, counters.Counter{Name: name, View: v})
	}
	if got, err := h.List(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("List() = %+v, %v; want %+v", got, err, want)
	}
	if got, err := openHub(t, url).List(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("a new hub's List() = %+v, %v; want %+v", got, err, want)
	}
	if want[1].Writer == "" || want[1].Updated < 1_700_000_000_000-20 {
		t.Fatalf("firmware's view has no writer or time: %+v", want[1])
	}
}

// TestHubIgnoresStatesOfAnotherKind checks that a counter's kind is the first
// the hub holds for its name, from any node: later states of another kind,
// from other nodes or from the first node itself, are counted and ignored,
// while the other states of the same call are merged. A hub that opens later
// learns the kind from the bucket and ignores the same states.
func TestHubIgnoresStatesOfAnotherKind(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)
	temp := stream.CounterState{Name: "temp", Kind: stream.CounterMax, Value: 30, Set: true}
	if err := h.Merge(ctx, "edge-a", []stream.CounterState{temp}); err != nil {
		t.Fatal(err)
	}
	before := lastSeq(t, url)
	others := []struct {
		node  string
		state stream.CounterState
	}{
		{"edge-b", stream.CounterState{Name: "temp", Kind: stream.CounterMin, Value: 2, Set: true}},
		{"edge-b", stream.CounterState{Name: "temp", P: 9}},
		{"edge-a", stream.CounterState{Name: "temp", Kind: stream.CounterLast, Value: 99, Set: true, Wall: 1}},
	}
	for i, o := range others {
		err := h.Merge(ctx, o.node, []stream.CounterState{o.state, {Name: "doors", P: int64(i + 1)}})
		if err != nil {
			t.Fatalf("a state of another kind made Merge fail: %v", err)
		}
		if got := h.KindConflicts(); got != uint64(i+1) {
			t.Fatalf("after %d conflicting states KindConflicts() = %d", i+1, got)
		}
	}
	// Only doors was written: edge-b's twice, edge-a's once.
	if after := lastSeq(t, url); after != before+3 {
		t.Fatalf("%d writes, want 3 (the sums beside the conflicting states)", after-before)
	}
	if got, _ := storedRegister(t, kv, counters.Key("temp", "edge-a")); got != (counters.Register{Kind: counters.KindMax, Value: 30, Set: true}) {
		t.Fatalf("edge-a's temp became %+v", got)
	}
	if _, err := kv.Get(ctx, counters.Key("temp", "edge-b")); err == nil {
		t.Fatal("edge-b's state of another kind was stored")
	}
	c, err := h.Get(ctx, "temp")
	if err != nil || c.Kind != counters.KindMax || c.Value.Float != 30 || len(c.Nodes) != 1 {
		t.Fatalf("temp = %+v, %v; want the max of edge-a alone", c, err)
	}
	if d, err := h.Get(ctx, "doors"); err != nil || d.Value.Int != 5 {
		t.Fatalf("doors = %+v, %v; want 2 + 3", d, err)
	}

	late := openHub(t, url)
	if err := late.Merge(ctx, "edge-c", []stream.CounterState{others[0].state}); err != nil {
		t.Fatal(err)
	}
	if late.KindConflicts() != 1 {
		t.Fatalf("a hub opened later counted %d conflicts, want 1", late.KindConflicts())
	}
	if _, err := kv.Get(ctx, counters.Key("temp", "edge-c")); err == nil {
		t.Fatal("a hub opened later stored a state of another kind")
	}
}

// TestHubViewOfMixedKinds puts states of several kinds under one name straight
// into the bucket, as only a hand or a hub of another version could: the view
// takes the kind most nodes hold, ties going to the first of sum, max, min,
// last, and leaves out the others, on every hub alike.
func TestHubViewOfMixedKinds(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)
	put := func(node, value string) {
		t.Helper()
		if _, err := kv.PutString(ctx, counters.Key("mixed", node), value); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, kind counters.Kind, nodes ...string) {
		t.Helper()
		eventually(t, what, func() string {
			c, err := h.Get(ctx, "mixed")
			if err != nil || c.Kind != kind || len(c.Nodes) != len(nodes) {
				return fmt.Sprintf("Get = %+v, %v; want a %v of %v", c, err, kind, nodes)
			}
			for _, n := range nodes {
				if _, ok := c.Nodes[n]; !ok {
					return fmt.Sprintf("Get = %+v; want node %s", c, n)
				}
			}
			return ""
		})
	}
	put("a", `{"kind":"min","value":4}`)
	put("b", `{"kind":"max","value":7}`)
	check("a tie between min and max", counters.KindMax, "b")
	put("c", `{"kind":"min","value":1}`)
	check("two mins and a max", counters.KindMin, "a", "c")
	if got, err := openHub(t, url).Get(ctx, "mixed"); err != nil || got.Kind != counters.KindMin || got.Value.Float != 1 {
		t.Fatalf("a new hub's view %+v, %v; want the min of a and c", got, err)
	}
	// The held kind decides what a node's new state may be.
	if err := h.Merge(ctx, "b", []stream.CounterState{{Name: "mixed", Kind: stream.CounterMax, Value: 9, Set: true}}); err != nil || h.KindConflicts() != 1 {
		t.Fatalf("a max state for a min counter: %v, %d conflicts; want it ignored", err, h.KindConflicts())
	}
}

// TestHubKeepsEachNodesKeyItsOwn checks that whatever states a node sends, the
// hub writes only keys "<name>.<that node>": a counter name cannot reach
// another node's key, and the other nodes' values are untouched.
func TestHubKeepsEachNodesKeyItsOwn(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)
	victim := stream.CounterState{Name: "fw", Kind: stream.CounterLast, Value: 1, Set: true, Wall: 1_700_000_000_000}
	if err := h.Merge(ctx, "victim", []stream.CounterState{victim}); err != nil {
		t.Fatal(err)
	}
	attacks := [][]stream.CounterState{
		{{Name: "fw.victim", Kind: stream.CounterLast, Value: 666, Set: true, Wall: 1_800_000_000_000}},
		{{Name: "fw.>", P: 1}},
		{{Name: "fw.*", P: 1}},
		{{Name: "fw", Kind: stream.CounterLast, Value: 666, Set: true, Wall: 1_800_000_000_000}},
	}
	for _, a := range attacks {
		_ = h.Merge(ctx, "mallory", a)
	}
	for _, node := range []string{"victim.x", "*", ">"} {
		if err := h.Merge(ctx, node, []stream.CounterState{{Name: "fw", P: 1}}); err == nil {
			t.Errorf("Merge as node %q succeeded", node)
		}
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, ".victim") && !strings.HasSuffix(k, ".mallory") {
			t.Errorf("the bucket has key %q", k)
		}
	}
	if got, _ := storedRegister(t, kv, counters.Key("fw", "victim")); got.Value != 1 {
		t.Fatalf("the victim's key holds %+v", got)
	}
	c, err := h.Get(ctx, "fw")
	if err != nil || c.Nodes["victim"].Float != 1 || c.Writer != "mallory" {
		t.Fatalf("fw = %+v, %v; want the victim's own value kept beside mallory's newer write", c, err)
	}
}
