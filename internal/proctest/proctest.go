// Package proctest holds what the tests of several packages share: free
// loopback ports, a buffer that collects a running process's output, a wait
// for a condition, and an HTTP request read whole.
package proctest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago, and that
// no earlier call in this process returned.
//
// Asking the kernel for port 0 is not enough: it may hand the same port to
// two calls whose listeners were closed in between (a test once gave an
// edge's API and a hub's NATS listener the same port), and it takes ports
// from the range it also gives outgoing connections, which may take one
// before the process the test starts binds it. So FreePort picks at random
// below that range, from 10000, and remembers what it gave out.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := 10000, ephemeralStart()
	for range 1000 {
		port := 0 // the kernel's pick, where no range is left below its own
		if hi-lo >= 1000 {
			port = lo + rand.IntN(hi-lo)
		}
		if given[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
	t.Fatal("no free loopback port found in 1000 tries")
	return 0
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// ephemeralStart is the first port of the kernel's range for outgoing
// connections (32768 where it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < 1024 {
		return 32768
	}
	return lo
}

// Output collects a process's output while a test reads it; it is safe for
// concurrent use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// WaitFor polls cond every 10 ms until it holds, and fails the test when it
// still does not after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// HTTP sends a request with no body and the given headers, and returns the
// response with its whole body read.
func HTTP(t testing.TB, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
