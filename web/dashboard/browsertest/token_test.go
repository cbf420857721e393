package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// TestDashboardAsksForTheToken runs the dashboard of a hub started with
// --api-token: it asks for the token once, asks again after a wrong one,
// keeps the right one through a reload, and the live tail (server-sent
// events, which carry it as ?token=) follows a node.
func TestDashboardAsksForTheToken(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds the binaries and runs a browser; skipped with -short")
	}
	const token = "s3cret-token"
	_, edgeBin := buildBinaries(t)
	f, natsURL := startHub(t, "", "--api-token", token)
	listen := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	startProcess(t, "edge tok", edgeBin, "--node", "tok", "--hub", natsURL, "--data", t.TempDir(), "--listen", listen, "--source", "sim")

	b := newBrowser(t, exe)
	b.do("open the dashboard", chromedp.Navigate(f.hub+"/#/"))
	dialog := `(() => { const d = document.querySelector('#token-dialog'); return d ? {Open: d.open, Why: d.querySelector('#token-why').textContent} : {}; })()`
	type dlg struct {
		Open bool
		Why  string
	}
	first := waitJS(b, "the token dialog", dialog, func(d dlg) bool { return d.Open })
	if !strings.Contains(first.Why, "missing token") {
		t.Errorf("first dialog says %q, want the hub's reason (missing token)", first.Why)
	}
	b.checkAccessible("token dialog")
	b.do("type a wrong token", chromedp.SendKeys(chromedp.CSS("#token-input"), "wrong"), chromedp.Click(chromedp.CSS(`#token-dialog button[type=submit]`)))
	waitJS(b, "the dialog again, saying the token was wrong", dialog, func(d dlg) bool { return d.Open && strings.Contains(d.Why, "wrong token") })
	b.do("type the token", chromedp.SendKeys(chromedp.CSS("#token-input"), token), chromedp.Click(chromedp.CSS(`#token-dialog button[type=submit]`)))
	rowsExpr := `[...document.querySelectorAll('#nodes-table tbody tr[data-node]')].map(r => r.dataset.node)`
	waitJS(b, "the node on the overview", rowsExpr, func(rs []string) bool { return len(rs) == 1 && rs[0] == "tok" })

	// The session keeps the token: a reload asks nothing.
	b.do("reload", chromedp.Reload())
	waitJS(b, "the node after the reload", rowsExpr, func(rs []string) bool { return len(rs) == 1 && rs[0] == "tok" })
	var asked bool
	if err := b.eval(`!!document.querySelector('#token-dialog')`, &asked); err != nil || asked {
		t.Errorf("the dashboard asked for the token again after a reload (%v)", err)
	}

	b.route("#/live?pattern=single(tok)")
	waitJSWithin(b, 90*time.Second, "a live event from the node", `document.querySelectorAll('#l-events tbody tr[data-key]').length`,
		func(n int) bool { return n > 0 })
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser console reported problems:\n%s", strings.Join(p, "\n"))
	}
}
