package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/fleetsim"
)

// The simulated fleet of TestDashboardTenThousandNodes: 10,000 nodes of ten
// events each; every tenth node (3, 13, 23, …) never sends a heartbeat and so
// is offline; the others report a backlog that differs from node to node.
const simNodes = 10000

func simOnline(i int) bool { return i%10 != 3 }

// simBacklog is a permutation of 0..10006 over the nodes (10007 is prime), so
// that the largest backlog belongs to one node.
func simBacklog(i int) int64 { return int64(i*7919) % 10007 }

// nodesAnswer is the part of GET /api/v1/nodes the test compares with.
type nodesAnswer struct {
	Nodes []struct {
		Node     string `json:"node"`
		Online   bool   `json:"online"`
		Buffered int64  `json:"buffered"`
	} `json:"nodes"`
	Next   string `json:"next"`
	Totals struct {
		Nodes  int   `json:"nodes"`
		Online int   `json:"online"`
		Events int64 `json:"events"`
	} `json:"totals"`
}

func (a nodesAnswer) names() []string {
	out := make([]string, 0, len(a.Nodes))
	for _, n := range a.Nodes {
		out = append(out, n.Node)
	}
	return out
}

// nodes asks the hub's node list directly.
func (f *fleet) nodes(t *testing.T, q url.Values) nodesAnswer {
	t.Helper()
	var a nodesAnswer
	if err := f.getJSON("/api/v1/nodes?"+q.Encode(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// tableView is what the overview's node table shows.
type tableView struct {
	Rows, Backlog, Status []string
	Count                 string
	Loads                 int
	PrevDisabled          bool
	NextDisabled          bool
}

const tableViewJS = `(() => {
	const rows = [...document.querySelectorAll('#nodes-table tbody tr[data-node]')];
	return {
		Rows: rows.map(r => r.dataset.node),
		Backlog: rows.map(r => r.cells[5].textContent),
		Status: rows.map(r => r.querySelector('.badge')?.textContent ?? ''),
		Count: document.querySelector('#nodes-count')?.textContent ?? '',
		Loads: Number(document.querySelector('#nodes-table')?.dataset.loads ?? 0),
		PrevDisabled: document.querySelector('#nodes-prev')?.disabled ?? false,
		NextDisabled: document.querySelector('#nodes-next')?.disabled ?? false,
	};
})()`

// waitTable waits until the node table shows rows want with the row count count.
func waitTable(b *browser, what string, want []string, count string) tableView {
	b.t.Helper()
	return waitJS(b, what, tableViewJS, func(v tableView) bool { return slices.Equal(v.Rows, want) && v.Count == count })
}

// domSize counts the page's elements.
const domSizeJS = `document.getElementsByTagName('*').length`

// A page of the dashboard holds a few hundred elements; one table row per node
// of the fleet would be more than 100,000.
const maxElements = 2500

// pickSelect chooses an option of a <select> and fires change, as a user's
// choice does.
func pickSelect(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const s = document.querySelector(%q);
		s.value = %q;
		s.dispatchEvent(new Event('change', {bubbles: true}));
	})()`, sel, value))
}

// TestDashboardTenThousandNodes runs the dashboard of a real hub that knows
// 10,000 nodes, published by the fleet simulator through JetStream, in headless
// Chromium: the overview shows the fleet's totals and one page of the node
// table, pages forwards and back, searches, sorts and filters; the chart has the
// fleet and five nodes, not 10,000 lines; the query console finds nodes by
// search and runs single and multiple over them; and no page grows with the
// fleet.
func TestDashboardTenThousandNodes(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds the hub, publishes 10,000 nodes and runs a browser; skipped with -short")
	}
	began := time.Now()
	f, natsURL := startHub(t, memDir(t))
	t.Logf("hub built and up in %v", time.Since(began).Round(time.Millisecond))
	sim := fleetsim.Default(simNodes)
	sim.Events, sim.Batch = 10, 10
	nc := publishFleet(t, natsURL, sim)
	t.Logf("10,000 nodes published after %v", time.Since(began).Round(time.Millisecond))

	// Heartbeats keep the nodes online (a node is online for 15 s after one)
	// for as long as the test runs.
	beat := func() {
		if _, err := fleetsim.Heartbeats(nc, sim, time.Now(), simOnline, simBacklog); err != nil {
			t.Errorf("heartbeats: %v", err)
		}
	}
	beat()
	stopBeats := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopBeats:
				return
			case <-tick.C:
				beat()
			}
		}
	})
	t.Cleanup(func() {
		close(stopBeats)
		beats.Wait()
	})
	wantOnline := 0
	var maxBacklog int64 = -1
	maxNode := ""
	for i := range simNodes {
		if simOnline(i) {
			wantOnline++
			if simBacklog(i) > maxBacklog {
				maxBacklog, maxNode = simBacklog(i), sim.Node(i)
			}
		}
	}
	waitFor(t, 60*time.Second, "10,000 nodes with their events and heartbeats at the hub", func() (bool, string) {
		var a nodesAnswer
		if err := f.getJSON("/api/v1/nodes?limit=1", &a); err != nil {
			return false, err.Error()
		}
		return a.Totals.Nodes == simNodes && a.Totals.Events == simNodes*10 && a.Totals.Online == wantOnline, fmt.Sprintf("%+v", a.Totals)
	})
	t.Logf("the hub's totals say 10,000 nodes after %v", time.Since(began).Round(time.Millisecond))

	b := newBrowser(t, exe)
	b.do("open the dashboard", chromedp.Navigate(f.hub+"/#/"))

	t.Run("overview pages, searches, sorts and filters", func(t *testing.T) {
		testFleetOverview(t, b.forTest(t), f, maxNode, maxBacklog)
	})
	t.Run("query console picks nodes by search", func(t *testing.T) { testFleetQuery(t, b.forTest(t), f) })
	t.Run("counters list the largest shares, not a column per node", func(t *testing.T) { testFleetCounters(t, b.forTest(t), f, nc, sim) })
	if os.Getenv("TRIBUTARY_UPDATE_SCREENSHOTS") != "" {
		t.Run("README screenshot of a busy fleet", func(t *testing.T) { updateFleetScreenshot(t, b.forTest(t), nc, sim) })
	}
	// Last: the viewport does not fully come back from a phone's emulation.
	t.Run("at 390 px", func(t *testing.T) { testFleetNarrow(t, b.forTest(t)) })

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser console reported problems:\n%s", strings.Join(p, "\n"))
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// memDir is a temp dir in memory (/dev/shm) where there is one, else on disk.
// The hub syncs every JetStream write and index commit to disk; publishing
// 10,000 nodes is 10,000 syncs, which take most of a minute on a busy disk
// and nothing in memory. This test is about the dashboard, not durability.
func memDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "tributary-browsertest-")
	if err != nil {
		t.Logf("no /dev/shm (%v): the hub keeps its data on disk", err)
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// publishFleet publishes the simulated fleet's events to the hub and returns
// the connection, for heartbeats; it is closed when the test ends.
func publishFleet(t *testing.T, natsURL string, sim fleetsim.Fleet) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleetsim.Publish(ctx, js, sim, nil); err != nil {
		t.Fatal(err)
	}
	return nc
}

func testFleetOverview(t *testing.T, b *browser, f *fleet, maxNode string, maxBacklog int64) {
	b.route("#/")
	waitJS(b, "the fleet totals", `document.querySelector('[data-stat="nodes-online"] dd')?.textContent`,
		func(s string) bool { return s == "9,000 / 10,000" })
	waitJS(b, "the header's fleet status", `document.querySelector('#hub-status')?.textContent`,
		func(s string) bool { return s == "Hub up · 9,000/10,000 nodes online" })
	var events string
	if err := b.eval(`document.querySelector('[data-stat="events"] dd')?.textContent`, &events); err != nil || events != "100,000" {
		t.Errorf("events total %q (%v), want 100,000", events, err)
	}

	// One page of 50 rows, the API's first page by name.
	first := f.nodes(t, url.Values{"limit": {"50"}})
	v := waitTable(b, "the first page of the node table", first.names(), "rows 1–50 of 10,000")
	if !v.PrevDisabled || v.NextDisabled {
		t.Errorf("on page 1: Previous disabled %v, Next disabled %v; want true, false", v.PrevDisabled, v.NextDisabled)
	}
	var size int
	if err := b.eval(domSizeJS, &size); err != nil || size > maxElements {
		t.Errorf("the overview of 10,000 nodes holds %d elements (%v), want at most %d", size, err, maxElements)
	}
	t.Logf("overview at 10,000 nodes: %d elements", size)

	// At most the fleet and five nodes in the chart.
	// The fleet's line is on a scale of its own: it is thousands of times a
	// node's.
	var lines struct{ Series, Legend, Scales int }
	lines = waitJS(b, "the throughput chart", `(() => {
		const c = document.querySelector('#main .chart');
		return {Series: Number(c?.dataset.series ?? 0), Scales: Number(c?.dataset.scales ?? 0),
			Legend: document.querySelectorAll('#main .chart .u-legend .u-series').length};
	})()`, func(l struct{ Series, Legend, Scales int }) bool { return l.Series >= 2 })
	if lines.Series > 6 || lines.Legend > 7 || lines.Scales != 2 {
		t.Errorf("the chart has %d lines (%d legend entries) on %d scales, want the fleet and at most five nodes, on two",
			lines.Series, lines.Legend, lines.Scales)
	}
	b.checkAccessible("overview of 10,000 nodes")
	b.screenshot("fleet-overview-1280.png")

	// Next, next, previous, previous: the API's pages, in order, and the page
	// stays put across the table's refreshes.
	second := f.nodes(t, url.Values{"limit": {"50"}, "after": {first.Next}})
	third := f.nodes(t, url.Values{"limit": {"50"}, "after": {second.Next}})
	b.do("next page", chromedp.Click(chromedp.CSS("#nodes-next")))
	v = waitTable(b, "page 2", second.names(), "rows 51–100 of 10,000")
	waitJS(b, "two refreshes of page 2", tableViewJS, func(w tableView) bool { return w.Loads >= v.Loads+2 })
	v = waitTable(b, "page 2 after refreshes", second.names(), "rows 51–100 of 10,000")
	b.do("next page again", chromedp.Click(chromedp.CSS("#nodes-next")))
	waitTable(b, "page 3", third.names(), "rows 101–150 of 10,000")
	b.do("previous page", chromedp.Click(chromedp.CSS("#nodes-prev")))
	waitTable(b, "back on page 2", second.names(), "rows 51–100 of 10,000")
	b.do("previous page again", chromedp.Click(chromedp.CSS("#nodes-prev")))
	v = waitTable(b, "back on page 1", first.names(), "rows 1–50 of 10,000")
	if !v.PrevDisabled {
		t.Error("Previous is enabled on page 1")
	}

	// A search narrows the table to the nodes whose name starts with it; typing
	// keeps its focus while the table refreshes.
	found := f.nodes(t, url.Values{"limit": {"50"}, "prefix": {"sim-012"}})
	if len(found.Nodes) != 10 {
		t.Fatalf("the API finds %d nodes starting with sim-012, want 10", len(found.Nodes))
	}
	b.do("search sim-012", chromedp.Click(chromedp.CSS("#nodes-search")), chromedp.SendKeys(chromedp.CSS("#nodes-search"), "sim-012"))
	v = waitTable(b, "the nodes starting with sim-012", found.names(), "rows 1–10")
	if !v.NextDisabled || !v.PrevDisabled {
		t.Errorf("a search with one page: Previous disabled %v, Next disabled %v; want both", v.PrevDisabled, v.NextDisabled)
	}
	waitJS(b, "two refreshes of the search", tableViewJS, func(w tableView) bool { return w.Loads >= v.Loads+2 })
	var focus struct{ ID, Hash string }
	if err := b.eval(`({ID: document.activeElement?.id ?? '', Hash: location.hash})`, &focus); err != nil {
		t.Fatal(err)
	}
	if focus.ID != "nodes-search" {
		t.Errorf("after the table refreshed, focus is on %q, want the search box", focus.ID)
	}
	if focus.Hash != "#/?q=sim-012" {
		t.Errorf("address %q, want it to carry the search", focus.Hash)
	}
	b.screenshot("fleet-search-1280.png")
	b.do("clear the search", chromedp.SendKeys(chromedp.CSS("#nodes-search"), strings.Repeat(kb.Backspace, len("sim-012"))))
	waitTable(b, "the whole fleet again", first.names(), "rows 1–50 of 10,000")

	// Largest backlog first.
	byBacklog := f.nodes(t, url.Values{"limit": {"50"}, "sort": {"backlog"}})
	if byBacklog.Nodes[0].Node != maxNode || byBacklog.Nodes[0].Buffered != maxBacklog {
		t.Fatalf("the API's largest backlog is %+v, want %s with %d", byBacklog.Nodes[0], maxNode, maxBacklog)
	}
	b.do("sort by backlog", pickSelect("#nodes-sort", "backlog"))
	v = waitTable(b, "the nodes by backlog", byBacklog.names(), "rows 1–50 of 10,000")
	if v.Backlog[0] != fmt.Sprintf("%d,%03d", maxBacklog/1000, maxBacklog%1000) {
		t.Errorf("first row %s shows backlog %q, want %d", v.Rows[0], v.Backlog[0], maxBacklog)
	}

	// Offline only, still by backlog: the thousand nodes that never sent a
	// heartbeat, with a row count out of them.
	offline := f.nodes(t, url.Values{"limit": {"50"}, "sort": {"backlog"}, "online": {"false"}})
	b.do("show offline nodes", pickSelect("#nodes-online", "false"))
	v = waitTable(b, "the offline nodes", offline.names(), "rows 1–50 of 1,000")
	for i, s := range v.Status {
		if s != "offline" {
			t.Errorf("offline filter: row %s is %q", v.Rows[i], s)
			break
		}
	}

	// The address keeps the sort and the filter through a reload.
	b.do("reload", chromedp.Reload())
	v = waitTable(b, "the offline nodes by backlog after a reload", offline.names(), "rows 1–50 of 1,000")
	var controls struct{ Sort, Online string }
	if err := b.eval(`({Sort: document.querySelector('#nodes-sort').value, Online: document.querySelector('#nodes-online').value})`, &controls); err != nil ||
		controls.Sort != "backlog" || controls.Online != "false" {
		t.Errorf("after a reload the controls say %+v (%v), want backlog and offline", controls, err)
	}

	// The Overview link starts again from the whole fleet by name.
	b.do("the Overview link", chromedp.Click(chromedp.CSS(`nav a[data-nav="overview"]`)))
	waitTable(b, "the whole fleet by name", first.names(), "rows 1–50 of 10,000")
}
