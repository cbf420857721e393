package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// chromiumPath finds the browser: $TRIBUTARY_CHROMIUM, then the usual names. In
// CI (CI=true) a missing browser fails the test; elsewhere it skips it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("TRIBUTARY_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "no Chromium found (tried $TRIBUTARY_CHROMIUM, chromium, chromium-browser, google-chrome); install it with `apt-get install chromium` to run the dashboard's browser test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := moduleDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(gomod), nil
}

// built holds the binaries, built once for every test of the package into a
// directory that TestMain removes.
var built struct {
	once      sync.Once
	dir       string
	hub, edge string
	err       error
}

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildBinaries builds cmd/hub and cmd/edge-agent, once per test binary.
func buildBinaries(t *testing.T) (hub, edge string) {
	t.Helper()
	built.once.Do(func() {
		root, err := moduleDir()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "tributary-browsertest-"); err != nil {
			built.err = err
			return
		}
		cmd := exec.Command("go", "build", "-o", built.dir+string(filepath.Separator), "./cmd/hub", "./cmd/edge-agent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/hub ./cmd/edge-agent: %w\n%s", err, out)
			return
		}
		built.hub, built.edge = filepath.Join(built.dir, "hub"), filepath.Join(built.dir, "edge-agent")
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.hub, built.edge
}

// startProcess runs bin with args until the test ends; it is stopped with
// SIGTERM (SIGKILL after 10 s), and its output is logged if the test failed.
func startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	out := &proctest.Output{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- %s %s\n%s", name, strings.Join(args, " "), tail(out.String(), 8000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// fleet is a running hub with its edges.
type fleet struct {
	hub   string            // http://host:port of the hub's API and dashboard
	nats  string            // nats://host:port that edges publish to
	edges map[string]string // node → http://host:port of its local API
}

// startHub starts a hub on free ports with its data in dir (a temp dir when
// empty) and the extra flags, and returns once its /healthz answers 200, with the NATS URL that
// edges (and simulators) publish to.
func startHub(t *testing.T, dir string, extra ...string) (f *fleet, natsURL string) {
	t.Helper()
	hubBin, _ := buildBinaries(t)
	if dir == "" {
		dir = t.TempDir()
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	startProcess(t, "hub", hubBin, append([]string{"--http", httpAddr, "--nats", natsAddr, "--data", dir}, extra...)...)
	f = &fleet{hub: "http://" + httpAddr, nats: "nats://" + natsAddr, edges: map[string]string{}}
	waitFor(t, 60*time.Second, "the hub's /healthz to answer 200", func() (bool, string) {
		res, err := http.Get(f.hub + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK, res.Status
	})
	return f, "nats://" + natsAddr
}

// startFleet starts a hub and one sim edge per node, and returns once the hub
// reports every node online with events.
func startFleet(t *testing.T, nodes ...string) *fleet {
	t.Helper()
	_, edgeBin := buildBinaries(t)
	f, natsURL := startHub(t, "")
	for _, n := range nodes {
		listen := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
		startProcess(t, "edge "+n, edgeBin, "--node", n, "--hub", natsURL, "--data", t.TempDir(),
			"--listen", listen, "--source", "sim")
		f.edges[n] = "http://" + listen
	}
	waitFor(t, 90*time.Second, "every node online with events at the hub", func() (bool, string) {
		var body struct {
			Nodes []struct {
				Node   string `json:"node"`
				Online bool   `json:"online"`
				Events int64  `json:"events"`
			} `json:"nodes"`
		}
		if err := f.getJSON("/api/v1/nodes", &body); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range body.Nodes {
			if n.Online && n.Events > 0 {
				ready++
			}
		}
		return ready == len(nodes), fmt.Sprintf("%+v", body.Nodes)
	})
	return f
}

// waitFor polls cond every 200 ms until it holds or the deadline passes; cond
// also returns what it saw, for the failure message.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", d, what, saw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// getJSON GETs a hub path and decodes a 200 answer.
func (f *fleet) getJSON(path string, v any) error {
	res, err := http.Get(f.hub + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", path, res.Status, b)
	}
	return json.Unmarshal(b, v)
}

// post sends a JSON body and decodes the answer, whatever its status.
func post(ctx context.Context, url string, body, v any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if v != nil {
		if err := json.Unmarshal(rb, v); err != nil {
			return res.StatusCode, fmt.Errorf("POST %s: %s: %w (%s)", url, res.Status, err, rb)
		}
	}
	return res.StatusCode, nil
}

// queryAnswer is the part of a query answer the dashboard shows.
type queryAnswer struct {
	Pattern string                    `json:"pattern"`
	Holds   bool                      `json:"holds"`
	Nodes   map[string]map[string]any `json:"nodes"`
	Matches []struct {
		Node  string          `json:"node"`
		Epoch string          `json:"epoch"`
		Seq   uint64          `json:"seq"`
		Data  json.RawMessage `json:"data"`
	} `json:"matches"`
	Next  string `json:"next"`
	Count int64  `json:"count"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// keys are the matches' identities as the dashboard writes them (data-key).
func (a queryAnswer) keys() []string {
	out := make([]string, 0, len(a.Matches))
	for _, m := range a.Matches {
		out = append(out, fmt.Sprintf("%s/%s/%d", m.Node, m.Epoch, m.Seq))
	}
	return out
}

// query asks the hub's API directly.
func (f *fleet) query(t *testing.T, req map[string]any) queryAnswer {
	t.Helper()
	var a queryAnswer
	if _, err := post(context.Background(), f.hub+"/api/v1/query", req, &a); err != nil {
		t.Fatalf("query %v: %v", req, err)
	}
	return a
}
