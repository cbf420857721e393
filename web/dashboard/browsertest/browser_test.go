package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestDashboard runs the dashboard of a real hub with two simulated edges in
// headless Chromium: the overview, the query console against the API's own
// answers, the live tail, counters and a node page, at 1280 px and at 390 px.
func TestDashboard(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds the binaries and runs a browser; skipped with -short")
	}
	f := startFleet(t, "edge-a", "edge-b")
	b := newBrowser(t, exe)
	b.do("open the dashboard", chromedp.Navigate(f.hub+"/#/"))

	t.Run("overview shows both nodes online", func(t *testing.T) { testOverview(t, b.forTest(t)) })
	t.Run("query console matches the API", func(t *testing.T) { testQuery(t, b.forTest(t), f) })
	t.Run("live tail shows new events and pauses", func(t *testing.T) { testLive(t, b.forTest(t), f) })
	t.Run("counters show an edge's increment", func(t *testing.T) { testCounters(t, b.forTest(t), f) })
	t.Run("node page lists the node's events", func(t *testing.T) { testNode(t, b.forTest(t), f) })
	t.Run("cluster page names the hub", func(t *testing.T) { testCluster(t, b.forTest(t), f) })
	t.Run("overview screenshots at 1280 and 390 px", func(t *testing.T) { testOverviewScreenshots(t, b.forTest(t)) })
	// A third node, after the pages that count two.
	quiet := startQuietEdge(t, f, "edge-c")
	t.Run("aggregate mode charts the API's windows", func(t *testing.T) { testAggregate(t, b.forTest(t), f, quiet) })
	t.Run("node page charts minutes from the API", func(t *testing.T) { testNodeMinutes(t, b.forTest(t), f, quiet) })

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser console reported problems:\n%s", strings.Join(p, "\n"))
	}
}

func testOverview(t *testing.T, b *browser) {
	b.route("#/")
	type row struct {
		Node, Status, Events string
	}
	rows := waitJS(b, "both nodes online on the overview", `[...document.querySelectorAll('#nodes-table tbody tr[data-node]')].map(r => ({
		Node: r.dataset.node, Status: r.querySelector('.badge')?.textContent ?? '', Events: r.cells[3].textContent}))`,
		func(rs []row) bool {
			return len(rs) == 2 && rs[0].Status == "online" && rs[1].Status == "online"
		})
	if rows[0].Node != "edge-a" || rows[1].Node != "edge-b" {
		t.Errorf("nodes table rows = %+v, want edge-a and edge-b in order", rows)
	}
	waitJS(b, "fleet totals of 2/2 online", `document.querySelector('[data-stat="nodes-online"] dd')?.textContent`,
		func(s string) bool { return s == "2 / 2" })
	// A rate needs two polls of /api/v1/nodes; sim edges send every second.
	waitJS(b, "a fleet events/s figure", `document.querySelector('[data-stat="rate"] dd')?.textContent`,
		func(s string) bool { return s != "" && s != "–" })
	waitJS(b, "the throughput chart to plot two polls", `Number(document.querySelector('#main .chart')?.dataset.points ?? 0)`,
		func(n int) bool { return n >= 2 })
}

// tableKeys reads the data-key (node/epoch/seq) of every row of a table.
func tableKeys(id string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#%s tbody tr[data-key]')].map(r => r.dataset.key)`, id)
}

func testQuery(t *testing.T, b *browser, f *fleet) {
	const where = "seq <= 5"
	// Both edges have sent their first five events before the UI is asked.
	waitFor(t, 60*time.Second, "seq 1..5 of both nodes at the hub", func() (bool, string) {
		a := f.query(t, map[string]any{"pattern": "all", "where": where, "limit": 1, "count": true})
		return a.Count >= 10, fmt.Sprintf("count %d", a.Count)
	})
	b.route("#/query")
	b.do("fill in the query form",
		chromedp.WaitVisible(chromedp.CSS("#query-form")),
		chromedp.Click(chromedp.CSS(`#query-form input[type=radio][value="all"]`)),
		chromedp.SendKeys(chromedp.CSS("#q-where"), where),
		setValue("#q-limit", "4"),
		chromedp.Click(chromedp.CSS(`#query-form button[type=submit]`)))

	page1 := f.query(t, map[string]any{"pattern": "all", "where": where, "limit": 4, "count": true})
	keys := waitJS(b, "the first page of matches", tableKeys("q-matches"), func(k []string) bool { return len(k) == 4 })
	if !slices.Equal(keys, page1.keys()) {
		t.Errorf("page 1 rows = %v, API says %v", keys, page1.keys())
	}
	var verdict struct {
		Holds, Count, Page string
		Nodes              map[string]string
	}
	if err := b.eval(`({Holds: document.querySelector('#verdict').dataset.holds,
		Count: document.querySelector('#q-count-value').textContent,
		Page: document.querySelector('#q-page').textContent,
		Nodes: Object.fromEntries([...document.querySelectorAll('#q-nodes tbody tr[data-node]')].map(r => [r.dataset.node, r.cells[1].textContent]))})`, &verdict); err != nil {
		t.Fatal(err)
	}
	if verdict.Holds != fmt.Sprint(page1.Holds) || verdict.Count != fmt.Sprint(page1.Count) || verdict.Page != "Page 1" {
		t.Errorf("verdict %+v, API says holds=%v count=%d", verdict, page1.Holds, page1.Count)
	}
	for n, m := range page1.Nodes {
		if verdict.Nodes[n] != fmt.Sprint(m["matched"]) {
			t.Errorf("node %s: dashboard shows %q matched, API says %v", n, verdict.Nodes[n], m["matched"])
		}
	}
	if len(verdict.Nodes) != len(page1.Nodes) {
		t.Errorf("per-node matches %v, API says %v", verdict.Nodes, page1.Nodes)
	}
	b.checkAccessible("query console")
	b.screenshot("query-1280.png")

	page2 := f.query(t, map[string]any{"pattern": "all", "where": where, "limit": 4, "count": true, "after": page1.Next})
	b.do("next page", chromedp.Click(chromedp.CSS("#q-next")))
	keys = waitJS(b, "page 2", `document.querySelector('#q-page')?.textContent === 'Page 2' && `+tableKeys("q-matches"),
		func(k []string) bool { return len(k) > 0 })
	if !slices.Equal(keys, page2.keys()) {
		t.Errorf("page 2 rows = %v, API says %v", keys, page2.keys())
	}
	b.do("previous page", chromedp.Click(chromedp.CSS("#q-prev")))
	keys = waitJS(b, "back on page 1", `document.querySelector('#q-page')?.textContent === 'Page 1' && `+tableKeys("q-matches"),
		func(k []string) bool { return len(k) > 0 })
	if !slices.Equal(keys, page1.keys()) {
		t.Errorf("back on page 1: rows = %v, API says %v", keys, page1.keys())
	}

	// The address holds the query: a reload runs it again.
	var hash string
	if err := b.eval(`location.hash`, &hash); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hash, "where="+url.QueryEscape(where)) || !strings.Contains(hash, "limit=4") {
		t.Errorf("address %q does not carry the query", hash)
	}
	b.do("reload", chromedp.Reload())
	keys = waitJS(b, "the query to run again after a reload", tableKeys("q-matches"), func(k []string) bool { return len(k) == 4 })
	if !slices.Equal(keys, page1.keys()) {
		t.Errorf("after reload: rows = %v, API says %v", keys, page1.keys())
	}

	// A bad predicate: the API's message is shown under the input, and the
	// character at its column is marked.
	const bad = "seq >> 3"
	apiErr := f.query(t, map[string]any{"pattern": "all", "where": bad})
	if apiErr.Error == nil {
		t.Fatalf("the API accepted where %q", bad)
	}
	// From the keyboard: Enter in the where field runs the query.
	b.do("run a bad predicate",
		setValue("#q-where", ""),
		chromedp.SendKeys(chromedp.CSS("#q-where"), bad+kb.Enter))
	var shown struct{ Message, Mark, Invalid string }
	shown = waitJS(b, "the predicate error", `({Message: document.querySelector('#q-where-error .error')?.textContent ?? '',
		Mark: document.querySelector('#q-where-error mark')?.textContent ?? '',
		Invalid: document.querySelector('#q-where').getAttribute('aria-invalid') ?? ''})`,
		func(s struct{ Message, Mark, Invalid string }) bool { return s.Message != "" })
	if shown.Message != apiErr.Error.Message {
		t.Errorf("shown error %q, API says %q", shown.Message, apiErr.Error.Message)
	}
	var col int
	if _, err := fmt.Sscanf(apiErr.Error.Message[strings.LastIndex(apiErr.Error.Message, "column "):], "column %d", &col); err != nil || col < 1 || col > len(bad) {
		t.Fatalf("API message %q has no usable column", apiErr.Error.Message)
	}
	if shown.Mark != bad[col-1:col] || shown.Invalid != "true" {
		t.Errorf("marked %q (aria-invalid=%q), want %q at column %d", shown.Mark, shown.Invalid, bad[col-1:col], col)
	}
	var stale bool
	if err := b.eval(`!document.querySelector('#results').hidden`, &stale); err != nil || stale {
		t.Errorf("the previous query's results stay on show under the error (%v)", err)
	}
	b.screenshot("query-error-1280.png")

	// A shared address with a verdict that fails: edge-b has no match.
	const fails = `node == "edge-a" && seq <= 3`
	q := url.Values{"pattern": {"multiple(edge-a,edge-b)"}, "where": {fails}, "limit": {"10"}, "count": {"1"}}
	b.route("#/query?" + q.Encode())
	want := f.query(t, map[string]any{"pattern": "multiple(edge-a,edge-b)", "where": fails, "limit": 10, "count": true})
	if want.Holds {
		t.Fatalf("API says %q holds for multiple(edge-a,edge-b)", fails)
	}
	// The previous answer stays in the page until this one arrives: wait for
	// the verdict of this pattern.
	type shownVerdict struct {
		Pattern, Holds string
		Keys           []string
	}
	got := waitJS(b, "the verdict of "+want.Pattern, `(() => {
		const r = document.querySelector('#results');
		if (!r || r.hidden || r.getAttribute('aria-busy') === 'true') return {};
		return {Pattern: r.querySelector('#verdict code')?.textContent ?? '', Holds: r.querySelector('#verdict')?.dataset.holds ?? '',
			Keys: `+tableKeys("q-matches")+`};
	})()`, func(v shownVerdict) bool { return v.Pattern == want.Pattern })
	if got.Holds != "false" || !slices.Equal(got.Keys, want.keys()) {
		t.Errorf("verdict holds=%s rows %v; API says holds=%v rows %v", got.Holds, got.Keys, want.Holds, want.keys())
	}
}

// ingest posts one event to an edge's local API.
func ingest(t *testing.T, edge string, data map[string]any) {
	t.Helper()
	var res struct {
		Accepted int `json:"accepted"`
	}
	code, err := post(context.Background(), edge+"/api/v1/events?stream=bt", data, &res)
	if err != nil || code != 202 || res.Accepted != 1 {
		t.Fatalf("ingest %v at %s: status %d, %+v, %v", data, edge, code, res, err)
	}
}

func testLive(t *testing.T, b *browser, f *fleet) {
	marker := fmt.Sprintf("bt-%d", time.Now().UnixNano())
	b.route("#/live")
	b.do("start a live query",
		chromedp.WaitVisible(chromedp.CSS("#live-form")),
		chromedp.Click(chromedp.CSS(`#live-form input[type=radio][value="all"]`)),
		chromedp.SendKeys(chromedp.CSS("#l-where"), fmt.Sprintf("marker == %q", marker)),
		chromedp.Click(chromedp.CSS("#l-start")))
	// The class "live", not the "live-status" every state has: an event sent
	// before the stream is open is not replayed.
	waitJS(b, "the live query to connect", `document.querySelector('#l-status')?.className ?? ''`,
		func(s string) bool { return slices.Contains(strings.Fields(s), "live") })

	type row struct{ Node, Data string }
	rowsJS := `[...document.querySelectorAll('#l-events tbody tr[data-key]')].map(r => ({Node: r.cells[1].textContent, Data: r.cells[5].textContent}))`
	ingest(t, f.edges["edge-a"], map[string]any{"marker": marker, "n": 1})
	rows := waitJS(b, "the ingested event in the live tail", rowsJS, func(r []row) bool { return len(r) >= 1 })
	if len(rows) != 1 || rows[0].Node != "edge-a" || !strings.Contains(rows[0].Data, `"n":1`) {
		t.Errorf("live rows %+v, want the one event of edge-a with n=1", rows)
	}

	// Paused: the event is buffered, not shown; resumed: it is shown on top.
	b.do("pause", chromedp.Click(chromedp.CSS("#l-pause")))
	ingest(t, f.edges["edge-b"], map[string]any{"marker": marker, "n": 2})
	waitJS(b, "the paused tail to buffer the event", `document.querySelector('#l-counts')?.textContent ?? ''`,
		func(s string) bool { return strings.Contains(s, "1 buffered") })
	var shown []row
	if err := b.eval(rowsJS, &shown); err != nil || len(shown) != 1 {
		t.Errorf("while paused the tail shows %+v (%v), want only the first event", shown, err)
	}
	b.screenshot("live-paused-1280.png")
	b.do("resume", chromedp.Click(chromedp.CSS("#l-pause")))
	rows = waitJS(b, "the buffered event after resuming", rowsJS, func(r []row) bool { return len(r) >= 2 })
	if len(rows) != 2 || rows[0].Node != "edge-b" || !strings.Contains(rows[0].Data, `"n":2`) {
		t.Errorf("after resume rows %+v, want edge-b's n=2 on top of edge-a's n=1", rows)
	}
	b.checkAccessible("live tail")
	b.screenshot("live-1280.png")
}

func testCounters(t *testing.T, b *browser, f *fleet) {
	var res struct {
		Name  string `json:"name"`
		Node  string `json:"node"`
		Kind  string `json:"kind"`
		Value int64  `json:"value"`
	}
	code, err := post(context.Background(), f.edges["edge-a"]+"/api/v1/counters/doors", map[string]any{"delta": 3}, &res)
	if err != nil || code != 200 || res.Value != 3 || res.Node != "edge-a" || res.Kind != "sum" {
		t.Fatalf("POST /api/v1/counters/doors at edge-a: status %d, %+v, %v", code, res, err)
	}
	for _, w := range []struct {
		edge, name string
		body       map[string]any
	}{
		{"edge-a", "pressure", map[string]any{"kind": "max", "value": 4.25}},
		{"edge-b", "pressure", map[string]any{"kind": "max", "value": 1012.5}},
		{"edge-b", "firmware", map[string]any{"kind": "last", "value": 7}},
	} {
		if code, err := post(context.Background(), f.edges[w.edge]+"/api/v1/counters/"+w.name, w.body, nil); err != nil || code != 200 {
			t.Fatalf("POST %s %v at %s: status %d, %v", w.name, w.body, w.edge, code, err)
		}
	}
	b.route("#/counters")
	type counterRow struct{ Kind, Total, Shown, EdgeA, EdgeB, Writer, Written string }
	row := func(name string) string {
		return fmt.Sprintf(`(() => {
		const r = document.querySelector('#counters-table tr[data-counter=%q]');
		return r ? {Kind: r.querySelector('.badge.kind').textContent, Total: r.querySelector('td.total').dataset.value,
			Shown: r.querySelector('td.total').textContent,
			EdgeA: r.querySelector('td[data-node="edge-a"]')?.textContent ?? '', EdgeB: r.querySelector('td[data-node="edge-b"]')?.textContent ?? '',
			Writer: r.querySelector('td.updated')?.dataset.writer ?? '', Written: r.querySelector('td.updated')?.textContent ?? ''} : {};
	})()`, name)
	}
	got := waitJS(b, "counter doors = 3 with edge-a's 3", row("doors"), func(c counterRow) bool { return c.Total == "3" })
	if got.EdgeA != "3" || got.Kind != "sum" {
		t.Errorf("doors row %+v, want a sum with edge-a's share 3", got)
	}
	got = waitJS(b, "pressure = the larger of both edges' values", row("pressure"), func(c counterRow) bool { return c.Total == "1012.5" })
	if got.Kind != "max" || got.Shown != "1,012.5" || got.EdgeA != "4.25" || got.EdgeB != "1,012.5" || got.Written != "–" {
		t.Errorf("pressure row %+v, want the max 1,012.5 with edge-a's 4.25 and edge-b's 1,012.5", got)
	}
	got = waitJS(b, "firmware = edge-b's 7", row("firmware"), func(c counterRow) bool { return c.Total == "7" })
	if got.Kind != "last" || got.Writer != "edge-b" || !strings.HasSuffix(got.Written, " by edge-b") || got.EdgeB != "7" || got.EdgeA != "–" {
		t.Errorf("firmware row %+v, want the last value 7 written by edge-b", got)
	}
	var hub struct {
		Value int64            `json:"value"`
		Kind  string           `json:"kind"`
		Nodes map[string]int64 `json:"nodes"`
	}
	if err := f.getJSON("/api/v1/counters/doors", &hub); err != nil || hub.Value != 3 || hub.Nodes["edge-a"] != 3 || hub.Kind != "sum" {
		t.Errorf("hub API says doors = %+v (%v), dashboard shows %+v", hub, err, got)
	}
	b.checkAccessible("counters")
	b.screenshot("counters-1280.png")
}

func testNode(t *testing.T, b *browser, f *fleet) {
	b.route("#/node/edge-a")
	nodes := waitJS(b, "edge-a's recent events", `[...document.querySelectorAll('#node-events-table tbody tr[data-key]')].map(r => r.cells[1].textContent)`,
		func(n []string) bool { return len(n) > 0 })
	for _, n := range nodes {
		if n != "edge-a" {
			t.Fatalf("edge-a's page lists an event of %q", n)
		}
	}
	var gaps struct {
		Gaps []json.RawMessage `json:"gaps"`
	}
	if err := f.getJSON("/api/v1/nodes/edge-a/gaps", &gaps); err != nil {
		t.Fatal(err)
	}
	want := "#node-no-gaps"
	if len(gaps.Gaps) > 0 {
		want = "#node-gaps-table"
	}
	waitJS(b, "the gaps section", fmt.Sprintf(`document.querySelector(%q) !== null`, want), func(ok bool) bool { return ok })
	waitJS(b, "a node events/s figure", `document.querySelector('#node-stats [data-stat="rate"] dd')?.textContent ?? ''`,
		func(s string) bool { return s != "" && s != "–" })
	// The uplink's bytes per event, as the hub's node list has it.
	waitJS(b, "a node uplink bytes/event figure", `document.querySelector('#node-stats [data-stat="uplink-bytes-per-event"] dd')?.textContent ?? ''`,
		func(s string) bool { return strings.HasSuffix(s, " B") && s != "0.0 B" })
	b.checkAccessible("node page")
	b.screenshot("node-1280.png")
}

func testOverviewScreenshots(t *testing.T, b *browser) {
	b.route("#/")
	waitJS(b, "the overview", `document.querySelectorAll('#nodes-table tbody tr[data-node]').length`, func(n int) bool { return n == 2 })
	// The README's picture comes from TestDashboardTenThousandNodes, with a fleet
	// of a realistic size (TRIBUTARY_UPDATE_SCREENSHOTS=1).
	b.checkAccessible("overview")
	b.screenshot("overview-1280.png")

	b.do("narrow viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	var layout struct{ Page, Viewport, TableScroll, TableBox int }
	layout = waitJS(b, "the overview laid out at 390 px", `({Page: document.documentElement.scrollWidth, Viewport: window.innerWidth,
		TableScroll: document.querySelector('#nodes-table').scrollWidth, TableBox: document.querySelector('#nodes-table').parentElement.clientWidth})`,
		func(l struct{ Page, Viewport, TableScroll, TableBox int }) bool { return l.Viewport == 390 })
	if layout.Page > layout.Viewport {
		t.Errorf("at 390 px the page is %d px wide: it scrolls sideways as a whole", layout.Page)
	}
	if layout.TableScroll <= layout.TableBox {
		t.Logf("at 390 px the nodes table fits (%d ≤ %d px)", layout.TableScroll, layout.TableBox)
	}
	b.screenshot("overview-390.png")
	b.do("wide viewport again", chromedp.EmulateReset())
}
