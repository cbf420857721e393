package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerCutsSlowHeadersAndIdleConnections: a client that never finishes
// its headers, and a kept-alive connection that sends no second request, are
// closed by the server once their timeout has passed, not before it and not
// never. The defaults (10 s, 2 min) are shortened so the test stays short.
func TestServerCutsSlowHeadersAndIdleConnections(t *testing.T) {
	s := NewServer("127.0.0.1:0")
	s.ReadHeaderTimeout, s.IdleTimeout = 300*time.Millisecond, 600*time.Millisecond
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// closedAfter reports how long after since the server closed c.
	closedAfter := func(c net.Conn, since time.Time) time.Duration {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		return time.Since(since)
	}

	t.Run("headers", func(t *testing.T) {
		c, err := net.Dial("tcp", s.Address())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: edge\r\n") // and never the blank line
		d := closedAfter(c, start)
		if d < s.ReadHeaderTimeout || d > s.ReadHeaderTimeout+5*time.Second {
			t.Fatalf("closed %v after unfinished headers, want after %v", d, s.ReadHeaderTimeout)
		}
	})

	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", s.Address())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d %q, closing %v; want 200 on a kept-alive connection", resp.StatusCode, strings.TrimSpace(string(body)), resp.Close)
		}
		start := time.Now()
		d := closedAfter(c, start)
		if d < s.IdleTimeout-50*time.Millisecond || d > s.IdleTimeout+5*time.Second {
			t.Fatalf("an idle connection was closed after %v, want after %v", d, s.IdleTimeout)
		}
	})
}
