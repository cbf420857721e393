package pattern

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// TestProbeInside settles holds through NodesInside where a node's only
// chunk straddles the range: such a node has a match only if one of its
// events falls inside, which NodesInside cannot tell and the chunk read must.
func TestProbeInside(t *testing.T) {
	at := func(s int64) int64 { return oracleBase + s*int64(time.Second) }
	ev := func(node string, seq uint64, s int64) stream.Event {
		return stream.Event{Node: node, Epoch: "e", Seq: seq, Stream: "s", TS: at(s), Data: json.RawMessage(`{}`)}
	}
	rfc := func(s int64) string { return time.Unix(0, at(s)).UTC().Format(time.RFC3339Nano) }
	tests := []struct {
		name    string
		evs     []stream.Event
		pattern string
		holds   bool
	}{
		// a: one chunk from 10 to 30 with nothing in [15, 25) or something;
		// c: three matches in [15, 25), so that pages of one need a probe.
		{"all, a straddles empty", []stream.Event{ev("a", 1, 10), ev("a", 2, 30), ev("b", 1, 20)}, "all", false},
		{"all, a straddles with a match", []stream.Event{ev("a", 1, 10), ev("a", 2, 20), ev("a", 3, 30), ev("b", 1, 20)}, "all", true},
		{"any, only a straddling chunk", []stream.Event{ev("a", 1, 10), ev("a", 2, 30), ev("b", 1, 40)}, "any", true},
		{"any, a straddles with a match", []stream.Event{ev("a", 1, 10), ev("a", 2, 16), ev("a", 3, 30)}, "any", true},
		{"all, b has no chunk", []stream.Event{ev("a", 1, 17)}, "all", false},
		{"multiple, a straddles empty", []stream.Event{ev("a", 1, 10), ev("a", 2, 30)}, "multiple(a,c)", false},
		{"multiple, a straddles with a match", []stream.Event{ev("a", 1, 10), ev("a", 2, 24), ev("a", 3, 30)}, "multiple(a,c)", true},
	}
	for _, tt := range tests {
		evs := append(tt.evs, ev("c", 1, 16), ev("c", 2, 17), ev("c", 3, 18))
		for _, inside := range []bool{false, true} {
			idx := newMemIndexChunked(t, []string{"a", "b", "c"}, evs, 3, 1)
			var ix Index = idx
			if inside {
				ix = memInside{idx}
			}
			// Pages of one: no page shows every node, probes decide.
			req := Request{Pattern: tt.pattern, From: rfc(15), To: rfc(25), Limit: 1}
			for page := 0; ; page++ {
				q, err := Prepare(req)
				if err != nil {
					t.Fatal(err)
				}
				res, err := Execute(context.Background(), ix, q)
				if err != nil {
					t.Fatal(err)
				}
				if res.Holds != tt.holds {
					t.Errorf("%s (inside %v) page %d: holds %v, want %v", tt.name, inside, page, res.Holds, tt.holds)
				}
				if res.Next == "" {
					break
				}
				req.After = res.Next
			}
		}
	}
}
