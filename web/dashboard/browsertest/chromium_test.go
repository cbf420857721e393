package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium tab on the hub's dashboard, used by one test
// or subtest at a time (see forTest).
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
	log       *consoleLog
}

// consoleLog collects what the page writes to the browser console.
type consoleLog struct {
	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

// forTest returns the same tab reporting failures to t.
func (b *browser) forTest(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// artifactsDir is $TRIBUTARY_ARTIFACTS/dashboard, or a temp dir when unset.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("TRIBUTARY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	b := &browser{t: t, ctx: bctx, artifacts: artifactsDir(t), log: &consoleLog{}}
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.log.mu.Lock()
			b.log.messages = append(b.log.messages, m)
			b.log.mu.Unlock()
		}
	}()
	t.Logf("screenshots go to %s", b.artifacts)
	return b
}

// do runs steps and fails the test on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value into v.
func (b *browser) eval(expr string, v any) error {
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// waitJS polls a JavaScript expression until cond accepts its value or the
// deadline passes, and returns the accepted value.
func waitJS[T any](b *browser, what, expr string, cond func(T) bool) T {
	b.t.Helper()
	return waitJSWithin(b, 60*time.Second, what, expr, cond)
}

// waitJSWithin is waitJS with a deadline of d.
func waitJSWithin[T any](b *browser, d time.Duration, what, expr string, cond func(T) bool) T {
	b.t.Helper()
	deadline := time.Now().Add(d)
	var last T
	var lastErr error
	for {
		var v T
		lastErr = b.eval(expr, &v)
		if lastErr == nil {
			last = v
			if cond(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s; last value %+v, error %v\nconsole: %s", d, what, last, lastErr, b.consoleText())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setValue sets a form control's value as a script would (no key events).
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%q).value = %q", sel, v))
}

// route moves the single-page app to a hash route without reloading it.
func (b *browser) route(hash string) {
	b.t.Helper()
	b.do("go to "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", hash)))
}

// screenshot saves a full-page PNG into the artifacts directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// problems are the console messages that mean the dashboard is broken: script
// exceptions, console.error calls, CSP and other non-network browser errors.
// Failed requests (the 400 of a bad predicate) are expected.
func (b *browser) problems() []string {
	b.log.mu.Lock()
	defer b.log.mu.Unlock()
	var out []string
	for _, m := range b.log.messages {
		if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
			out = append(out, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
		}
	}
	return out
}

func (b *browser) consoleText() string {
	b.log.mu.Lock()
	defer b.log.mu.Unlock()
	var sb strings.Builder
	for _, m := range b.log.messages {
		fmt.Fprintf(&sb, "\n  %s %s %s", m.Type, m.Source, m.Text)
	}
	return sb.String()
}

// checkAccessible fails the test for form controls without a label (a <label>,
// aria-label or their own text) and table headers without a scope, on the page
// shown now. The chart library's legend table is not the dashboard's.
func (b *browser) checkAccessible(page string) {
	b.t.Helper()
	var found struct{ Unlabelled, NoScope []string }
	err := b.eval(`({
		Unlabelled: [...document.querySelectorAll('main input, main select, main textarea, main button')]
			.filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
			.map(el => el.outerHTML.slice(0, 100)),
		NoScope: [...document.querySelectorAll('main th:not([scope])')].filter(th => !th.closest('.uplot')).map(th => th.outerHTML.slice(0, 100)),
	})`, &found)
	if err != nil {
		b.t.Fatal(err)
	}
	if len(found.Unlabelled) > 0 || len(found.NoScope) > 0 {
		b.t.Errorf("%s: controls without a label %v; headers without scope %v", page, found.Unlabelled, found.NoScope)
	}
}
