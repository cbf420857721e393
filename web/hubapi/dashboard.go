package hubapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/web"
	"github.com/tributary-edge/tributary/web/dashboard"
)

// dashboardCSP keeps the dashboard to its own origin: scripts, styles, and the
// API calls and event streams it makes.
const dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".md":   "text/markdown; charset=utf-8",
	"":      "text/plain; charset=utf-8",
}

// dashboardAssets reads the embedded files once, keyed by their URL path.
var dashboardAssets = sync.OnceValues(func() (map[string]asset, error) {
	root, err := fs.Sub(dashboard.Files, ".")
	if err != nil {
		return nil, fmt.Errorf("open dashboard assets: %w", err)
	}
	out := map[string]asset{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard asset %s: no content type for %q", p, path.Ext(p))
		}
		sum := sha256.Sum256(body)
		out["/"+p] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dashboard assets: %w", err)
	}
	return out, nil
})

// MountDashboard registers the dashboard on the server: GET and HEAD of / (the
// page) and of each embedded asset's path (/app.css, /js/…, /vendor/…). Assets
// carry their content type, a strong ETag and Cache-Control: no-cache, so a
// browser revalidates (a 304 when unchanged) and never runs a stale copy after an
// upgrade. A path that is no asset gets the API's 404 error body. It panics if
// the embedded assets are unreadable, which only a broken build can cause.
func MountDashboard(s *web.Server) {
	assets, err := dashboardAssets()
	if err != nil {
		panic(err)
	}
	methods := []string{http.MethodGet, http.MethodHead}
	for p, a := range assets {
		s.Echo().Match(methods, p, serveAsset(p, a))
		if p == "/index.html" {
			s.Echo().Match(methods, "/", serveAsset(p, a))
		}
	}
}

func serveAsset(name string, a asset) echo.HandlerFunc {
	html := strings.HasSuffix(name, ".html")
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, a.ctype)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if html {
			h.Set("Content-Security-Policy", dashboardCSP)
			h.Set("Referrer-Policy", "no-referrer")
		}
		// ServeContent answers If-None-Match with 304, HEAD without a body, and ranges.
		http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(a.body))
		return nil
	}
}
