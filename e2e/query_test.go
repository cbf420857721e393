package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// oracleEvent is what the test itself knows about an event it ingested.
type oracleEvent struct {
	ev   stream.Event
	temp *float64
	site string
	lat  float64
}

// TestPatternQueriesMatchOracle ingests a known data set through three edges and
// checks every pattern kind, predicates, time ranges, pagination, counts and
// verdicts against answers the test computes itself.
func TestPatternQueriesMatchOracle(t *testing.T) {
	h := startHub(t, t.TempDir())
	nodes := []string{"o-a", "o-b", "o-c"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewSource(7))
	sites := []string{"north", "south", "east"}
	var oracle []oracleEvent
	for ni, node := range nodes {
		e := startEdge(t, node, t.TempDir(), h.natsURL())
		const n = 600
		batch := make([]map[string]any, n)
		local := make([]oracleEvent, n)
		for i := range batch {
			// Equal timestamps across nodes exercise the (ts, node, …) tie-break.
			ts := base.Add(time.Duration(i/2) * time.Second)
			d := map[string]any{"ts": ts.UnixMilli(), "site": sites[rng.Intn(3)], "gps": map[string]any{"lat": float64(rng.Intn(90))}}
			o := oracleEvent{site: d["site"].(string), lat: d["gps"].(map[string]any)["lat"].(float64)}
			if i%10 != 3 { // some events have no temp at all
				tv := float64(rng.Intn(50)) - 5
				d["temp"] = tv
				o.temp = &tv
			}
			if node == "o-c" {
				o.lat = float64(int(o.lat) % 40) // o-c never goes north of 40
				d["gps"] = map[string]any{"lat": o.lat}
			}
			batch[i] = d
			local[i] = o
		}
		r, ok := e.ingest("oracle", batch)
		if !ok || r.Accepted != n {
			t.Fatalf("ingest into %s: %+v", node, r)
		}
		epoch := e.status(t).Epoch
		for i := range local {
			data, _ := json.Marshal(batch[i])
			local[i].ev = stream.Event{Node: node, Epoch: epoch, Seq: r.FirstSeq + uint64(i), Stream: "oracle",
				TS: base.Add(time.Duration(i/2) * time.Second).UnixNano(), Data: data}
		}
		oracle = append(oracle, local...)
		_ = ni
	}
	sort.Slice(oracle, func(i, j int) bool { return stream.Less(&oracle[i].ev, &oracle[j].ev) })
	waitFor(t, "every event to be indexed", 60*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "all", "stream": "oracle"}) == int64(len(oracle))
	})

	type tc struct {
		name      string
		params    map[string]string
		scope     []string
		match     func(o oracleEvent) bool
		wantHolds bool
	}
	inNodes := func(o oracleEvent, ns []string) bool {
		for _, n := range ns {
			if o.ev.Node == n {
				return true
			}
		}
		return false
	}
	from, to := base.Add(50*time.Second), base.Add(200*time.Second)
	tests := []tc{
		{"single with predicate and range", map[string]string{"pattern": "single(o-a)", "where": "temp > 25", "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)},
			[]string{"o-a"}, func(o oracleEvent) bool {
				return o.temp != nil && *o.temp > 25 && o.ev.TS >= from.UnixNano() && o.ev.TS < to.UnixNano()
			}, true},
		{"multiple with string predicate", map[string]string{"pattern": "multiple(o-a, o-b)", "where": `site == "north"`},
			[]string{"o-a", "o-b"}, func(o oracleEvent) bool { return o.site == "north" }, true},
		{"all with nested path; o-c never matches", map[string]string{"pattern": "all", "where": "gps.lat > 50"},
			nodes, func(o oracleEvent) bool { return o.lat > 50 }, false},
		{"all with envelope fields", map[string]string{"pattern": "all", "where": `seq % 7 == 0 && node != "o-b"`},
			nodes, func(o oracleEvent) bool { return o.ev.Seq%7 == 0 && o.ev.Node != "o-b" }, false},
		{"all, missing fields never match", map[string]string{"pattern": "all", "where": "temp < 1000"},
			nodes, func(o oracleEvent) bool { return o.temp != nil }, true},
		{"all, nothing matches", map[string]string{"pattern": "all", "where": "temp < -100"},
			nodes, func(o oracleEvent) bool { return false }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []stream.Event
			perNode := map[string]int64{}
			for _, o := range oracle {
				if inNodes(o, tt.scope) && tt.match(o) {
					want = append(want, o.ev)
					perNode[o.ev.Node]++
				}
			}
			holds := len(perNode) == len(tt.scope)
			if holds != tt.wantHolds {
				t.Fatalf("test data: holds would be %v", holds)
			}
			// Page in small steps to exercise the cursor.
			p := map[string]string{"stream": "oracle", "limit": "37"}
			for k, v := range tt.params {
				p[k] = v
			}
			var got []stream.Event
			for pages := 0; ; pages++ {
				if pages > 200 {
					t.Fatal("more than 200 pages")
				}
				r := h.query(t, p)
				if r.Holds != holds {
					t.Fatalf("holds = %v, want %v", r.Holds, holds)
				}
				got = append(got, r.Matches...)
				if r.Next == "" {
					break
				}
				if len(r.Matches) != 37 {
					t.Fatalf("a page before the last has %d matches", len(r.Matches))
				}
				p["after"] = r.Next
			}
			if len(got) != len(want) {
				t.Fatalf("got %d matches, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Node != w.Node || g.Epoch != w.Epoch || g.Seq != w.Seq || g.TS != w.TS || g.Stream != w.Stream {
					t.Fatalf("match %d: got %s/%d ts %d, want %s/%d ts %d", i, g.Node, g.Seq, g.TS, w.Node, w.Seq, w.TS)
				}
			}
			cp := map[string]string{}
			for k, v := range p {
				cp[k] = v
			}
			delete(cp, "after")
			cp["count"] = "true"
			r := h.query(t, cp)
			if r.Count == nil || *r.Count != int64(len(want)) {
				t.Fatalf("count = %v, want %d", r.Count, len(want))
			}
			for _, n := range tt.scope {
				if r.Nodes[n].Matched != perNode[n] {
					t.Errorf("nodes[%s].matched = %d, want %d", n, r.Nodes[n].Matched, perNode[n])
				}
			}
		})
	}

	t.Run("any stops at a match", func(t *testing.T) {
		r := h.query(t, map[string]string{"pattern": "any", "where": "gps.lat > 50", "stream": "oracle"})
		if !r.Holds || len(r.Matches) == 0 {
			t.Fatalf("any: holds %v with %d matches", r.Holds, len(r.Matches))
		}
		r = h.query(t, map[string]string{"pattern": "any", "where": "temp < -100", "stream": "oracle"})
		if r.Holds || len(r.Matches) != 0 {
			t.Fatalf("any with no match: holds %v, %d matches", r.Holds, len(r.Matches))
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			query    string
			status   int
			contains string
		}{
			{"pattern=single(nobody)", 404, "nobody"},
			{"pattern=single(o-a", 400, "column"},
			{"pattern=all&where=" + url.QueryEscape("temp > > 3"), 400, "where"},
			{"pattern=all&limit=10001", 400, "limit"},
			{"pattern=all&from=yesterday", 400, "from"},
			{"pattern=sometimes", 400, "pattern"},
			{"pattern=all&after=garbage", 400, "after"},
		}
		for _, c := range cases {
			code, body := httpGet(t, h.url()+"/api/v1/query?"+c.query)
			if code != c.status || !strings.Contains(string(body), c.contains) || !strings.Contains(string(body), `"error"`) {
				t.Errorf("GET ?%s: %d %s, want %d mentioning %q", c.query, code, body, c.status, c.contains)
			}
		}
		code, body := postJSON(t, h.url()+"/api/v1/query", map[string]any{"pattern": "all", "limit": "ten"})
		if code != 400 || !strings.Contains(string(body), "limit") {
			t.Errorf("POST with a string limit: %d %s", code, body)
		}
	})

	t.Run("post equals get", func(t *testing.T) {
		code, body := postJSON(t, h.url()+"/api/v1/query", map[string]any{"pattern": "multiple(o-c,o-a)", "where": "temp > 40", "stream": "oracle", "count": true})
		if code != 200 {
			t.Fatalf("POST: %d %s", code, body)
		}
		var post queryResult
		json.Unmarshal(body, &post)
		get := h.query(t, map[string]string{"pattern": "multiple(o-c,o-a)", "where": "temp > 40", "stream": "oracle", "count": "true"})
		if post.Count == nil || get.Count == nil || *post.Count != *get.Count || len(post.Matches) != len(get.Matches) {
			t.Fatalf("POST and GET differ: %v vs %v", post.Count, get.Count)
		}
	})
	_ = fmt.Sprint
}
