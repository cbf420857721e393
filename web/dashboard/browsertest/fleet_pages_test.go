package browsertest

// The pages other than the overview, with the fleet of
// TestDashboardTenThousandNodes: the query console's node search, the counters,
// a phone's width, and the README's picture.

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/fleetsim"
	"github.com/tributary-edge/tributary/stream"
)

// counterNodes is how many nodes of the fleet add to the counter doors: more
// than the counters page shows as columns.
const counterNodes = 40

// testFleetCounters sends the counter doors from 40 nodes, node i adding i+1,
// and checks that the counters page shows its value, its 40 nodes and the five
// largest shares, in five columns (with the kind).
func testFleetCounters(t *testing.T, b *browser, f *fleet, nc *nats.Conn, sim fleetsim.Fleet) {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want int64
	for i := range counterNodes {
		want += int64(i + 1)
		frame, err := stream.EncodeControlV2(stream.KindCounters, stream.CodecNone, sim.Node(i), sim.Epoch,
			[]stream.CounterState{{Name: "doors", P: int64(i + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, stream.Subject(sim.Node(i), stream.CountersStream), frame); err != nil {
			t.Fatalf("publish node %d's counter: %v", i, err)
		}
	}
	b.route("#/counters")
	type row struct {
		Total, Kind, Nodes, Shares string
		Columns                    int
	}
	got := waitJS(b, fmt.Sprintf("doors = %d over %d nodes", want, counterNodes), `(() => {
		const r = document.querySelector('#counters-table tr[data-counter="doors"]');
		return r ? {Total: r.querySelector('td.total').dataset.value, Kind: r.dataset.kind, Nodes: r.cells[3].textContent, Shares: r.cells[4].textContent,
			Columns: document.querySelectorAll('#counters-table thead th').length} : {};
	})()`, func(r row) bool { return r.Total == fmt.Sprint(want) && r.Nodes == fmt.Sprint(counterNodes) })
	wantShares := "sim-0039 40, sim-0038 39, sim-0037 38, sim-0036 37, sim-0035 36"
	if got.Shares != wantShares || got.Kind != "sum" || got.Columns != 5 {
		t.Errorf("doors row %+v, want a sum with the shares %q in 5 columns", got, wantShares)
	}
	b.checkAccessible("counters of a fleet")
	b.screenshot("fleet-counters-1280.png")
}

// testFleetNarrow checks that the overview and the query console's node search
// fit a phone's width with 10,000 nodes.
func testFleetNarrow(t *testing.T, b *browser) {
	b.do("narrow viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.route("#/")
	type layout struct{ Page, Viewport, Rows int }
	layoutJS := `({Page: document.documentElement.scrollWidth, Viewport: window.innerWidth,
		Rows: document.querySelectorAll('#nodes-table tbody tr[data-node]').length})`
	l := waitJS(b, "the overview at 390 px", layoutJS, func(l layout) bool { return l.Viewport == 390 && l.Rows == 50 })
	if l.Page > l.Viewport {
		t.Errorf("at 390 px the overview is %d px wide: it scrolls sideways as a whole", l.Page)
	}
	b.screenshot("fleet-overview-390.png")
	b.route("#/query?pattern=" + url.QueryEscape("multiple(sim-0100,sim-9999)"))
	b.do("search at 390 px",
		chromedp.WaitVisible(chromedp.CSS("#query-form .node-search")),
		chromedp.Click(chromedp.CSS("#query-form .node-search")),
		chromedp.SendKeys(chromedp.CSS("#query-form .node-search"), "sim-00"))
	waitJS(b, "matches for sim-00", optionsJS, func(o []string) bool { return len(o) == 20 && o[0] == "sim-0000" })
	l = waitJS(b, "the query console at 390 px", layoutJS, func(l layout) bool { return l.Viewport == 390 })
	if l.Page > l.Viewport {
		t.Errorf("at 390 px the query console is %d px wide: it scrolls sideways as a whole", l.Page)
	}
	b.screenshot("fleet-query-390.png")
}

// optionsJS lists the node search's offered matches in the query form.
const optionsJS = `[...document.querySelectorAll('#query-form [role=option]')].map(o => o.dataset.node)`

func testFleetQuery(t *testing.T, b *browser, f *fleet) {
	b.route("#/query")
	b.do("choose single",
		chromedp.WaitVisible(chromedp.CSS("#query-form")),
		chromedp.Click(chromedp.CSS(`#query-form input[type=radio][value="single"]`)),
		chromedp.Click(chromedp.CSS("#query-form .node-search")),
		chromedp.SendKeys(chromedp.CSS("#query-form .node-search"), "sim-"))
	first := f.nodes(t, url.Values{"limit": {"20"}, "prefix": {"sim-"}})
	opts := waitJS(b, "20 matches for sim-", optionsJS, func(o []string) bool { return slices.Equal(o, first.names()) })
	var size int
	if err := b.eval(domSizeJS, &size); err != nil || size > maxElements {
		t.Errorf("the query console holds %d elements (%v), want at most %d", size, err, maxElements)
	}
	t.Logf("query console with %d matches offered: %d elements", len(opts), size)
	b.checkAccessible("query console's node search")
	b.screenshot("fleet-query-search-1280.png")

	// From the keyboard: the rest of the name, the one match, Enter picks it.
	b.do("type the rest of the name", chromedp.SendKeys(chromedp.CSS("#query-form .node-search"), "0042"))
	waitJS(b, "the one match sim-0042", optionsJS, func(o []string) bool { return slices.Equal(o, []string{"sim-0042"}) })
	b.do("pick it", chromedp.SendKeys(chromedp.CSS("#query-form .node-search"), kb.ArrowDown+kb.Enter))
	waitJS(b, "the pattern single(sim-0042)", `document.querySelector('#query-form .pattern-preview')?.textContent`,
		func(s string) bool { return s == "single(sim-0042)" })
	var ran bool
	if err := b.eval(`!document.querySelector('#results').hidden`, &ran); err != nil || ran {
		t.Errorf("Enter on a match ran the query (%v); it should only pick the node", err)
	}
	b.do("run it", chromedp.Click(chromedp.CSS(`#query-form button[type=submit]`)))
	want := f.query(t, map[string]any{"pattern": "single(sim-0042)", "limit": 100, "count": true})
	if !want.Holds || want.Count != 10 {
		t.Fatalf("API: single(sim-0042) holds=%v count=%d, want true and 10", want.Holds, want.Count)
	}
	type shownVerdict struct {
		Pattern, Holds, Count string
		Nodes, Keys           []string
	}
	verdictJS := `(() => {
		const r = document.querySelector('#results');
		if (!r || r.hidden || r.getAttribute('aria-busy') === 'true') return {};
		return {Pattern: r.querySelector('#verdict code')?.textContent ?? '', Holds: r.querySelector('#verdict')?.dataset.holds ?? '',
			Count: r.querySelector('#q-count-value')?.textContent ?? '',
			Nodes: [...r.querySelectorAll('#q-nodes tbody tr[data-node]')].map(x => x.dataset.node),
			Keys: ` + tableKeys("q-matches") + `};
	})()`
	got := waitJS(b, "the verdict of single(sim-0042)", verdictJS, func(v shownVerdict) bool { return v.Pattern == "single(sim-0042)" })
	if got.Holds != "true" || got.Count != "10" || !slices.Equal(got.Nodes, []string{"sim-0042"}) || !slices.Equal(got.Keys, want.keys()) {
		t.Errorf("dashboard shows %+v; API says holds=%v count=%d rows %v", got, want.Holds, want.Count, want.keys())
	}

	// multiple: one node picked with the mouse, one typed whole and added with
	// Enter, one added and removed again.
	chipsJS := `[...document.querySelectorAll('#query-form .chip')].map(c => c.dataset.node)`
	input := chromedp.CSS("#query-form .node-search")
	b.do("choose multiple", chromedp.Click(chromedp.CSS(`#query-form input[type=radio][value="multiple"]`)))
	b.do("clear the carried-over node", chromedp.Click(chromedp.CSS(`#query-form .chip-remove`)))
	waitJS(b, "no chosen node", chipsJS, func(c []string) bool { return len(c) == 0 })
	b.do("search sim-0100", chromedp.Click(input), chromedp.SendKeys(input, "sim-0100"))
	waitJS(b, "the match sim-0100", optionsJS, func(o []string) bool { return slices.Equal(o, []string{"sim-0100"}) })
	b.do("click it", chromedp.Click(chromedp.CSS(`#query-form [role=option][data-node="sim-0100"]`)))
	b.do("type sim-9999 and Enter", chromedp.SendKeys(input, "sim-9999"+kb.Enter))
	waitJS(b, "two chosen nodes", chipsJS, func(c []string) bool { return slices.Equal(c, []string{"sim-0100", "sim-9999"}) })
	// Enter in the node search added a node; it did not run the query.
	if err := b.eval(verdictJS, &got); err != nil || got.Pattern != "single(sim-0042)" {
		t.Errorf("after Enter in the node search the results show %+v (%v), want single(sim-0042)'s still", got, err)
	}
	b.do("add sim-0500", chromedp.SendKeys(input, "sim-0500"), chromedp.Click(chromedp.CSS("#query-form .node-add")))
	waitJS(b, "three chosen nodes", chipsJS, func(c []string) bool { return slices.Equal(c, []string{"sim-0100", "sim-9999", "sim-0500"}) })
	b.do("remove sim-0500", chromedp.Click(chromedp.CSS(`#query-form .chip[data-node="sim-0500"] .chip-remove`)))
	waitJS(b, "two chosen nodes", chipsJS, func(c []string) bool { return slices.Equal(c, []string{"sim-0100", "sim-9999"}) })
	// A name the hub does not know is not added.
	b.do("add an unknown name", chromedp.SendKeys(input, "sim-10000"), chromedp.Click(chromedp.CSS("#query-form .node-add")))
	waitJS(b, "the unknown name refused", `document.querySelector('#query-form .node-search-field .hint')?.textContent ?? ''`,
		func(s string) bool { return strings.Contains(s, `no node named "sim-10000"`) })
	b.checkAccessible("query console with chosen nodes")
	b.screenshot("fleet-query-multiple-1280.png")
	b.do("clear the unknown name and run", setValue("#query-form .node-search", ""), chromedp.Click(chromedp.CSS(`#query-form button[type=submit]`)))
	got = waitJS(b, "the verdict of multiple(sim-0100,sim-9999)", verdictJS, func(v shownVerdict) bool { return v.Pattern == "multiple(sim-0100,sim-9999)" })
	if got.Holds != "true" || got.Count != "20" || !slices.Equal(got.Nodes, []string{"sim-0100", "sim-9999"}) {
		t.Errorf("multiple(sim-0100,sim-9999): dashboard shows %+v, want it to hold with 20 matches over both", got)
	}
	if err := b.eval(domSizeJS, &size); err != nil || size > maxElements {
		t.Errorf("the query console holds %d elements (%v), want at most %d", size, err, maxElements)
	}
	b.screenshot("fleet-query-1280.png")

	// all: the answer names every node of the fleet; the table lists 50.
	b.route("#/query?pattern=all&limit=10&count=1")
	got = waitJS(b, "the verdict of all", verdictJS, func(v shownVerdict) bool { return v.Pattern == "all" })
	var caption string
	if err := b.eval(`document.querySelector('#q-nodes-caption')?.textContent ?? ''`, &caption); err != nil {
		t.Fatal(err)
	}
	if got.Holds != "true" || got.Count != "100,000" || len(got.Nodes) != 50 || got.Nodes[0] != "sim-0000" ||
		!strings.Contains(caption, "50 of the 10,000 nodes in scope (0 without a match in the range)") {
		t.Errorf("all: holds %s, count %s, %d node rows from %v, caption %q; want it to hold over 100,000 events with 50 of 10,000 nodes listed",
			got.Holds, got.Count, len(got.Nodes), got.Nodes[:min(len(got.Nodes), 1)], caption)
	}
	if err := b.eval(domSizeJS, &size); err != nil || size > maxElements {
		t.Errorf("the query console's answer over 10,000 nodes holds %d elements (%v), want at most %d", size, err, maxElements)
	}
	b.screenshot("fleet-query-all-1280.png")
}

// updateFleetScreenshot makes the README's picture of the overview: for a
// minute and a half, 200 nodes keep sending (five of them much faster than the
// rest, at rates that change), one of them loses a range of seqs, and the
// overview is captured once its chart holds 45 polls.
func updateFleetScreenshot(t *testing.T, b *browser, nc *nats.Conn, sim fleetsim.Fleet) {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	hot := map[int]float64{17: 0, 4242: 1.3, 777: 2.6, 9001: 3.9, 1234: 5.2} // node → phase
	next := map[int]int{}
	send := func(i, n int) {
		first := next[i]
		if first == 0 {
			first = sim.Events + 1
		}
		if i == 5555 && first == sim.Events+1 {
			first += 30 // 30 seqs that never arrive: missing
		}
		last := first + n - 1
		frame, err := sim.Frame(i, first, last)
		if err != nil {
			t.Error(err)
			return
		}
		m := nats.NewMsg(stream.Subject(sim.Node(i), sim.Stream))
		m.Data = frame
		m.Header.Set(jetstream.MsgIDHeader, stream.MsgID(sim.Node(i), sim.Epoch, sim.Stream, uint64(first), uint64(last)))
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Error(err)
			return
		}
		next[i] = last + 1
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for s := 0; ; s++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i := 5500; i < 5700; i++ {
				send(i, 1+(i*13+s)%3)
			}
			for i, phase := range hot {
				send(i, 12+int(10*math.Sin(float64(s)/6+phase)))
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	b.route("#/")
	b.do("sort the table by the fastest", pickSelect("#nodes-sort", "rate"))
	waitJSWithin(b, 3*time.Minute, "45 polls in the chart", `Number(document.querySelector('#main .chart')?.dataset.points ?? 0)`,
		func(n int) bool { return n >= 45 })
	b.screenshot("fleet-overview-busy-1280.png")
	// The README shows the top of the page: totals, chart and the table's first
	// rows, not all fifty.
	b.do("a README-sized viewport", chromedp.EmulateViewport(1280, 1180))
	waitJS(b, "the chart at 1280 px", `document.querySelector('#main .chart').clientWidth`, func(w int) bool { return w > 1000 })
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(moduleRoot(t), "docs", "screenshots", "overview.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", p)
}
