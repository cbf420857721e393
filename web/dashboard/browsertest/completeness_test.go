package browsertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// TestDashboardShowsCompletenessAndClocks runs two edges, one of whose
// clocks is 90 s ahead: the overview flags that node's clock and not the
// other's; the query console says whether its verdict is certain and which
// nodes are complete; the live tail says how complete its scope is.
func TestDashboardShowsCompletenessAndClocks(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds the binaries and runs a browser; skipped with -short")
	}
	_, edgeBin := buildBinaries(t)
	f, natsURL := startHub(t, "")
	for _, e := range []struct{ node, skew string }{{"punctual", "0s"}, {"skewed", "90s"}} {
		listen := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
		startProcess(t, "edge "+e.node, edgeBin, "--node", e.node, "--hub", natsURL, "--data", t.TempDir(), "--listen", listen, "--clock-skew", e.skew)
		f.edges[e.node] = "http://" + listen
		waitFor(t, 60*time.Second, e.node+"'s /healthz", func() (bool, string) {
			res, err := http.Get(f.edges[e.node] + "/healthz")
			if err != nil {
				return false, err.Error()
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK, res.Status
		})
		ingest(t, f.edges[e.node], map[string]any{"temp": 20})
	}
	waitFor(t, 60*time.Second, "both nodes complete with a clock offset", func() (bool, string) {
		var body struct {
			Nodes []struct {
				Node          string   `json:"node"`
				Complete      bool     `json:"complete"`
				ClockOffsetMS *float64 `json:"clock_offset_ms"`
			} `json:"nodes"`
		}
		if err := f.getJSON("/api/v1/nodes", &body); err != nil {
			return false, err.Error()
		}
		ok := len(body.Nodes) == 2
		for _, n := range body.Nodes {
			ok = ok && n.Complete && n.ClockOffsetMS != nil
		}
		return ok, fmt.Sprintf("%+v", body.Nodes)
	})

	b := newBrowser(t, exe)
	b.do("open the overview", chromedp.Navigate(f.hub+"/#/"))
	type clock struct{ Node, Text, Flag string }
	clocks := waitJS(b, "the clock column", `[...document.querySelectorAll('#nodes-table tbody tr[data-node]')].map(r => ({
		Node: r.dataset.node, Text: r.cells[8].textContent, Flag: r.cells[8].querySelector('[data-clock]')?.dataset.clock ?? ''}))`,
		func(cs []clock) bool { return len(cs) == 2 && cs[0].Text != "–" && cs[1].Text != "–" })
	for _, c := range clocks {
		switch {
		case c.Node == "skewed" && (c.Flag != "off" || !strings.Contains(c.Text, "-90")):
			t.Errorf("skewed node's clock cell %+v, want it flagged with about -90 s", c)
		case c.Node == "punctual" && (c.Flag != "" || c.Text != "ok"):
			t.Errorf("punctual node's clock cell %+v, want ok", c)
		}
	}
	b.checkAccessible("overview with clocks")

	b.route("#/query?pattern=all&where=" + "temp%20%3E%2030" + "&count=1")
	type verdict struct{ Holds, Certain, Text string }
	v := waitJS(b, "a verdict with its certainty", `(() => ({Holds: document.querySelector('#verdict')?.dataset.holds ?? '',
		Certain: document.querySelector('#q-certain')?.dataset.certain ?? '', Text: document.querySelector('#q-certain')?.textContent ?? ''}))()`,
		func(v verdict) bool { return v.Certain != "" })
	if v.Holds != "false" || v.Certain != "true" || !strings.HasPrefix(v.Text, "Certain") {
		t.Errorf("all temp > 30 over two complete nodes without a match: %+v, want a certain false verdict", v)
	}
	var complete []string
	if err := b.eval(`[...document.querySelectorAll('#q-nodes tbody tr[data-node]')].map(r => r.dataset.node + ':' + r.dataset.complete + ':' + r.cells[3].textContent)`, &complete); err != nil {
		t.Fatal(err)
	}
	if strings.Join(complete, " ") != "punctual:true:yes skewed:true:yes" {
		t.Errorf("per-node completeness %q", complete)
	}

	b.route("#/live?pattern=all")
	waitJSWithin(b, 30*time.Second, "the live tail's completeness line", `document.querySelector('#l-complete')?.textContent ?? ''`,
		func(s string) bool { return strings.HasPrefix(s, "2 of 2 nodes in scope complete") })
	b.checkAccessible("live tail with completeness")
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser console reported problems:\n%s", strings.Join(p, "\n"))
	}
}
