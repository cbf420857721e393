package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/web"
)

// tcpSocket is one row of /proc/net/tcp.
type tcpSocket struct {
	localPort, remotePort int
	state                 string // hex, 01 is ESTABLISHED, 0A LISTEN
	txQueue               int64
	inode                 string
}

// tcpSockets returns the IPv4 TCP sockets of this network namespace.
func tcpSockets(t testing.TB) []tcpSocket {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	var out []tcpSocket
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		port := func(addr string) int {
			p, _ := strconv.ParseInt(addr[strings.IndexByte(addr, ':')+1:], 16, 32)
			return int(p)
		}
		q := strings.SplitN(f[4], ":", 2)
		tx, _ := strconv.ParseInt(q[0], 16, 64)
		out = append(out, tcpSocket{localPort: port(f[1]), remotePort: port(f[2]), state: f[3], txQueue: tx, inode: f[9]})
	}
	return out
}

// procSocketInodes returns the inodes of the sockets process pid holds open.
func procSocketInodes(pid int) map[string]bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	out := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// servedConns counts the connections on port that process pid has accepted
// and holds open (not those still waiting in the accept queue).
func servedConns(t testing.TB, pid, port int) int {
	t.Helper()
	mine := procSocketInodes(pid)
	// /proc/net/tcp is read in pieces while sockets come and go, so a socket
	// can appear twice in one read: count each inode once.
	seen := map[string]bool{}
	for _, s := range tcpSockets(t) {
		if s.localPort == port && s.state != "0A" && mine[s.inode] {
			seen[s.inode] = true
		}
	}
	return len(seen)
}

// TestHubCutsSlowRequestsAndCapsConnections: the HTTP servers had no read
// timeout and no connection limit, so 1,000 chunked POSTs that never finished
// held 1,013 descriptors for as long as their clients wished. The hub serves at
// most web.DefaultMaxConnections at once, the others wait to be accepted, and
// each request that has not arrived whole after web.DefaultReadTimeout is
// answered and closed.
func TestHubCutsSlowRequestsAndCapsConnections(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub"))
	pid := h.cmd.Process.Pid
	const max = web.DefaultMaxConnections
	const n = max + 88
	var closed atomic.Int64
	start := time.Now()
	for range n {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h.httpPort))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// A body that never ends.
		fmt.Fprintf(c, "POST /api/v1/query HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
		go func() {
			io.Copy(io.Discard, c)
			closed.Add(1)
		}()
	}
	waitFor(t, "the hub to serve as many connections as it may", 30*time.Second, func() bool {
		return servedConns(t, pid, h.httpPort) >= max
	})
	// It takes no more, however long the others wait (they arrived long ago).
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if got := servedConns(t, pid, h.httpPort); got > max {
			t.Fatalf("the hub serves %d connections at once, over its limit of %d", got, max)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, "the hub to cut the requests that never arrived whole", web.DefaultReadTimeout+30*time.Second, func() bool {
		return closed.Load() >= max
	})
	t.Logf("%d slow requests closed %v after they were sent (read timeout %v)", closed.Load(), time.Since(start).Round(time.Second), web.DefaultReadTimeout)
	if code, _ := httpGet(t, h.url()+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after the slow requests: %d", code)
	}
}

// TestLiveClientThatNeverReadsIsCut: a live client that never read held its
// socket's send queue (57 MB for 100 of them) long after its subscription was
// cut, since the write of the final error never returned. Each write now has
// a deadline: the connection of a client that stopped reading is reset,
// while a client that reads keeps its stream past the read timeout and gets
// keep-alive comments.
func TestLiveClientThatNeverReadsIsCut(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub"))
	e := startEdge(t, "live-slow", filepath.Join(t.TempDir(), "edge"), h.natsURL())
	if code, reply := limPost(t, e, "s", []byte(`{"warm":1}`)); code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", code, reply)
	}
	waitFor(t, "the node at the hub", 30*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "single(live-slow)"}) == 1
	})
	liveReq := func(where string) string {
		return "GET /api/v1/query/live?pattern=all&where=" + url.QueryEscape(where) + " HTTP/1.1\r\nHost: hub\r\n\r\n"
	}

	// The reader: it must keep its stream for longer than the read timeout.
	t0 := time.Now()
	reader, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	// It matches only the last event: a burst would leave it behind too.
	io.WriteString(reader, liveReq("last == 1"))
	var keepalives, lastID atomic.Int64
	readerDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(reader)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == ": keepalive" {
				keepalives.Add(1)
			}
			if i := strings.Index(line, `"last":`); i >= 0 {
				v, _ := strconv.ParseInt(strings.TrimRight(line[i+7:], "}"), 10, 64)
				lastID.Store(v)
			}
		}
		readerDone <- sc.Err()
	}()

	// The client that never reads, with a small receive buffer.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, liveReq("true"))
	slowPort := slow.LocalAddr().(*net.TCPAddr).Port
	serverSide := func() (tcpSocket, bool) {
		for _, s := range tcpSockets(t) {
			if s.localPort == h.httpPort && s.remotePort == slowPort {
				return s, true
			}
		}
		return tcpSocket{}, false
	}
	waitFor(t, "both live queries open", 30*time.Second, func() bool {
		_, page := httpGet(t, h.url()+"/metrics")
		return bytes.Contains(page, []byte("\ntributary_hub_live_subscribers 2\n"))
	})

	// Far more matches than the sockets hold.
	burst := time.Now()
	pad := strings.Repeat("p", 200)
	for b := range 3 {
		var body bytes.Buffer
		for i := range 20_000 {
			fmt.Fprintf(&body, `{"i":%d,"pad":%q}`+"\n", b*20_000+i, pad)
		}
		if code, reply := limPost(t, e, "s", body.Bytes()); code != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", code, reply)
		}
	}
	var peak int64
	waitFor(t, "the hub to reset the connection of the client that never reads", 60*time.Second, func() bool {
		s, ok := serverSide()
		peak = max(peak, s.txQueue)
		return !ok // gone, and what was queued for it with it
	})
	t.Logf("the silent client was cut %v after the burst, with up to %d KiB queued for it", time.Since(burst).Round(time.Second), peak>>10)

	// The reader is still served once the read timeout has passed.
	if wait := web.DefaultReadTimeout + 2*time.Second - time.Since(t0); wait > 0 {
		select {
		case err := <-readerDone:
			t.Fatalf("the reading client's stream ended: %v", err)
		case <-time.After(wait):
		}
	}
	if code, reply := limPost(t, e, "s", []byte(`{"last":1}`)); code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", code, reply)
	}
	waitFor(t, "the reading client to get the last event", 30*time.Second, func() bool {
		select {
		case err := <-readerDone:
			t.Fatalf("the reading client's stream ended: %v", err)
		default:
		}
		return lastID.Load() == 1
	})
	if keepalives.Load() == 0 {
		t.Fatalf("no keep-alive comment in %v of stream", time.Since(t0).Round(time.Second))
	}
}
