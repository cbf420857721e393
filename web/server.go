// Package web is the HTTP adapter of both binaries: it wraps echo, so that only
// it and web/hubapi import it, and holds the server (limits, TLS, tokens, the
// API's error format, /healthz, /metrics, server-sent events) and the edge
// agent's local API. The hub's REST API and the dashboard are web/hubapi, so
// that the edge agent links none of the hub's packages.
package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Limits every Server starts with (NewServer); see the fields of Server.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included: a
	// 16 MiB ingest body must come at 0.5 MiB/s or faster.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to the
	// end of its answer, the handler's work included: longer than
	// QueryTimeout, so that a query that runs out of time still gets its 503
	// out. Live streams move their own deadline on (SSEWriteTimeout).
	DefaultWriteTimeout = QueryTimeout + 15*time.Second
	// DefaultIdleTimeout closes a kept-alive connection with no request.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxConnections is the most connections served at once; more
	// wait in the kernel's accept queue until one closes.
	DefaultMaxConnections = 512
	// QueryTimeout bounds one query's or aggregate's run time.
	QueryTimeout = 60 * time.Second
	// SSEWriteTimeout is how long one write of a server-sent event stream (an
	// event, a keep-alive, the final error) may take: a client that reads
	// no faster is cut off.
	SSEWriteTimeout = 10 * time.Second
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
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// net/http's, set to the Default values by NewServer; a client that sends
	// a request or reads an answer more slowly is cut off.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConnections is the most connections open at once (at least 1).
	MaxConnections int

	// TLS, when set, serves HTTPS.
	TLS *tls.Config

	tokens [][32]byte
	reg    *prometheus.Registry
	echo   *echo.Echo
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
}

// NewServer returns a server with defaults: it listens on Addr and is always ready.
func NewServer(addr string) *Server {
	e := echo.New()
	e.JSONSerializer = jsonSerializer{}
	e.HideBanner = true
	e.HidePort = true
	s := &Server{Addr: addr, Logger: zerolog.Nop(), echo: e, reg: newRegistry(),
		ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
		WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout, MaxConnections: DefaultMaxConnections}
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	e.Use(s.requireToken)
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", echo.WrapHandler(s.metricsHandler()))
	return s
}

// Open listens on Addr and serves in the background until Close.
func (s *Server) Open(ctx context.Context) error {
	if s.MaxConnections < 1 {
		return fmt.Errorf("listen on %s: MaxConnections is %d, want at least 1", s.Addr, s.MaxConnections)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.echo, ReadHeaderTimeout: s.ReadHeaderTimeout, ReadTimeout: s.ReadTimeout,
		WriteTimeout: s.WriteTimeout, IdleTimeout: s.IdleTimeout}
	ln = newLimitListener(ln, s.MaxConnections)
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

// Echo returns the server's router, for web/hubapi to mount routes on.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Address returns the address the server listens on, with the real port.
func (s *Server) Address() string {
	if s.ln == nil {
		return s.Addr
	}
	return s.ln.Addr().String()
}

// URL returns http://<address>, or https:// with TLS.
func (s *Server) URL() string {
	if s.TLS != nil {
		return "https://" + s.Address()
	}
	return "http://" + s.Address()
}

func (s *Server) healthz(c echo.Context) error {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
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

// limitListener accepts at most cap(sem) connections at once, like
// golang.org/x/net/netutil's, and hands out conns whose SetLinger reaches the
// TCP socket, so that a live stream can reset a client that stopped reading.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// SetLinger is net.TCPConn's; it does nothing for other conns.
func (c *limitConn) SetLinger(sec int) error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.SetLinger(sec)
	}
	return nil
}

// CloseWrite is net.TCPConn's; it does nothing for other conns.
func (c *limitConn) CloseWrite() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}

// reset closes conn at once, discarding whatever the kernel still holds for a
// client that stopped reading (a plain close would keep it queued until the
// client reads or the kernel gives up, minutes later).
func reset(conn net.Conn) {
	if l, ok := conn.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	conn.Close()
}

// resetConn takes the connection of a request away from the server and
// resets it.
func resetConn(rc *http.ResponseController) {
	if conn, _, err := rc.Hijack(); err == nil {
		reset(conn)
	}
}

// EndStream ends a streamed answer whose writes went through: it takes the
// connection from the server, sends the end of the chunked body (when the
// answer is chunked, as HTTP/1.1 streams are), half-closes, and gives the
// client wait to read the rest and close its side. A client that does not is
// reset, so that what it left unread is not held for it.
func EndStream(rc *http.ResponseController, chunked bool, wait time.Duration) {
	conn, _, err := rc.Hijack()
	if err != nil {
		return
	}
	_ = conn.SetDeadline(time.Now().Add(wait))
	if chunked {
		if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
			reset(conn)
			return
		}
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		reset(conn)
		return
	}
	conn.Close()
}
