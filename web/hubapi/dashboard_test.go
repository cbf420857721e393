package hubapi

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/web"
	"github.com/tributary-edge/tributary/web/dashboard"
)

// startDashboard serves only the dashboard on a free port.
func startDashboard(t *testing.T) string {
	t.Helper()
	s := web.NewServer("127.0.0.1:0")
	MountDashboard(s)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.URL()
}

func TestDashboardServesPageWithHeaders(t *testing.T) {
	base := startDashboard(t)
	res, body := proctest.HTTP(t, http.MethodGet, base+"/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", res.StatusCode)
	}
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("GET /: %s = %q, want %q", k, got, v)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy = %q, want it to keep to 'self'", csp)
	}
	if !strings.Contains(body, `<script type="module" src="js/app.js">`) {
		t.Errorf("GET /: body does not load js/app.js:\n%s", body)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("GET /: no ETag")
	}

	res, body = proctest.HTTP(t, http.MethodGet, base+"/", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET / with If-None-Match: status %d, %d body bytes; want 304 and none", res.StatusCode, len(body))
	}
	res, body = proctest.HTTP(t, http.MethodHead, base+"/app.css", nil)
	if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("HEAD /app.css: status %d, type %q, %d body bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
}

func TestDashboardUnknownAssetIsAPINotFound(t *testing.T) {
	base := startDashboard(t)
	for _, p := range []string{"/js/nope.js", "/vendor/", "/js/../index.html.bak", "/dashboard/index.html"} {
		res, body := proctest.HTTP(t, http.MethodGet, base+p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
			continue
		}
		var e web.ErrorBody
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != web.CodeNotFound {
			t.Errorf("GET %s: body %q is not the API's not_found error", p, body)
		}
	}
}

var (
	htmlRef   = regexp.MustCompile(`(?:src|href)="([^"#]+)"`)
	importRef = regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'`)
)

// Every file the page and its modules load is served, with the right type: a
// broken import path would leave the dashboard blank.
func TestDashboardEveryReferenceResolves(t *testing.T) {
	base := startDashboard(t)
	_, page := proctest.HTTP(t, http.MethodGet, base+"/", nil)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	var queue []string
	for _, m := range htmlRef.FindAllStringSubmatch(page, -1) {
		queue = append(queue, "/"+m[1])
	}
	if len(queue) < 4 {
		t.Fatalf("index.html references only %v", queue)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		res, body := proctest.HTTP(t, http.MethodGet, base+p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", p, res.StatusCode)
			continue
		}
		if want := types[path.Ext(p)]; res.Header.Get("Content-Type") != want {
			t.Errorf("GET %s: Content-Type %q, want %q", p, res.Header.Get("Content-Type"), want)
		}
		if path.Ext(p) != ".js" || strings.HasPrefix(p, "/vendor/") {
			continue
		}
		for _, m := range importRef.FindAllStringSubmatch(body, -1) {
			ref := m[1] + m[2]
			if !strings.HasPrefix(ref, "./") && !strings.HasPrefix(ref, "../") {
				t.Errorf("%s imports %q: only relative imports of embedded modules are allowed", p, ref)
				continue
			}
			queue = append(queue, path.Join(path.Dir(p), ref))
		}
	}
	if !seen["/js/pages/query.js"] || !seen["/vendor/uPlot.iife.min.js"] {
		t.Errorf("the walk missed modules: %v", seen)
	}
}

// The dashboard must work on a closed network and must never parse API data as
// HTML: no remote URLs in what it loads, and no HTML sinks in its own code.
func TestDashboardAssetsLoadNothingRemoteAndNeverParseHTML(t *testing.T) {
	root, err := fs.Sub(dashboard.Files, ".")
	if err != nil {
		t.Fatal(err)
	}
	remote := regexp.MustCompile(`(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//|import\s*\(?\s*['"](?:https?:)?//|fetch\(\s*['"]https?:`)
	sinks := regexp.MustCompile(`\.(?:innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "vendor/") {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		if m := remote.Find(b); m != nil {
			t.Errorf("%s loads from the network: %q", p, m)
		}
		if strings.HasSuffix(p, ".js") {
			if m := sinks.Find(b); m != nil {
				t.Errorf("%s uses an HTML sink: %q", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
