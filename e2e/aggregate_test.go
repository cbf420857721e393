package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/internal/aggoracle"
	"github.com/tributary-edge/tributary/stream"
)

// TestAggregatesOverAFleet runs a hub and three edge agents as processes,
// posts events with known times and values to each edge, and checks the
// aggregates of every pattern against brute force over what was posted:
// windows, groups, values, holds per window, and certain once every edge has
// delivered everything. GET answers as POST does.
func TestAggregatesOverAFleet(t *testing.T) {
	h := startHub(t, t.TempDir())
	nodes := []string{"agg-1", "agg-2", "agg-3"}
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var posted []stream.Event
	for ni, node := range nodes {
		e := startEdge(t, node, t.TempDir(), h.natsURL())
		var batch []map[string]any
		for i := range 60 {
			ts := t0.Add(time.Duration(i*10+ni) * time.Second) // ten minutes, every 10 s
			if node == "agg-3" && ts.Sub(t0) >= 5*time.Minute {
				break // agg-3 goes quiet: all does not hold from minute 5
			}
			d := map[string]any{"ts": ts.UnixMilli(), "site": []string{"north", "south"}[i%2], "temp": float64(10*ni + i%7)}
			switch i % 9 {
			case 3:
				delete(d, "temp") // missing: left out of avg, not of count
			case 5:
				d["temp"] = "warm" // not a number
			case 7:
				delete(d, "site") // the group key is null
			}
			batch = append(batch, d)
		}
		// Out of order: the second half first.
		half := len(batch) / 2
		for _, part := range [][]map[string]any{batch[half:], batch[:half]} {
			if r, ok := e.ingest("sensors", part); !ok || r.Accepted != len(part) {
				t.Fatalf("ingest at %s", node)
			}
		}
		for _, d := range batch {
			data, _ := json.Marshal(d)
			posted = append(posted, stream.Event{Node: node, Stream: "sensors", TS: time.UnixMilli(d["ts"].(int64)).UnixNano(), Data: data})
		}
	}
	// Every edge complete: every pattern's answer is then certain.
	base := aggregate.Request{From: "2026-11-25T00:00:00Z", To: "2026-11-25T00:11:00Z", Window: "1m", Stream: "sensors",
		GroupBy: []string{"site"}, Aggregates: []string{"count", "avg(temp)", "min(temp)", "max(temp)", "p50(temp)", "sum(temp)"}}
	waitFor(t, "every event at the hub and every node complete", 60*time.Second, func() bool {
		r := base
		r.Pattern, r.GroupBy, r.Aggregates = "all", nil, nil
		code, body := postJSON(t, h.url()+"/api/v1/aggregate", r)
		var got aggoracle.Got
		if code != 200 || json.Unmarshal(body, &got) != nil {
			return false
		}
		var n float64
		for _, w := range got.Windows {
			for _, g := range w.Groups {
				n += g["count"].(float64)
			}
		}
		return int(n) == len(posted) && got.Certain
	})
	complete := map[string]bool{}
	for _, n := range nodes {
		complete[n] = true
	}
	for _, pat := range []string{"all", "any", "single(agg-2)", "multiple(agg-1,agg-3)"} {
		r := base
		r.Pattern = pat
		if pat == "any" {
			r.Where, r.GroupBy = "temp >= 20", []string{"node", "site"}
		}
		p, err := aggregate.Prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		scope := nodes
		if q := p.Query(); q.Nodes != nil {
			scope = q.Nodes
		}
		want := aggoracle.Want(aggoracle.Request{Query: p.Query(), Window: p.Window(), GroupBy: p.Request().GroupBy, Aggregates: p.Request().Aggregates},
			posted, scope, complete)
		code, body := postJSON(t, h.url()+"/api/v1/aggregate", r)
		if code != 200 {
			t.Fatalf("%s: %d %s", pat, code, body)
		}
		if err := aggoracle.Check(body, want, p.Request().GroupBy, p.Request().Aggregates); err != nil {
			t.Fatalf("%s: %v\n%s", pat, err, body)
		}
		// GET with the same fields, lists comma-separated.
		var get aggoracle.Got
		getJSON(t, h.url()+"/api/v1/aggregate?"+r.Values().Encode(), &get)
		if len(get.Windows) != len(want.Windows) || get.Certain != want.Certain {
			t.Fatalf("%s: GET gave %d windows, certain %v", pat, len(get.Windows), get.Certain)
		}
	}
	// The contract's own reading of the fleet: all holds in minutes 0 to 4
	// only, any holds where some node has temp >= 20 (agg-3 only).
	var all aggoracle.Got
	getJSON(t, h.url()+"/api/v1/aggregate?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-25T00:10:00Z&window=1m", &all)
	for i, w := range all.Windows {
		if w.Holds != (i < 5) || !w.Certain {
			t.Fatalf("all, minute %d: holds %v certain %v", i, w.Holds, w.Certain)
		}
	}
}

// TestLiveAggregateRevisesALateWindow opens a live aggregate over two edges,
// posts events into the current window, reads the window once it closes,
// then posts a late event into it through an edge and reads it again,
// revised, with the new figures.
func TestLiveAggregateRevisesALateWindow(t *testing.T) {
	h := startHub(t, t.TempDir())
	e1 := startEdge(t, "late-1", t.TempDir(), h.natsURL())
	e2 := startEdge(t, "late-2", t.TempDir(), h.natsURL())
	for _, e := range []*edgeProc{e1, e2} {
		if _, ok := e.ingest("s", []map[string]any{{"temp": 0}}); !ok {
			t.Fatal("first ingest")
		}
	}
	waitFor(t, "both nodes known", 30*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "multiple(late-1,late-2)"}) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	q := url.Values{"pattern": {"all"}, "window": {"2s"}, "group_by": {"node"}, "aggregates": {"count,max(temp)"}, "lateness": {"1m"}}
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url()+"/api/v1/aggregate/live?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("live aggregate: %d", resp.StatusCode)
	}
	type window struct {
		Start, End time.Time
		Holds      bool
		Revised    bool
		Groups     []map[string]any
	}
	windows := make(chan window, 100)
	go func() {
		defer close(windows)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var w window
				if err := json.Unmarshal([]byte(data), &w); err != nil {
					t.Errorf("bad SSE data %q: %v", data, err)
					return
				}
				windows <- w
			}
		}
	}()
	// The stream is open once its first window comes.
	if w, ok := <-windows; !ok || w.Revised {
		t.Fatalf("first window %+v", w)
	}
	// Both edges post into one window, with their own ts, in its middle.
	at := time.Now().Add(time.Second).Truncate(2 * time.Second).Add(time.Second)
	for i, e := range []*edgeProc{e1, e2} {
		if _, ok := e.ingest("s", []map[string]any{{"ts": at.UnixMilli(), "temp": 20 + i}, {"ts": at.UnixMilli(), "temp": 21 + i}}); !ok {
			t.Fatal("ingest")
		}
	}
	start := at.Truncate(2 * time.Second)
	next := func(what string) window {
		t.Helper()
		for w := range windows {
			if w.Start.Equal(start) {
				return w
			}
			if w.Revised {
				t.Fatalf("%s: revision of window %v, which had no late event", what, w.Start)
			}
		}
		t.Fatalf("%s: the stream ended", what)
		return window{}
	}
	w := next("the window")
	if w.Revised || !w.Holds || len(w.Groups) != 2 || w.Groups[0]["count"] != 2.0 || w.Groups[1]["max(temp)"] != 22.0 {
		t.Fatalf("window %v: %+v", start, w)
	}
	// Late: the window has closed and been sent.
	if _, ok := e1.ingest("s", []map[string]any{{"ts": at.UnixMilli(), "temp": 99}}); !ok {
		t.Fatal("late ingest")
	}
	w = next("the revision")
	if !w.Revised || w.Groups[0]["count"] != 3.0 || w.Groups[0]["max(temp)"] != 99.0 || w.Groups[1]["count"] != 2.0 {
		t.Fatalf("revision of %v: %+v", start, w)
	}
	// A plain aggregate over the window agrees with the revision.
	var got aggoracle.Got
	getJSON(t, h.url()+"/api/v1/aggregate?"+url.Values{"pattern": {"all"}, "window": {"2s"}, "group_by": {"node"},
		"aggregates": {"count"}, "from": {start.Format(time.RFC3339Nano)}, "to": {start.Add(2 * time.Second).Format(time.RFC3339Nano)}}.Encode(), &got)
	if len(got.Windows) != 1 || fmt.Sprint(got.Windows[0].Groups[0]["count"]) != "3" {
		t.Fatalf("plain aggregate of the window: %+v", got)
	}
}
