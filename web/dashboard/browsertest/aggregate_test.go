package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// startQuietEdge starts an edge agent without sources on f's hub: it sends
// only what the test posts, so once that is delivered the node is complete
// and every verdict about it is certain.
func startQuietEdge(t *testing.T, f *fleet, node string) string {
	t.Helper()
	_, edgeBin := buildBinaries(t)
	listen := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	startProcess(t, "edge "+node, edgeBin, "--node", node, "--hub", f.nats, "--data", t.TempDir(), "--listen", listen)
	u := "http://" + listen
	waitFor(t, 60*time.Second, node+"'s /healthz", func() (bool, string) {
		var s map[string]any
		err := (&fleet{hub: u}).getJSON("/api/v1/status", &s)
		return err == nil, fmt.Sprint(err)
	})
	f.edges[node] = u
	return u
}

// postEvents posts events to an edge's local API on stream.
func postEvents(t *testing.T, edge, stream string, events []map[string]any) {
	t.Helper()
	var res struct {
		Accepted int `json:"accepted"`
	}
	code, err := post(context.Background(), edge+"/api/v1/events?stream="+stream, events, &res)
	if err != nil || code != 202 || res.Accepted != len(events) {
		t.Fatalf("post %d events at %s: status %d, %+v, %v", len(events), edge, code, res, err)
	}
}

// aggAnswer is the part of an aggregate answer the dashboard shows.
type aggAnswer struct {
	Windows []struct {
		Start   string           `json:"start"`
		Holds   bool             `json:"holds"`
		Certain bool             `json:"certain"`
		Groups  []map[string]any `json:"groups"`
	} `json:"windows"`
	Certain bool `json:"certain"`
}

func (a aggAnswer) verdicts() []string {
	var out []string
	for _, w := range a.Windows {
		switch {
		case w.Holds:
			out = append(out, "holds")
		case w.Certain:
			out = append(out, "not")
		default:
			out = append(out, "uncertain")
		}
	}
	return out
}

// testAggregate fills in the query console's aggregate mode for a quiet
// node's known events, and checks the strip, the chart and its table against
// the API's answer, then that a reload restores the query from the address,
// and the layout at 390 px.
func testAggregate(t *testing.T, b *browser, f *fleet, quiet string) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []map[string]any
	for _, m := range []int{0, 1, 2, 4, 5} {
		ts := base.Add(time.Duration(m)*time.Minute + 10*time.Second).UnixMilli()
		evs = append(evs, map[string]any{"ts": ts, "site": "north", "temp": 10 + m})
		if m != 4 {
			evs = append(evs, map[string]any{"ts": ts, "site": "south", "temp": 20 + m})
		}
	}
	postEvents(t, quiet, "agg", evs)
	q := url.Values{"pattern": {"single(edge-c)"}, "stream": {"agg"}, "from": {"2025-01-01T00:00:00Z"}, "to": {"2025-01-01T00:10:00Z"},
		"window": {"1m"}, "group_by": {"site"}, "aggregates": {"count,avg(temp)"}}
	var api aggAnswer
	waitFor(t, 60*time.Second, "edge-c's events at the hub and the answer certain", func() (bool, string) {
		if err := f.getJSON("/api/v1/aggregate?"+q.Encode(), &api); err != nil {
			return false, err.Error()
		}
		n := 0.0
		for _, w := range api.Windows {
			for _, g := range w.Groups {
				n += g["count"].(float64)
			}
		}
		return n == float64(len(evs)) && api.Certain, fmt.Sprintf("%v events, certain %v", n, api.Certain)
	})

	b.do("wide viewport", chromedp.EmulateViewport(1280, 900))
	b.route("#/query?mode=aggregate&pattern=single(edge-c)")
	b.do("fill in the aggregate form",
		chromedp.WaitVisible(chromedp.CSS("#aggregate-form")),
		setValue("#a-stream", "agg"),
		setValue("#a-from", "2025-01-01T00:00:00Z"),
		setValue("#a-to", "2025-01-01T00:10:00Z"),
		setValue("#a-window", "1m"),
		setValue("#a-group-by", "site"),
		setValue("#a-aggregates", "count, avg(temp)"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#a-aggregates').dispatchEvent(new Event('change'))`),
		setValue("#a-chart", "avg(temp)"),
		chromedp.Click(chromedp.CSS(`#aggregate-form button[type=submit]`)))
	check := func(when string) {
		t.Helper()
		strip := waitJS(b, when+": the verdict strip", `[...document.querySelectorAll('#agg-strip .strip-cell')].map(c => c.dataset.verdict)`,
			func(v []string) bool { return len(v) == 10 })
		if want := api.verdicts(); !slices.Equal(strip, want) {
			t.Errorf("%s: strip %v, API says %v", when, strip, want)
		}
		if want := []string{"holds", "holds", "holds", "not", "holds", "holds", "not", "not", "not", "not"}; !slices.Equal(strip, want) {
			t.Errorf("%s: strip %v, want %v for the events posted", when, strip, want)
		}
		var view struct {
			Points, Series, Certain, Hash string
		}
		if err := b.eval(`({Points: document.querySelector('#agg-results .chart').dataset.points,
			Series: document.querySelector('#agg-results .chart').dataset.series,
			Certain: document.querySelector('#agg-certain').dataset.certain, Hash: location.hash})`, &view); err != nil {
			t.Fatal(err)
		}
		if view.Points != "10" || view.Series != "2" || view.Certain != "true" {
			t.Errorf("%s: chart of %s windows and %s lines, certain %s; want 10, 2 (north, south), true", when, view.Points, view.Series, view.Certain)
		}
		hash, _ := url.ParseQuery(view.Hash[len("#/query?"):])
		if hash.Get("window") != "1m" || hash.Get("group_by") != "site" || hash.Get("chart") != "avg(temp)" || hash.Get("mode") != "aggregate" {
			t.Errorf("%s: the address %s does not hold the query", when, view.Hash)
		}
		// The table says what the chart draws: avg(temp) per window and site.
		b.do("open the table", chromedp.Evaluate[chromedp.Void](`document.querySelector('#agg-figures').open = true`))
		rows := waitJS(b, when+": the figures table", `[...document.querySelectorAll('#agg-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))`,
			func(r [][]string) bool { return len(r) == 10 })
		for i, w := range api.Windows {
			want := map[string]string{"north": "–", "south": "–"}
			for _, g := range w.Groups {
				want[g["key"].(map[string]any)["site"].(string)] = fmt.Sprint(g["avg(temp)"])
			}
			if rows[i][2] != want["north"] || rows[i][3] != want["south"] {
				t.Errorf("%s: table row %d %v, API says north %s south %s", when, i, rows[i], want["north"], want["south"])
			}
		}
	}
	check("after the form")
	b.checkAccessible("aggregate mode")
	b.screenshot("aggregate-1280.png")

	b.do("reload", chromedp.Reload())
	check("after a reload")
	var form struct{ Window, GroupBy, Chart string }
	if err := b.eval(`({Window: document.querySelector('#a-window').value, GroupBy: document.querySelector('#a-group-by').value,
		Chart: document.querySelector('#a-chart').value})`, &form); err != nil || form.Window != "1m" || form.GroupBy != "site" || form.Chart != "avg(temp)" {
		t.Errorf("the form after a reload: %+v (%v)", form, err)
	}

	b.do("narrow viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	width := waitJS(b, "the aggregate laid out at 390 px", `[window.innerWidth, document.documentElement.scrollWidth]`,
		func(w []int) bool { return len(w) == 2 && w[0] == 390 })
	if width[1] > width[0] {
		t.Errorf("at 390 px the aggregate page is %d px wide: it scrolls sideways as a whole", width[1])
	}
	b.screenshot("aggregate-390.png")
	b.do("wide viewport again", chromedp.EmulateViewport(1280, 900))
}

// testNodeMinutes posts events into the last hour of a quiet node and checks
// its page's per-minute charts and table against them: the field to average
// defaults to the first numeric one.
func testNodeMinutes(t *testing.T, b *browser, f *fleet, quiet string) {
	now := time.Now()
	early, late := now.Add(-30*time.Minute), now.Add(-5*time.Minute)
	postEvents(t, quiet, "minutes", []map[string]any{
		{"ts": early.UnixMilli(), "label": "x", "temp": 5}, {"ts": early.UnixMilli(), "temp": 7}, {"ts": late.UnixMilli(), "temp": 9}})
	waitFor(t, 60*time.Second, "edge-c's minutes at the hub", func() (bool, string) {
		a := f.query(t, map[string]any{"pattern": "single(edge-c)", "stream": "minutes", "limit": 1, "count": true})
		return a.Count == 3, fmt.Sprint(a.Count)
	})
	b.route("#/node/edge-c")
	waitJS(b, "the field to average", `document.querySelector('#node-agg-field')?.value ?? ''`, func(s string) bool { return s == "temp" })
	b.do("open the table", chromedp.Evaluate[chromedp.Void](`document.querySelector('#node-agg-figures').open = true`))
	type row struct{ Start, Count, Avg string }
	rows := waitJS(b, "an hour of minutes with the average", `[...document.querySelectorAll('#node-agg-table tbody tr')].map(r => ({
		Start: r.dataset.start, Count: r.cells[1].textContent, Avg: r.cells[2]?.textContent ?? ''}))`,
		func(r []row) bool {
			return len(r) == 60 && slices.ContainsFunc(r, func(x row) bool { return x.Avg == "9" })
		})
	got := map[string]row{}
	for _, r := range rows {
		got[r.Start] = r
	}
	minute := func(t time.Time) string { return t.UTC().Truncate(time.Minute).Format(time.RFC3339) }
	if r := got[minute(early)]; r.Count != "2" || r.Avg != "6" {
		t.Errorf("minute of the two early events: %+v, want 2 events averaging 6", r)
	}
	if r := got[minute(late)]; r.Count != "1" || r.Avg != "9" {
		t.Errorf("minute of the late event: %+v, want 1 event of 9", r)
	}
	var charts struct{ Count, Avg string }
	if err := b.eval(`({Count: document.querySelector('#node-count-chart .chart').dataset.points,
		Avg: document.querySelector('#node-avg-chart .chart').dataset.points})`, &charts); err != nil || charts.Count != "60" || charts.Avg != "60" {
		t.Errorf("the minute charts plot %+v windows (%v), want 60 each", charts, err)
	}
	b.checkAccessible("node page minutes")
	b.screenshot("node-minutes-1280.png")
}
