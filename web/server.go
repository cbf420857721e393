// Package web is the HTTP adapter of both binaries: it wraps echo, so that no other
// package imports it, and holds the hub's REST API, the edge agent's local API,
// the dashboard, /healthz and /metrics.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"
)

// Server is an HTTP server with the API's error format, /healthz and /metrics.
// Create it with NewServer, set its fields and routes, then Open and Close it.
type Server struct {
	// Addr is the listen address; port 0 picks a free port.
	Addr string
	// Logger receives one line per internal error and the server's lifecycle.
	Logger zerolog.Logger
	// Ready is asked by /healthz: nil means ready (200), an error means 503.
	Ready func() error
	// Collectors write /metrics.
	Collectors []Collector

	echo *echo.Echo
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// NewServer returns a server with defaults: it listens on Addr and is always ready.
func NewServer(addr string) *Server {
	e := echo.New()
	e.JSONSerializer = jsonSerializer{}
	e.HideBanner = true
	e.HidePort = true
	s := &Server{Addr: addr, Logger: zerolog.Nop(), echo: e}
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.metrics)
	return s
}

// Open listens on Addr and serves in the background until Close.
func (s *Server) Open(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.echo, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// Close stops accepting requests, waits up to five seconds for open ones (an SSE
// stream is cut), and returns when the server has stopped.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// Address returns the address the server listens on, with the real port.
func (s *Server) Address() string {
	if s.ln == nil {
		return s.Addr
	}
	return s.ln.Addr().String()
}

// URL returns http://<address>.
func (s *Server) URL() string { return "http://" + s.Address() }

func (s *Server) healthz(c echo.Context) error {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) metrics(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return WriteMetrics(c.Response(), s.Collectors)
}

// jsonSerializer writes JSON without escaping <, > and &, so that messages such
// as `unexpected token ">"` read as written.
type jsonSerializer struct{}

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

func (jsonSerializer) Deserialize(c echo.Context, i any) error {
	return json.NewDecoder(c.Request().Body).Decode(i)
}
