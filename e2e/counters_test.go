package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// counterNames are the counters the workers increment.
var counterNames = []string{"doors", "units"}

// tally is what one worker knows about one node's contribution to one counter.
type tally struct {
	acked   int64   // sum of the deltas the edge answered 200 for
	unknown []int64 // deltas whose request failed without an answer
	// sums holds every sum of a subset of unknown (the empty one included): the
	// node's true contribution is acked plus one of them.
	sums map[int64]bool
}

func newTally() *tally { return &tally{sums: map[int64]bool{0: true}} }

// addUnknown records a delta that may or may not have been applied.
func (c *tally) addUnknown(d int64) {
	c.unknown = append(c.unknown, d)
	next := make(map[int64]bool, 2*len(c.sums))
	for s := range c.sums {
		next[s] = true
		next[s+d] = true
	}
	c.sums = next
}

// explains reports whether value is acked plus the sum of some subset of the
// unknown deltas.
func (c *tally) explains(value int64) bool { return c.sums[value-c.acked] }

// counterWorker increments counters on one edge and keeps its ledger.
type counterWorker struct {
	e      *edgeProc
	rng    *rand.Rand
	client *http.Client

	mu       sync.Mutex
	tallies  map[string]*tally
	ok       int      // requests answered 200
	refused  int      // connections refused: the request never reached the agent
	unknowns int      // requests that failed without an answer
	rejected []string // non-200 answers, "status body"
	wrong    []string // 200 answers whose value the ledger cannot explain
}

func newCounterWorker(e *edgeProc, seed uint64) *counterWorker {
	w := &counterWorker{
		e:       e,
		rng:     rand.New(rand.NewPCG(seed, 0x70726962)),
		client:  &http.Client{Timeout: 30 * time.Second},
		tallies: map[string]*tally{},
	}
	for _, n := range counterNames {
		w.tallies[n] = newTally()
	}
	return w
}

// counts returns how many requests were answered 200 and how many did not
// succeed in any way.
func (w *counterWorker) counts() (ok, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, w.refused + w.unknowns + len(w.rejected)
}

// incrReply is the edge's answer to a counter request.
type incrReply struct {
	Name  string `json:"name"`
	Node  string `json:"node"`
	Value int64  `json:"value"`
}

// postCounter posts {"delta": delta} to an edge's counter endpoint.
func postCounter(client *http.Client, base, name, rawBody string) (int, []byte, error) {
	resp, err := client.Post(base+"/api/v1/counters/"+name, "application/json", strings.NewReader(rawBody))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// run increments random counters by random deltas, some negative, until stop
// closes, and records every outcome.
func (w *counterWorker) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		name := counterNames[w.rng.IntN(len(counterNames))]
		delta := w.rng.Int64N(41) - 15 // -15 … 25, zero included
		code, body, err := postCounter(w.client, w.e.url(), name, fmt.Sprintf(`{"delta": %d}`, delta))
		w.mu.Lock()
		tl := w.tallies[name]
		pause := false
		switch {
		case err != nil && code == 0 && errors.Is(err, syscall.ECONNREFUSED):
			// Nothing was sent: the agent is down.
			w.refused++
			pause = true
		case code == http.StatusOK:
			// The agent answers 200 only after the commit, so the delta is
			// applied even if the body was cut short.
			w.ok++
			tl.acked += delta
			var r incrReply
			if err == nil && json.Unmarshal(body, &r) == nil {
				if r.Name != name || r.Node != w.e.node || !tl.explains(r.Value) {
					w.wrong = append(w.wrong, fmt.Sprintf("after %+d to %s: answer %s, but acked sum %d and unknown deltas %v",
						delta, name, body, tl.acked, tl.unknown))
				}
			}
		case err != nil:
			// Cut off mid-request (the agent was killed): applied or not.
			w.unknowns++
			tl.addUnknown(delta)
			pause = true
		default:
			w.rejected = append(w.rejected, fmt.Sprintf("%d %s", code, bytes.TrimSpace(body)))
			pause = true
		}
		w.mu.Unlock()
		if pause {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// hubCounter is the hub's view of one counter.
type hubCounter struct {
	Name  string           `json:"name"`
	Value int64            `json:"value"`
	Nodes map[string]int64 `json:"nodes"`
}

// pollUntil polls cond every 50 ms until it returns "" or the deadline passes,
// and then fails with what cond said last.
func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tryGetJSON GETs u and decodes a 200 answer; false for anything else.
func tryGetJSON(u string, v any) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(b, v) == nil
}

// expectError checks a status and an API error body {"error": {"code",
// "message"}} with the given code and words in the message.
func expectError(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string, words ...string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || status != wantStatus || e.Error.Code != wantCode {
		t.Fatalf("%s: %d %s, want %d with code %q", what, status, body, wantStatus, wantCode)
	}
	for _, w := range words {
		if !strings.Contains(e.Error.Message, w) {
			t.Fatalf("%s: message %q does not say %q", what, e.Error.Message, w)
		}
	}
}

// metricValue returns the value of one series in a Prometheus text page.
func metricValue(t *testing.T, page, series string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: value %q: %v", series, rest, err)
			}
			return v, true
		}
	}
	return 0, false
}

// runIncrCLI runs `edge-agent incr` and returns its exit code, stdout and stderr.
func runIncrCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "edge-agent"), append([]string{"incr"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("run edge-agent incr %v: %v", args, err)
		return 0, "", ""
	}
}

// checkCounterRejects sends bad counter requests to e and h: each gets a 400
// or 404 that says what was wrong, and changes nothing.
func checkCounterRejects(t *testing.T, h *hubProc, e *edgeProc) {
	t.Helper()
	var beforeBad incrReply
	getJSON(t, e.url()+"/api/v1/counters/doors", &beforeBad)
	client := &http.Client{Timeout: 30 * time.Second}
	for _, body := range []string{`{"delta": 1.5}`, `{"delta": "3"}`} {
		code, b, err := postCounter(client, e.url(), "doors", body)
		if err != nil {
			t.Fatalf("POST %s: %v", body, err)
		}
		expectError(t, "POST doors "+body, code, b, http.StatusBadRequest, "invalid", "delta", "is not an integer")
	}
	code, b, err := postCounter(client, e.url(), "bad.name", `{"delta": 1}`)
	if err != nil {
		t.Fatalf("POST bad.name: %v", err)
	}
	expectError(t, "POST /api/v1/counters/bad.name", code, b, http.StatusBadRequest, "invalid", `"bad.name"`, "names match")
	var afterBad incrReply
	getJSON(t, e.url()+"/api/v1/counters/doors", &afterBad)
	if afterBad != beforeBad {
		t.Fatalf("rejected requests changed doors on %s: %d → %d", e.node, beforeBad.Value, afterBad.Value)
	}
	code, b = httpGet(t, e.url()+"/api/v1/counters/bad.name")
	expectError(t, "edge GET /api/v1/counters/bad.name", code, b, http.StatusBadRequest, "invalid", `"bad.name"`)
	code, b = httpGet(t, h.url()+"/api/v1/counters/nosuch")
	expectError(t, "hub GET /api/v1/counters/nosuch", code, b, http.StatusNotFound, "not_found", "nosuch")
	code, b = httpGet(t, h.url()+"/api/v1/counters/bad.name")
	expectError(t, "hub GET /api/v1/counters/bad.name", code, b, http.StatusBadRequest, "invalid", `"bad.name"`)
}

// TestCountersExactThroughCrashesAndOutages increments two counters on three
// edges at once, with random positive and negative deltas, while the hub is
// SIGKILLed and stays down (twice, the second time until the end) and one edge
// is SIGKILLed and restarted. It then checks that the hub's per-node values are
// exactly what each edge acknowledged (plus, for the killed edge, only deltas
// whose request was cut off), that the hub's total is their sum, that /metrics
// shows it, that a counter set before the crashes survives them at the hub, and
// that `edge-agent incr` and bad requests behave.
func TestCountersExactThroughCrashesAndOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test")
	}
	start := time.Now()
	h := startHub(t, t.TempDir())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var edges []*edgeProc
	var workers []*counterWorker
	for i := 1; i <= 3; i++ {
		e := startEdge(t, fmt.Sprintf("ctr-%d", i), t.TempDir(), h.natsURL())
		edges = append(edges, e)
		workers = append(workers, newCounterWorker(e, seed+uint64(i)))
	}
	const killed = 1 // index of the edge that is SIGKILLed and restarted

	// gates is changed once, before any crash, and never again: after two hub
	// SIGKILLs the hub can only know it from its own store, since the edges have
	// nothing new to send for it.
	gates := map[string]int64{}
	for i, e := range edges {
		d := int64(10*i - 15) // -15, -5, 5
		if code, b := postJSON(t, e.url()+"/api/v1/counters/gates", map[string]int64{"delta": d}); code != http.StatusOK {
			t.Fatalf("POST gates to %s: %d %s", e.node, code, b)
		}
		gates[e.node] = d
	}
	pollUntil(t, "the hub to know gates", 120*time.Second, func() string {
		var hc hubCounter
		if !tryGetJSON(h.url()+"/api/v1/counters/gates", &hc) {
			return "hub GET /api/v1/counters/gates failed"
		}
		if !maps.Equal(hc.Nodes, gates) {
			return fmt.Sprintf("hub has gates %v, want %v", hc.Nodes, gates)
		}
		return ""
	})

	load := startWrites(t, workers)
	load.progress("increments with the hub up", 100)
	waitFor(t, "the hub to know every counter", 120*time.Second, func() bool {
		var list struct{ Counters []hubCounter }
		return tryGetJSON(h.url()+"/api/v1/counters", &list) && len(list.Counters) == len(counterNames)+1
	})

	// offline SIGKILLs the hub and waits until every edge has acknowledged n
	// increments with no failure at all.
	offline := func(n int) {
		t.Helper()
		t.Logf("%v: SIGKILL hub", time.Since(start).Round(time.Millisecond))
		for i, n := range load.offline(h, edges, "increments", n) {
			t.Logf("%s: %d increments acknowledged while the hub was down", edges[i].node, n)
		}
		for _, e := range edges {
			if e.status(t).HubConnected {
				t.Fatalf("%s reports a hub connection while the hub is down", e.node)
			}
		}
	}
	offline(150)
	t.Logf("%v: restart hub", time.Since(start).Round(time.Millisecond))
	h.restart()
	load.progress("increments after the hub came back", 100)

	t.Logf("%v: SIGKILL %s mid-increment", time.Since(start).Round(time.Millisecond), edges[killed].name)
	edges[killed].restart()
	load.progress("increments after the edge restart", 100)
	// The last states are made offline, so the hub can only learn them from
	// what the edges kept while it was down.
	offline(50)
	load.stop()

	for i, w := range workers {
		w.mu.Lock()
		t.Logf("%s: %d acknowledged, %d refused, %d unknown, %d rejected; doors %+v units %+v",
			edges[i].node, w.ok, w.refused, w.unknowns, len(w.rejected),
			w.tallies["doors"].unknown, w.tallies["units"].unknown)
		for _, s := range w.wrong {
			t.Errorf("%s: %s", edges[i].node, s)
		}
		if i != killed && (w.refused+w.unknowns+len(w.rejected)) > 0 {
			t.Errorf("%s was never killed, yet %d requests were refused, %d failed and %d rejected: %q",
				edges[i].node, w.refused, w.unknowns, len(w.rejected), w.rejected)
		}
		for _, r := range w.rejected {
			// While the restarted agent opens its buffer it may answer 503.
			if !strings.HasPrefix(r, "503 ") {
				t.Errorf("%s: unexpected answer %s", edges[i].node, r)
			}
		}
		w.mu.Unlock()
	}

	// The CLI, once, still offline: a negative delta on a node that was never
	// killed, so its value is exactly known.
	cli := workers[0]
	listen := fmt.Sprintf("127.0.0.1:%d", edges[0].port)
	code, out, errOut := runIncrCLI(t, "doors", "-7", "--listen", listen)
	if code != 0 {
		t.Fatalf("edge-agent incr doors -7: exit %d, stderr %s", code, errOut)
	}
	var r incrReply
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("edge-agent incr output %q: %v", out, err)
	}
	cli.tallies["doors"].acked -= 7
	if want := cli.tallies["doors"].acked; r != (incrReply{Name: "doors", Node: edges[0].node, Value: want}) {
		t.Fatalf("edge-agent incr printed %s, want doors of %s = %d", out, edges[0].node, want)
	}
	code, out, errOut = runIncrCLI(t, "doors", "1.5", "--listen", listen)
	if code != 2 || out != "" || !strings.Contains(errOut, `DELTA "1.5" is not a 64-bit integer`) {
		t.Fatalf("edge-agent incr doors 1.5: exit %d, stdout %q, stderr %q; want exit 2 saying the delta is not an integer", code, out, errOut)
	}
	code, out, errOut = runIncrCLI(t, "bad.name", "1", "--listen", listen)
	if code != 1 || out != "" || !strings.Contains(errOut, `"bad.name"`) || !strings.Contains(errOut, "names match") {
		t.Fatalf("edge-agent incr bad.name 1: exit %d, stdout %q, stderr %q; want exit 1 with the agent's message", code, out, errOut)
	}

	t.Logf("%v: restart hub", time.Since(start).Round(time.Millisecond))
	h.restart()

	// Converge: the hub's per-node values equal each edge's own.
	hubView := map[string]hubCounter{}
	pollUntil(t, "the hub's counters to equal the edges'", 120*time.Second, func() string {
		for _, name := range counterNames {
			var hc hubCounter
			if !tryGetJSON(h.url()+"/api/v1/counters/"+name, &hc) {
				return "hub GET /api/v1/counters/" + name + " failed"
			}
			if len(hc.Nodes) != len(edges) {
				return fmt.Sprintf("hub %s has nodes %v", name, hc.Nodes)
			}
			for _, e := range edges {
				var er incrReply
				if !tryGetJSON(e.url()+"/api/v1/counters/"+name, &er) {
					return e.node + " GET /api/v1/counters/" + name + " failed"
				}
				if got, ok := hc.Nodes[e.node]; !ok || got != er.Value {
					return fmt.Sprintf("%s: hub has %s = %d, the edge has %d", name, e.node, got, er.Value)
				}
			}
			hubView[name] = hc
		}
		return ""
	})

	t.Logf("%v: converged", time.Since(start).Round(time.Millisecond))
	totals := map[string]int64{}
	for _, name := range counterNames {
		hc := hubView[name]
		var sum int64
		for i, e := range edges {
			tl := workers[i].tallies[name]
			got := hc.Nodes[e.node]
			sum += got
			switch {
			case len(tl.unknown) == 0 && got != tl.acked:
				t.Errorf("%s of %s: hub has %d, the edge acknowledged %d", name, e.node, got, tl.acked)
			case !tl.explains(got):
				t.Errorf("%s of %s: hub has %d, the edge acknowledged %d, and no subset of the unknown deltas %v makes up the difference %d",
					name, e.node, got, tl.acked, tl.unknown, got-tl.acked)
			case len(tl.unknown) > 0:
				t.Logf("%s of %s: of the unknown deltas %v, %d was applied", name, e.node, tl.unknown, got-tl.acked)
			}
		}
		if hc.Value != sum {
			t.Errorf("%s: hub total %d, but its nodes %v sum to %d", name, hc.Value, hc.Nodes, sum)
		}
		totals[name] = hc.Value
		t.Logf("%s = %d %v", name, hc.Value, hc.Nodes)
	}

	var gc hubCounter
	getJSON(t, h.url()+"/api/v1/counters/gates", &gc)
	if !maps.Equal(gc.Nodes, gates) || gc.Value != -15 {
		t.Errorf("after two hub SIGKILLs the hub has gates = %d %v, want -15 %v", gc.Value, gc.Nodes, gates)
	}
	totals["gates"] = gc.Value

	var list struct{ Counters []hubCounter }
	getJSON(t, h.url()+"/api/v1/counters", &list)
	var listed []string
	for _, c := range list.Counters {
		listed = append(listed, c.Name)
		if want, ok := totals[c.Name]; !ok || c.Value != want {
			t.Errorf("GET /api/v1/counters lists %s = %d, want %d", c.Name, c.Value, want)
		}
	}
	if want := []string{"doors", "gates", "units"}; !slices.Equal(listed, want) {
		t.Errorf("GET /api/v1/counters lists %v, want %v", listed, want)
	}

	_, page := httpGet(t, h.url()+"/metrics")
	for name := range totals {
		series := fmt.Sprintf(`tributary_counter_value{name=%q}`, name)
		v, ok := metricValue(t, string(page), series)
		if !ok {
			t.Fatalf("hub /metrics has no %s", series)
		}
		if v != float64(totals[name]) {
			t.Errorf("hub /metrics: %s %v, want %d", series, v, totals[name])
		}
	}

	checkCounterRejects(t, h, edges[2])
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
