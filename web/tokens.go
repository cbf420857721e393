package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// SetTokens makes every /api/v1 route and /metrics require one of tokens as
// "Authorization: Bearer TOKEN" (the live routes, server-sent events that a browser cannot add a header to, also take ?token=);
// /healthz and the dashboard's static files stay open. No tokens: no check.
func (s *Server) SetTokens(tokens []string) {
	s.tokens = s.tokens[:0]
	for _, t := range tokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
}

// guarded reports whether a request path needs a token.
func guarded(path string) bool {
	return path == "/metrics" || path == "/api/v1" || strings.HasPrefix(path, "/api/v1/")
}

// requireToken is the middleware of SetTokens. Tokens are compared by their
// hashes in constant time, so that the time an answer takes says nothing of
// how much of a token was right.
func (s *Server) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(s.tokens) == 0 || !guarded(c.Request().URL.Path) {
			return next(c)
		}
		given, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok && strings.HasSuffix(c.Request().URL.Path, "/live") {
			given, ok = c.QueryParam("token"), c.QueryParam("token") != ""
		}
		if ok {
			h := sha256.Sum256([]byte(given))
			match := 0
			for _, t := range s.tokens {
				match |= subtle.ConstantTimeCompare(h[:], t[:])
			}
			if match == 1 {
				return next(c)
			}
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="tributary"`)
		msg := "missing token: send Authorization: Bearer TOKEN (the hub's --api-token)"
		if ok {
			msg = "wrong token"
		}
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg}
	}
}

// bearer returns the token of an Authorization header of the Bearer scheme.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
