// Package e2e runs the built binaries as processes on free ports and temp dirs:
// hubs and edge agents that are killed with SIGKILL, restarted and checked
// against what the test itself acknowledged.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tributary-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/hub", "../cmd/edge-agent")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running binary.
type proc struct {
	t    testing.TB
	name string
	bin  string
	args []string
	cmd  *exec.Cmd
	out  *proctest.Output
	done chan struct{}
}

func startProc(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, args: args}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, tail(p.out.String(), 4000))
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.out = &proctest.Output{}
	p.cmd = exec.Command(filepath.Join(binDir, p.bin), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "TRIBUTARY_LOG_LEVEL=info")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to 20 s for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		p.kill()
	}
}

func (p *proc) restart() {
	p.t.Helper()
	p.kill()
	p.start()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// waitFor polls cond every 50 ms until it returns true or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hubProc is a running hub with its ports.
type hubProc struct {
	*proc
	dir            string
	httpPort, nats int
	tls            bool
}

func startHub(t testing.TB, dir string, extra ...string) *hubProc {
	t.Helper()
	h := &hubProc{dir: dir, httpPort: proctest.FreePort(t), nats: proctest.FreePort(t)}
	h.tls = slices.Contains(extra, "--tls-cert")
	args := append([]string{"--data", dir,
		"--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort), "--nats", fmt.Sprintf("127.0.0.1:%d", h.nats),
		"--max-store", "1GiB"}, extra...)
	h.proc = startProc(t, "hub", "hub", args...)
	h.waitReady()
	return h
}

func (h *hubProc) url() string {
	if h.tls {
		return fmt.Sprintf("https://127.0.0.1:%d", h.httpPort)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", h.httpPort)
}
func (h *hubProc) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", h.nats) }

func (h *hubProc) waitReady() {
	h.t.Helper()
	waitFor(h.t, "hub /healthz", 60*time.Second, func() bool {
		resp, err := http.Get(h.url() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (h *hubProc) restart() {
	h.t.Helper()
	h.proc.restart()
	h.waitReady()
}

// edgeProc is a running edge agent.
type edgeProc struct {
	*proc
	node, dir string
	port      int
}

func startEdge(t testing.TB, node, dir, hubURL string, extra ...string) *edgeProc {
	t.Helper()
	e := &edgeProc{node: node, dir: dir, port: proctest.FreePort(t)}
	args := append([]string{"--node", node, "--data", dir, "--hub", hubURL, "--listen", fmt.Sprintf("127.0.0.1:%d", e.port)}, extra...)
	e.proc = startProc(t, "edge "+node, "edge-agent", args...)
	e.waitReady()
	return e
}

func (e *edgeProc) url() string { return fmt.Sprintf("http://127.0.0.1:%d", e.port) }

func (e *edgeProc) waitReady() {
	e.t.Helper()
	waitFor(e.t, "edge /healthz", 60*time.Second, func() bool {
		resp, err := http.Get(e.url() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (e *edgeProc) restart() {
	e.t.Helper()
	e.proc.restart()
	e.waitReady()
}

type ingestReply struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// ingest posts NDJSON events; ok is false when the agent did not acknowledge.
func (e *edgeProc) ingest(streamName string, events []map[string]any) (ingestReply, bool) {
	var body bytes.Buffer
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		body.Write(b)
		body.WriteByte('\n')
	}
	req, _ := http.NewRequest("POST", e.url()+"/api/v1/events?stream="+streamName, &body)
	req.Header.Set("Content-Type", "application/x-ndjson")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return ingestReply{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return ingestReply{}, false
	}
	var r ingestReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return ingestReply{}, false
	}
	return r, true
}

// edgeStatus is the edge's whole GET /api/v1/status answer, as the contract
// names its fields.
type edgeStatus struct {
	Node          string `json:"node"`
	Epoch         string `json:"epoch"`
	HubConnected  bool   `json:"hub_connected"`
	Buffered      int64  `json:"buffered"`
	BufferedBytes int64  `json:"buffered_bytes"`
	LastSeq       uint64 `json:"last_seq"`
	AckedSeq      uint64 `json:"acked_seq"`
	Sent          uint64 `json:"sent"`
	Dropped       uint64 `json:"dropped"`
}

func (e *edgeProc) status(t testing.TB) edgeStatus {
	t.Helper()
	var s edgeStatus
	getJSON(t, e.url()+"/api/v1/status", &s)
	return s
}

// getJSON GETs a URL and decodes a 200 answer into v.
func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	if code, body := httpGet(t, u); code != 200 {
		t.Fatalf("GET %s: %d %s", u, code, body)
	} else if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

func httpGet(t testing.TB, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func postJSON(t testing.TB, u string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

type queryResult struct {
	Pattern string                             `json:"pattern"`
	Holds   bool                               `json:"holds"`
	Nodes   map[string]struct{ Matched int64 } `json:"nodes"`
	Matches []stream.Event                     `json:"matches"`
	Next    string                             `json:"next"`
	Count   *int64                             `json:"count"`
	Scanned int64                              `json:"scanned"`
}

// query runs one GET query page.
func (h *hubProc) query(t testing.TB, params map[string]string) queryResult {
	t.Helper()
	v := url.Values{}
	for k, val := range params {
		v.Set(k, val)
	}
	var r queryResult
	getJSON(t, h.url()+"/api/v1/query?"+v.Encode(), &r)
	return r
}

// all pages through a query and returns every match.
func (h *hubProc) all(t testing.TB, params map[string]string) []stream.Event {
	t.Helper()
	var out []stream.Event
	p := map[string]string{"limit": "10000"}
	for k, v := range params {
		p[k] = v
	}
	for {
		r := h.query(t, p)
		out = append(out, r.Matches...)
		if r.Next == "" {
			return out
		}
		p["after"] = r.Next
	}
}

// count returns the number of matches of a query in its whole range, or -1
// while the hub answers 404 (a node it has not heard from yet).
func (h *hubProc) count(t testing.TB, params map[string]string) int64 {
	t.Helper()
	v := url.Values{"limit": {"1"}, "count": {"true"}}
	for k, val := range params {
		v.Set(k, val)
	}
	code, body := httpGet(t, h.url()+"/api/v1/query?"+v.Encode())
	if code == http.StatusNotFound {
		return -1
	}
	var r queryResult
	if code != 200 || json.Unmarshal(body, &r) != nil || r.Count == nil {
		t.Fatalf("count %v: %d %s", params, code, body)
	}
	return *r.Count
}

var _ = context.Background
var _ = strings.TrimSpace
