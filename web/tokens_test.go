package web

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// TestTokensGuardTheAPIAndMetrics: with tokens set, every /api/v1 route and
// /metrics need one as a Bearer header (the live routes also as ?token=), a
// missing or wrong one is a 401 with the JSON error body and WWW-Authenticate,
// and /healthz and the dashboard stay open.
func TestTokensGuardTheAPIAndMetrics(t *testing.T) {
	s := NewServer("127.0.0.1:0")
	// The dashboard's paths (web/hubapi serves its files there).
	for _, p := range []string{"/api/v1/nodes", "/api/v1/query/live", "/api/v1/aggregate/live", "/", "/js/app.js"} {
		s.echo.GET(p, func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	}
	s.SetTokens([]string{"first-token", "second-token"})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.URL()
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	tests := []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"no token", "/api/v1/nodes", nil, 401},
		{"wrong token", "/api/v1/nodes", bearer("first-tokem"), 401},
		{"a prefix of a token", "/api/v1/nodes", bearer("first"), 401},
		{"another scheme", "/api/v1/nodes", map[string]string{"Authorization": "Basic first-token"}, 401},
		{"the first token", "/api/v1/nodes", bearer("first-token"), 200},
		{"the second token", "/api/v1/nodes", bearer("second-token"), 200},
		{"scheme in lower case", "/api/v1/nodes", map[string]string{"Authorization": "bearer second-token"}, 200},
		{"?token= on a route that is not live", "/api/v1/nodes?token=first-token", nil, 401},
		{"?token= on the live query", "/api/v1/query/live?token=first-token", nil, 200},
		{"?token= on the live aggregate", "/api/v1/aggregate/live?token=second-token", nil, 200},
		{"a wrong ?token= on the live query", "/api/v1/query/live?token=nope", nil, 401},
		{"metrics with no token", "/metrics", nil, 401},
		{"metrics with a token", "/metrics", bearer("first-token"), 200},
		{"an unknown API route with no token", "/api/v1/secret", nil, 401},
		{"health", "/healthz", nil, 200},
		{"dashboard", "/", nil, 200},
		{"dashboard script", "/js/app.js", nil, 200},
	}
	for _, tt := range tests {
		res, body := proctest.HTTP(t, http.MethodGet, base+tt.path, tt.header)
		if res.StatusCode != tt.want {
			t.Errorf("%s: GET %s = %d %s, want %d", tt.name, tt.path, res.StatusCode, body, tt.want)
			continue
		}
		if tt.want != 401 {
			continue
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != CodeUnauthorized || e.Error.Message == "" {
			t.Errorf("%s: body %q, want the JSON error with code %q", tt.name, body, CodeUnauthorized)
		}
		if got := res.Header.Get("WWW-Authenticate"); got == "" || got[:6] != "Bearer" {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer", tt.name, got)
		}
	}
}

// TestNoTokensNoCheck: a server without tokens lets every request through.
func TestNoTokensNoCheck(t *testing.T) {
	s := NewServer("127.0.0.1:0")
	s.echo.GET("/api/v1/nodes", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res, body := proctest.HTTP(t, http.MethodGet, s.URL()+"/api/v1/nodes", nil); res.StatusCode != 200 {
		t.Fatalf("GET /api/v1/nodes without tokens configured: %d %s", res.StatusCode, body)
	}
}
