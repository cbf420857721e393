package natsjs_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-edge/tributary/hub/natsjs"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

// TestHubMergesStaleAndRepeatedStates delivers every state of three nodes and two
// counters to the hub with repeats and stale copies in random order. After every
// Merge, the hub and the bucket hold the latest state delivered per node; in the
// end, the last state of each, and a freshly opened hub reads the same.
func TestHubMergesStaleAndRepeatedStates(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)

	type sent struct {
		node string
		k    int
		cs   stream.CounterState
	}
	r := rand.New(rand.NewPCG(11, 12))
	var msgs []sent
	sums := map[string][]int64{} // key → running value after each add
	for _, name := range []string{"doors", "errors"} {
		for _, node := range []string{"edge-a", "edge-b", "edge-c"} {
			var c counters.PN
			key := counters.Key(name, node)
			sums[key] = []int64{0}
			for k := 1; k <= 8; k++ {
				delta := r.Int64N(41) - 20
				c, _ = c.Add(delta)
				sums[key] = append(sums[key], sums[key][k-1]+delta)
				msgs = append(msgs, sent{node, k, stream.CounterState{Name: name, P: c.P, N: c.N}})
			}
		}
	}
	n := len(msgs)
	for range n {
		msgs = append(msgs, msgs[r.IntN(n)])
	}
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

	latest := map[string]sent{}
	for _, m := range msgs {
		if err := h.Merge(ctx, m.node, []stream.CounterState{m.cs}); err != nil {
			t.Fatalf("merge: %v", err)
		}
		key := counters.Key(m.cs.Name, m.node)
		if m.k > latest[key].k {
			latest[key] = m
		}
		want := latest[key].cs
		if got, _ := stored(t, kv, key); got != (counters.PN{P: want.P, N: want.N}) {
			t.Fatalf("after %s's state %d: bucket holds %+v, want the latest delivered %+v", key, m.k, got, want)
		}
		c, err := h.Get(ctx, m.cs.Name)
		if err != nil {
			t.Fatalf("get %s: %v", m.cs.Name, err)
		}
		if c.Nodes[m.node].Int != sums[key][latest[key].k] {
			t.Fatalf("after %s's state %d: hub shows %d for the node, want %d", key, m.k, c.Nodes[m.node].Int, sums[key][latest[key].k])
		}
	}

	var want []counters.Counter
	for _, name := range []string{"doors", "errors"} {
		nodes := map[string]int64{}
		for _, node := range []string{"edge-a", "edge-b", "edge-c"} {
			nodes[node] = sums[counters.Key(name, node)][8]
		}
		want = append(want, sumCounter(name, nodes))
	}
	got, err := h.List(ctx)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("List() = %+v, %v; want %+v", got, err, want)
	}
	if got, err := openHub(t, url).List(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("a new hub's List() = %+v, %v; want %+v", got, err, want)
	}
}

// TestHubSkipsWritesThatChangeNothing checks that repeated, stale and dominated
// states leave the bucket untouched, while a counter's first state is written
// even when it is zero.
func TestHubSkipsWritesThatChangeNothing(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	ctx := testCtx(t)

	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "idle"}}); err != nil {
		t.Fatal(err)
	}
	if c, err := h.Get(ctx, "idle"); err != nil || !reflect.DeepEqual(c, sumCounter("idle", map[string]int64{"edge": 0})) {
		t.Fatalf("a zero first state: Get = %+v, %v; want the counter known with value 0", c, err)
	}
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "doors", P: 5, N: 2}}); err != nil {
		t.Fatal(err)
	}
	before := lastSeq(t, url)
	repeats := []stream.CounterState{{Name: "doors", P: 5, N: 2}, {Name: "doors", P: 3, N: 1}, {Name: "doors", P: 5}, {Name: "idle"}}
	if err := h.Merge(ctx, "edge", repeats); err != nil {
		t.Fatal(err)
	}
	// A hub that did not write the state itself reads the bucket to decide.
	if err := openHub(t, url).Merge(ctx, "edge", repeats); err != nil {
		t.Fatal(err)
	}
	if after := lastSeq(t, url); after != before {
		t.Fatalf("states that change nothing wrote %d times", after-before)
	}
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "doors", P: 5, N: 3}}); err != nil {
		t.Fatal(err)
	}
	if after := lastSeq(t, url); after != before+1 {
		t.Fatalf("a state that changes N wrote %d times, want 1", after-before)
	}
}

// TestHubConcurrentMergesLoseNothing runs four writers on one key through two
// hubs with their own connections: two raise P, two raise N. Every Merge that
// returns must be in the bucket, so a lost revision conflict shows at once.
func TestHubConcurrentMergesLoseNothing(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	hubs := []*natsjs.Counters{openHub(t, url), openHub(t, url)}
	kv := bucket(t, url)
	ctx := testCtx(t)
	const steps = 120
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			h := hubs[g%2]
			for i := int64(1); i <= steps; i++ {
				cs := stream.CounterState{Name: "hits", P: i}
				if g >= 2 {
					cs = stream.CounterState{Name: "hits", N: i}
				}
				if err := h.Merge(ctx, "edge", []stream.CounterState{cs}); err != nil {
					errs <- fmt.Errorf("writer %d, step %d: %w", g, i, err)
					return
				}
				e, err := kv.Get(ctx, counters.Key("hits", "edge"))
				if err != nil {
					errs <- err
					return
				}
				got, _ := counters.DecodeRegister(e.Value())
				if got.PN.P < cs.P || got.PN.N < cs.N {
					errs <- fmt.Errorf("writer %d: merged %+v but the bucket holds %+v", g, cs, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _ := stored(t, kv, counters.Key("hits", "edge")); got != (counters.PN{P: steps, N: steps}) {
		t.Fatalf("bucket holds %+v, want {P:%d N:%d}", got, steps, steps)
	}
	for i, h := range hubs {
		eventually(t, fmt.Sprintf("hub %d sees both writers", i), func() string {
			c, err := h.Get(ctx, "hits")
			if err != nil || c.Value.Int != 0 || c.Nodes["edge"].Int != 0 {
				return fmt.Sprintf("Get = %+v, %v", c, err)
			}
			return ""
		})
	}
}

// TestHubRetriesRevisionConflict makes another hub write the key between this
// hub's read and its write, on a new key (Create) and an existing one (Update).
// The write must be retried and both states kept.
func TestHubRetriesRevisionConflict(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			srv := natstest.Start(t, "")
			url := srv.ClientURL()
			h, other := openHub(t, url), openHub(t, url)
			ctx := testCtx(t)
			if existing {
				if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "c", P: 1, N: 1}}); err != nil {
					t.Fatal(err)
				}
			}
			writes := 0
			natsjs.SetBeforeWrite(h, func(key string) {
				writes++
				if writes == 1 {
					if err := other.Merge(ctx, "edge", []stream.CounterState{{Name: "c", N: 9}}); err != nil {
						t.Errorf("other merge: %v", err)
					}
				}
			})
			if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "c", P: 5}}); err != nil {
				t.Fatalf("merge with a conflict: %v", err)
			}
			if writes != 2 {
				t.Fatalf("%d write attempts, want 2 (one conflict, one retry)", writes)
			}
			if got, _ := stored(t, bucket(t, url), counters.Key("c", "edge")); got != (counters.PN{P: 5, N: 9}) {
				t.Fatalf("bucket holds %+v, want {P:5 N:9}", got)
			}
			if c, err := h.Get(ctx, "c"); err != nil || c.Value.Int != -4 {
				t.Fatalf("Get = %+v, %v; want value -4", c, err)
			}
		})
	}
}

// TestHubKeepsCountersAcrossRestart restarts the server on the same directory
// and port: the counters are still there for a new hub, and the hub that was
// open before the restart reconnects, merges again, and sees other writers.
func TestHubKeepsCountersAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.Start(t, dir)
	url := srv.ClientURL()
	port := srv.Addr().(*net.TCPAddr).Port
	h := openHub(t, url)
	ctx := testCtx(t)
	states := map[string][]stream.CounterState{
		"edge-a": {{Name: "doors", P: 7, N: 2}, {Name: "alarms", P: 1}},
		"edge-b": {{Name: "doors", P: 3}},
	}
	for node, s := range states {
		if err := h.Merge(ctx, node, s); err != nil {
			t.Fatal(err)
		}
	}
	want, err := h.List(ctx)
	if err != nil || len(want) != 2 || want[1].Value.Int != 8 {
		t.Fatalf("before restart: List() = %+v, %v", want, err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	natstest.StartOn(t, dir, port)

	if got, err := openHub(t, url).List(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: a new hub's List() = %+v, %v; want %+v", got, err, want)
	}
	eventually(t, "merge after reconnect", func() string {
		if err := h.Merge(ctx, "edge-b", []stream.CounterState{{Name: "doors", P: 4}}); err != nil {
			if !errors.Is(err, natsjs.ErrUnavailable) {
				t.Fatalf("merge while reconnecting: %v, want ErrUnavailable", err)
			}
			return err.Error()
		}
		return ""
	})
	if got, _ := stored(t, bucket(t, url), counters.Key("doors", "edge-b")); got != (counters.PN{P: 4}) {
		t.Fatalf("after restart: bucket holds %+v, want {P:4}", got)
	}
	other := openHub(t, url)
	if err := other.Merge(ctx, "edge-c", []stream.CounterState{{Name: "doors", P: 10}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old hub's watcher sees a new writer", func() string {
		c, err := h.Get(ctx, "doors")
		if err != nil || c.Value.Int != 19 {
			return fmt.Sprintf("Get = %+v, %v; want value 19", c, err)
		}
		return ""
	})
}

func TestHubGet(t *testing.T) {
	srv := natstest.Start(t, "")
	h := openHub(t, srv.ClientURL())
	ctx := testCtx(t)
	if _, err := h.Get(ctx, "nope"); !errors.Is(err, counters.ErrUnknownCounter) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Get of an unknown counter: %v, want counters.ErrUnknownCounter naming it", err)
	}
	if _, err := h.Get(ctx, "a.b"); !errors.Is(err, counters.ErrInvalid) || !errors.Is(err, stream.ErrInvalidName) {
		t.Fatalf("Get of a bad name: %v, want counters.ErrInvalid", err)
	}
	if err := h.Merge(ctx, "n1", []stream.CounterState{{Name: "nope", P: 2, N: 5}}); err != nil {
		t.Fatal(err)
	}
	want := sumCounter("nope", map[string]int64{"n1": -3})
	if got, err := h.Get(ctx, "nope"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
}

// TestHubMergeRefusesInvalidStates checks that a bad name, a negative field, an
// unknown kind or a value no register can hold anywhere in a call writes
// nothing, not even the good states before it.
func TestHubMergeRefusesInvalidStates(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	ctx := testCtx(t)
	good := stream.CounterState{Name: "ok", P: 1}
	tests := []struct {
		name   string
		node   string
		states []stream.CounterState
		want   string
	}{
		{"bad node", "edge.1", []stream.CounterState{good}, `node name "edge.1"`},
		{"wildcard node", "*", []stream.CounterState{good}, `node name "*"`},
		{"bad counter", "edge", []stream.CounterState{good, {Name: "a>b", P: 1}}, `counter name "a>b"`},
		{"reserved counter", "edge", []stream.CounterState{good, {Name: "_x", P: 1}}, `counter name "_x"`},
		{"negative p", "edge", []stream.CounterState{good, {Name: "neg", P: -1}}, "p -1 and n 0 must not be negative"},
		{"negative n", "edge", []stream.CounterState{good, {Name: "neg", N: math.MinInt64}}, "must not be negative"},
		{"NaN register", "edge", []stream.CounterState{good, {Name: "temp", Kind: stream.CounterMax, Value: math.NaN(), Set: true}}, "not a finite number"},
		{"unknown kind", "edge", []stream.CounterState{good, {Name: "temp", Kind: "avg", Value: 3, Set: true}}, `unknown kind "avg"`},
		{"last without a stamp", "edge", []stream.CounterState{good, {Name: "mode", Kind: stream.CounterLast, Value: 3, Set: true}}, "stamp"},
		{"a name that is another node's key", "edge", []stream.CounterState{good, {Name: "temp.other", P: 1}}, `counter name "temp.other"`},
	}
	before := lastSeq(t, url)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.Merge(ctx, tt.node, tt.states)
			if !errors.Is(err, counters.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Merge error %v, want counters.ErrInvalid saying %q", err, tt.want)
			}
		})
	}
	if after := lastSeq(t, url); after != before {
		t.Fatalf("refused merges wrote %d times", after-before)
	}
	if got, err := h.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List() = %+v, %v; want nothing", got, err)
	}
}

// TestHubOverflow checks that a total past int64 is an error for that counter
// and never a wrapped number, while the other counters are still listed.
func TestHubOverflow(t *testing.T) {
	srv := natstest.Start(t, "")
	h := openHub(t, srv.ClientURL())
	ctx := testCtx(t)
	for node, s := range map[string][]stream.CounterState{
		"a": {{Name: "big", P: math.MaxInt64}, {Name: "fine", P: math.MaxInt64}},
		"b": {{Name: "big", P: 1}, {Name: "fine", N: 1}},
	} {
		if err := h.Merge(ctx, node, s); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := h.Get(ctx, "big"); !errors.Is(err, counters.ErrOverflow) {
		t.Fatalf("Get(big) = %+v, %v; want counters.ErrOverflow", c, err)
	}
	got, err := h.List(ctx)
	if !errors.Is(err, counters.ErrOverflow) || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("List() error %v, want counters.ErrOverflow naming big", err)
	}
	want := []counters.Counter{sumCounter("fine", map[string]int64{"a": math.MaxInt64, "b": -1})}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List() = %+v, want the counters that fit: %+v", got, want)
	}
}

// TestHubFollowsTheBucket checks the in-memory copy against changes made by
// hand: a deleted key disappears, a value that is not a counters.PN disappears too, and
// the next Merge replaces it.
func TestHubFollowsTheBucket(t *testing.T) {
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	h := openHub(t, url)
	kv := bucket(t, url)
	ctx := testCtx(t)
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "gone", P: 1}, {Name: "junk", P: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, counters.Key("gone", "edge")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted key disappears", func() string {
		if _, err := h.Get(ctx, "gone"); !errors.Is(err, counters.ErrUnknownCounter) {
			return fmt.Sprintf("Get = %v, want counters.ErrUnknownCounter", err)
		}
		return ""
	})
	if _, err := kv.PutString(ctx, counters.Key("junk", "edge"), "not json"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an unreadable value leaves the view", func() string {
		if _, err := h.Get(ctx, "junk"); !errors.Is(err, counters.ErrUnknownCounter) {
			return fmt.Sprintf("Get = %v, want counters.ErrUnknownCounter", err)
		}
		return ""
	})
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "junk", P: 2}}); err != nil {
		t.Fatalf("merge over junk: %v", err)
	}
	if got, _ := stored(t, kv, counters.Key("junk", "edge")); got != (counters.PN{P: 2}) {
		t.Fatalf("junk replaced by %+v, want {P:2}", got)
	}
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "gone", P: 1}}); err != nil {
		t.Fatal(err)
	}
	if c, err := h.Get(ctx, "gone"); err != nil || c.Value.Int != 1 {
		t.Fatalf("a deleted key merged again: Get = %+v, %v; want value 1", c, err)
	}
}

func TestHubLifecycle(t *testing.T) {
	srv := natstest.Start(t, "")
	js := connect(t, srv.ClientURL())
	ctx := testCtx(t)
	for _, replicas := range []int{0, 6} {
		h := natsjs.NewCounters(js)
		h.Replicas = replicas
		if err := h.Open(ctx); err == nil || !strings.Contains(err.Error(), "replicas") {
			t.Fatalf("Open with %d replicas: %v, want an error about replicas", replicas, err)
		}
	}
	h := natsjs.NewCounters(js)
	if err := h.Merge(ctx, "edge", []stream.CounterState{{Name: "c", P: 1}}); !errors.Is(err, natsjs.ErrClosed) {
		t.Fatalf("Merge before Open: %v, want ErrClosed", err)
	}
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Open(ctx); err == nil {
		t.Fatal("a second Open succeeded")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := h.List(ctx); !errors.Is(err, natsjs.ErrClosed) {
		t.Fatalf("List after Close: %v, want ErrClosed", err)
	}
	if _, err := h.Get(ctx, "c"); !errors.Is(err, natsjs.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	// The bucket is bound, not replaced, by a second hub.
	h2 := natsjs.NewCounters(js)
	if err := h2.Open(ctx); err != nil {
		t.Fatalf("open on the existing bucket: %v", err)
	}
	defer h2.Close()
	st, err := bucket(t, srv.ClientURL()).Status(ctx)
	if err != nil || st.History() != 1 || st.Bucket() != stream.CountersBucket {
		t.Fatalf("bucket status %+v, %v; want COUNTERS with history 1", st, err)
	}
}
