package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// TestFleetOfFortyEdges runs 40 real edge-agent processes into one hub — far
// more nodes than any per-node resource of the hub could serve — and checks
// all, any and multiple of twenty nodes, counts and full paging in merge
// order against what the test ingested, then 20 concurrent queries over the
// whole fleet, and the node list with its totals.
func TestFleetOfFortyEdges(t *testing.T) {
	h := startHub(t, t.TempDir())
	const fleet, per = 40, 150
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewSource(40))
	nodes := make([]string, fleet)
	edges := make([]*edgeProc, fleet)
	var wg sync.WaitGroup
	for i := range nodes {
		nodes[i] = fmt.Sprintf("f%02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			edges[i] = startEdge(t, nodes[i], t.TempDir(), h.natsURL())
		}()
	}
	wg.Wait()
	var oracle []oracleEvent
	for i, e := range edges {
		batch := make([]map[string]any, per)
		local := make([]oracleEvent, per)
		for k := range batch {
			// Whole seconds: many events of different nodes share a ts.
			ts := base.Add(time.Duration(rng.Intn(300)) * time.Second)
			tv := float64(rng.Intn(400)) / 10
			site := []string{"north", "south"}[rng.Intn(2)]
			if i == 7 {
				tv = 10 // f07 never gets hot
			}
			batch[k] = map[string]any{"ts": ts.UnixMilli(), "temp": tv, "site": site}
			local[k] = oracleEvent{temp: &tv, site: site, ev: stream.Event{Node: e.node, Stream: "fleet", TS: ts.UnixNano()}}
		}
		r, ok := e.ingest("fleet", batch)
		if !ok || r.Accepted != per {
			t.Fatalf("ingest into %s: %+v", e.node, r)
		}
		epoch := e.status(t).Epoch
		for k := range local {
			local[k].ev.Epoch, local[k].ev.Seq = epoch, r.FirstSeq+uint64(k)
		}
		oracle = append(oracle, local...)
	}
	sort.Slice(oracle, func(i, j int) bool { return stream.Less(&oracle[i].ev, &oracle[j].ev) })
	waitFor(t, "every event of the fleet to be indexed", 120*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "all", "stream": "fleet"}) == int64(len(oracle))
	})

	twenty := append([]string(nil), nodes[10:30]...)
	inSet := func(ns []string) func(string) bool {
		return func(n string) bool {
			for _, m := range ns {
				if m == n {
					return true
				}
			}
			return false
		}
	}
	every := func(string) bool { return true }
	for _, tt := range []struct {
		name, pattern, where string
		scope                func(string) bool
		scopeSize            int
		match                func(o oracleEvent) bool
	}{
		{"all", "all", "", every, fleet, func(oracleEvent) bool { return true }},
		{"all hot, f07 never is", "all", "temp > 30", every, fleet, func(o oracleEvent) bool { return *o.temp > 30 }},
		{"any north and hot", "any", `temp > 39 && site == "north"`, every, fleet, func(o oracleEvent) bool { return *o.temp > 39 && o.site == "north" }},
		{"any never", "any", "temp > 100", every, fleet, func(oracleEvent) bool { return false }},
		{"multiple of twenty", "multiple(" + strings.Join(twenty, ",") + ")", `site == "south"`, inSet(twenty), 20, func(o oracleEvent) bool { return o.site == "south" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []stream.Event
			perNode := map[string]int64{}
			for _, o := range oracle {
				if tt.scope(o.ev.Node) && tt.match(o) {
					want = append(want, o.ev)
					perNode[o.ev.Node]++
				}
			}
			holds := len(perNode) == tt.scopeSize
			if tt.pattern == "any" {
				holds = len(perNode) > 0
			}
			p := map[string]string{"pattern": tt.pattern, "where": tt.where, "stream": "fleet", "limit": "113"}
			var got []stream.Event
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("more than 100 pages")
				}
				r := h.query(t, p)
				if r.Holds != holds || len(r.Nodes) != tt.scopeSize {
					t.Fatalf("page %d: holds %v over %d nodes, want %v over %d", pages, r.Holds, len(r.Nodes), holds, tt.scopeSize)
				}
				got = append(got, r.Matches...)
				if r.Next == "" {
					break
				}
				p["after"] = r.Next
			}
			if len(got) != len(want) {
				t.Fatalf("%d matches over every page, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Node != w.Node || g.Epoch != w.Epoch || g.Seq != w.Seq || g.TS != w.TS {
					t.Fatalf("match %d: %s/%d@%d, want %s/%d@%d", i, g.Node, g.Seq, g.TS, w.Node, w.Seq, w.TS)
				}
			}
			delete(p, "after")
			p["count"] = "true"
			r := h.query(t, p)
			if r.Count == nil || *r.Count != int64(len(want)) || r.Holds != holds {
				t.Fatalf("count %v holds %v, want %d and %v", r.Count, r.Holds, len(want), holds)
			}
			for n, nr := range r.Nodes {
				if nr.Matched != perNode[n] {
					t.Fatalf("nodes[%s].matched %d, want %d", n, nr.Matched, perNode[n])
				}
			}
		})
	}

	t.Run("twenty concurrent queries over the fleet", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := url.Values{"pattern": {"all"}, "stream": {"fleet"}, "where": {fmt.Sprintf("temp > %d", i)}, "count": {fmt.Sprint(i%2 == 0)}}
				// Beyond the hub's queries at once, the answer is 503 with
				// Retry-After: a client waits and asks again.
				var code int
				var body []byte
				for try := 0; ; try++ {
					resp, err := http.Get(h.url() + "/api/v1/query?" + v.Encode())
					if err != nil {
						errs <- err.Error()
						return
					}
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
					wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
					if code != http.StatusServiceUnavailable || err != nil || try == 30 {
						break
					}
					time.Sleep(time.Duration(wait) * time.Second)
				}
				var r queryResult
				if code != 200 || json.Unmarshal(body, &r) != nil || len(r.Nodes) != fleet {
					errs <- fmt.Sprintf("query %d: %d %.200s", i, code, body)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("node list and totals", func(t *testing.T) {
		waitFor(t, "every edge online", 30*time.Second, func() bool {
			var page nodePage
			getJSON(t, h.url()+"/api/v1/nodes?limit=1", &page)
			return page.Totals.Online == fleet
		})
		var got []string
		after := ""
		for {
			var page nodePage
			getJSON(t, h.url()+"/api/v1/nodes?limit=7&after="+url.QueryEscape(after), &page)
			if page.Totals.Nodes != fleet || page.Totals.Events != int64(len(oracle)) || page.Totals.Missing != 0 {
				t.Fatalf("totals %+v", page.Totals)
			}
			for _, n := range page.Nodes {
				got = append(got, n.Node)
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		if strings.Join(got, ",") != strings.Join(nodes, ",") {
			t.Fatalf("paged node list %v", got)
		}
		var page nodePage
		getJSON(t, h.url()+"/api/v1/nodes?prefix=f1", &page)
		if len(page.Nodes) != 10 || page.Nodes[0].Node != "f10" {
			t.Fatalf("prefix f1: %+v", page.Nodes)
		}
		for _, bad := range []string{"limit=0", "limit=10001", "online=maybe", "sort=size", "after=%21"} {
			code, body := httpGet(t, h.url()+"/api/v1/nodes?"+bad)
			if code != 400 || !strings.Contains(string(body), strings.Split(bad, "=")[0]) {
				t.Errorf("GET /api/v1/nodes?%s: %d %s", bad, code, body)
			}
		}
	})
}

// nodePage is GET /api/v1/nodes's answer.
type nodePage struct {
	Nodes []struct {
		Node   string `json:"node"`
		Online bool   `json:"online"`
		Events int64  `json:"events"`
	} `json:"nodes"`
	Next   string `json:"next"`
	Totals struct {
		Nodes   int   `json:"nodes"`
		Online  int   `json:"online"`
		Events  int64 `json:"events"`
		Missing int64 `json:"missing"`
	} `json:"totals"`
}
