package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// registerKinds are the register counters the workers write, by name.
var registerKinds = map[string]string{"pressure": "max", "battery": "min", "firmware": "last"}

// registerWrite is one write a worker made, and whether the agent answered it.
type registerWrite struct {
	value float64
	acked bool // false: the request was cut off, applied or not
}

// regLedger is what one worker knows about one node's register.
type regLedger struct {
	kind   string
	writes []registerWrite
}

// explains reports whether v can be the node's register after the writes: for
// max and min, the largest or smallest of the acknowledged writes and any of
// the cut-off ones; for last, the last acknowledged write or a cut-off one made
// after it.
func (l *regLedger) explains(v float64) bool {
	switch l.kind {
	case "last":
		for i := len(l.writes) - 1; i >= 0; i-- {
			w := l.writes[i]
			if w.value == v {
				return true
			}
			if w.acked {
				return false
			}
		}
		return false
	}
	better := func(a, b float64) bool { return (l.kind == "max" && a > b) || (l.kind == "min" && a < b) }
	base, any := 0.0, false
	for _, w := range l.writes {
		if w.acked && (!any || better(w.value, base)) {
			base, any = w.value, true
		}
	}
	if any && v == base {
		return true
	}
	for _, w := range l.writes {
		if !w.acked && w.value == v && (!any || better(v, base)) {
			return true
		}
	}
	return false
}

// exact reports whether the ledger has no cut-off write that could matter.
func (l *regLedger) exact() bool {
	for _, w := range l.writes {
		if !w.acked {
			return false
		}
	}
	return true
}

// edgeRegister is an edge's answer for a register.
type edgeRegister struct {
	Name    string   `json:"name"`
	Node    string   `json:"node"`
	Kind    string   `json:"kind"`
	Value   *float64 `json:"value"`
	Updated string   `json:"updated"`
}

// hubRegister is the hub's view of a register counter.
type hubRegister struct {
	Name    string              `json:"name"`
	Kind    string              `json:"kind"`
	Value   *float64            `json:"value"`
	Nodes   map[string]*float64 `json:"nodes"`
	Updated *string             `json:"updated"`
	Writer  *string             `json:"writer"`
}

// registerWorker sets random values of the register counters on one edge and
// keeps their ledgers.
type registerWorker struct {
	e      *edgeProc
	rng    *rand.Rand
	client *http.Client

	mu       sync.Mutex
	ledgers  map[string]*regLedger
	ok       int
	failed   int      // refused, cut off or rejected
	rejected []string // non-200 answers other than a restarting agent's 503
	wrong    []string // 200 answers the ledger cannot explain
}

func newRegisterWorker(e *edgeProc, seed uint64) *registerWorker {
	w := &registerWorker{e: e, rng: rand.New(rand.NewPCG(seed, 0x6b696e64)), client: &http.Client{Timeout: 30 * time.Second}, ledgers: map[string]*regLedger{}}
	for name, kind := range registerKinds {
		w.ledgers[name] = &regLedger{kind: kind}
	}
	return w
}

func (w *registerWorker) counts() (ok, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, w.failed
}

// write sets one value and records the outcome; it reports whether to pause.
func (w *registerWorker) write(name string, v float64) bool {
	l := w.ledgers[name]
	body := fmt.Sprintf(`{"kind": %q, "value": %v}`, l.kind, v)
	code, b, err := postCounter(w.client, w.e.url(), name, body)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil && code == 0 && errors.Is(err, syscall.ECONNREFUSED):
		w.failed++
		return true
	case code == http.StatusOK:
		// Answered only after the commit, even if the body was cut short.
		w.ok++
		l.writes = append(l.writes, registerWrite{value: v, acked: true})
		var r edgeRegister
		if err == nil && json.Unmarshal(b, &r) == nil {
			if r.Name != name || r.Node != w.e.node || r.Kind != l.kind || r.Value == nil || !l.explains(*r.Value) || (l.kind == "last" && *r.Value != v) {
				w.wrong = append(w.wrong, fmt.Sprintf("after setting %s to %v: answer %s, ledger %+v", name, v, b, l.writes))
			}
		}
		return false
	case err != nil:
		w.failed++
		l.writes = append(l.writes, registerWrite{value: v})
		return true
	default:
		w.failed++
		if code != http.StatusServiceUnavailable {
			w.rejected = append(w.rejected, fmt.Sprintf("%d %s", code, bytes.TrimSpace(b)))
		}
		return true
	}
}

func (w *registerWorker) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	names := []string{"battery", "firmware", "pressure"}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		name := names[w.rng.IntN(len(names))]
		// Noise of ±50.00 around a drift, up for the max and down for the min,
		// so that the writes of every phase, the last offline one included,
		// keep moving the registers.
		v := float64(w.rng.IntN(10001)-5000) / 100
		switch registerKinds[name] {
		case "max":
			v += float64(n) / 4
		case "min":
			v -= float64(n) / 4
		}
		if w.write(name, v) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// runSetCLI runs `edge-agent set` and returns its exit code, stdout and stderr.
func runSetCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "edge-agent"), append([]string{"set"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, strings.TrimSpace(stdout.String()), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), strings.TrimSpace(stdout.String()), stderr.String()
	}
	t.Fatalf("run edge-agent set %v: %v", args, err)
	return 0, "", ""
}

// TestCounterKindsExactThroughCrashes sets max, min and last counters on three
// edges at once with random values while the hub is SIGKILLed and stays down
// (twice, the second time until the end) and one edge is SIGKILLed and
// restarted. It then checks that the hub holds exactly each edge's own
// register, that each register is what the edge acknowledged (for the killed
// edge, or one of the writes cut off), that the fleet values are the largest,
// the smallest and the newest write, that a node's state of another kind is
// counted and ignored, that /metrics shows kinds and values, and that
// `edge-agent set` works offline.
func TestCounterKindsExactThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test")
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%v: "+format, append([]any{time.Since(start).Round(time.Millisecond)}, args...)...)
	}
	h := startHub(t, t.TempDir())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var edges []*edgeProc
	var workers []*registerWorker
	for i := 1; i <= 3; i++ {
		e := startEdge(t, fmt.Sprintf("kind-%d", i), t.TempDir(), h.natsURL())
		edges = append(edges, e)
		workers = append(workers, newRegisterWorker(e, seed+uint64(i)))
	}
	const killed = 1

	// levels is a max on kind-1; kind-2's min of the same name reaches the hub
	// later and must be counted and ignored.
	for _, w := range []struct {
		e    *edgeProc
		body string
	}{{edges[0], `{"kind": "max", "value": 5}`}, {edges[1], `{"kind": "min", "value": -5}`}} {
		client := &http.Client{Timeout: 30 * time.Second}
		if code, b, err := postCounter(client, w.e.url(), "levels", w.body); err != nil || code != http.StatusOK {
			t.Fatalf("POST levels %s to %s: %d %s %v", w.body, w.e.node, code, b, err)
		}
		pollUntil(t, "the hub to take levels in", 60*time.Second, func() string {
			_, page := httpGet(t, h.url()+"/metrics")
			v, _ := metricValue(t, string(page), `tributary_counter_info{kind="max",name="levels"}`)
			c, _ := metricValue(t, string(page), "tributary_hub_counter_kind_conflicts_total")
			if v != 1 || (w.e == edges[1] && c != 1) {
				return fmt.Sprintf("levels info %v, conflicts %v", v, c)
			}
			return ""
		})
	}
	client := &http.Client{Timeout: 30 * time.Second}
	code, b, err := postCounter(client, edges[0].url(), "levels", `{"delta": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, "a delta to the max levels", code, b, http.StatusConflict, "conflict", `counter "levels" is a max counter, not a sum`)

	load := startWrites(t, workers)
	offline := func(n int) {
		t.Helper()
		logf("SIGKILL hub")
		load.offline(h, edges, "writes", n)
	}

	load.progress("writes with the hub up", 60)
	offline(80)
	logf("restart hub")
	h.restart()
	load.progress("writes after the hub came back", 60)
	logf("SIGKILL %s mid-write", edges[killed].name)
	edges[killed].restart()
	load.progress("writes after the edge restart", 60)
	offline(40)
	load.stop()

	for i, w := range workers {
		w.mu.Lock()
		t.Logf("%s: %d acknowledged, %d failed", edges[i].node, w.ok, w.failed)
		for _, s := range append(w.wrong, w.rejected...) {
			t.Errorf("%s: %s", edges[i].node, s)
		}
		if i != killed && w.failed > 0 {
			t.Errorf("%s was never killed, yet %d writes failed", edges[i].node, w.failed)
		}
		w.mu.Unlock()
	}

	// Still offline: the newest write of the fleet, through the CLI, on a node
	// that was never killed. Its stamp is after every other write's.
	time.Sleep(5 * time.Millisecond)
	listen := fmt.Sprintf("127.0.0.1:%d", edges[2].port)
	code, out, errOut := runSetCLI(t, "firmware", "42.5", "--kind", "last", "--listen", listen)
	if code != 0 || !strings.HasPrefix(out, `{"name":"firmware","node":"kind-3","kind":"last","value":42.5,"updated":"`) {
		t.Fatalf("edge-agent set firmware 42.5: exit %d, %q, stderr %s", code, out, errOut)
	}
	workers[2].ledgers["firmware"].writes = append(workers[2].ledgers["firmware"].writes, registerWrite{value: 42.5, acked: true})
	if code, _, errOut := runSetCLI(t, "firmware", "1", "--kind", "max", "--listen", listen); code != 1 || !strings.Contains(errOut, "is a last counter, not a max") {
		t.Fatalf("edge-agent set of another kind: exit %d, stderr %s; want exit 1 naming the kind", code, errOut)
	}

	logf("restart hub")
	h.restart()

	// Converge: the hub holds each edge's own register, exactly.
	views := map[string]hubRegister{}
	own := map[string]map[string]edgeRegister{}
	pollUntil(t, "the hub's registers to equal the edges'", 120*time.Second, func() string {
		for name, kind := range registerKinds {
			var hc hubRegister
			if !tryGetJSON(h.url()+"/api/v1/counters/"+name, &hc) {
				return "hub GET /api/v1/counters/" + name + " failed"
			}
			if hc.Kind != kind || len(hc.Nodes) != len(edges) {
				return fmt.Sprintf("hub %s is a %s of %d nodes", name, hc.Kind, len(hc.Nodes))
			}
			own[name] = map[string]edgeRegister{}
			for _, e := range edges {
				var er edgeRegister
				if !tryGetJSON(e.url()+"/api/v1/counters/"+name, &er) {
					return e.node + " GET /api/v1/counters/" + name + " failed"
				}
				if got := hc.Nodes[e.node]; got == nil || er.Value == nil || *got != *er.Value {
					return fmt.Sprintf("%s: hub has %s = %v, the edge has %v", name, e.node, got, er.Value)
				}
				own[name][e.node] = er
			}
			views[name] = hc
		}
		return ""
	})
	logf("converged")

	for name, kind := range registerKinds {
		hc := views[name]
		var fleet []float64
		for i, e := range edges {
			l := workers[i].ledgers[name]
			got := *hc.Nodes[e.node]
			fleet = append(fleet, got)
			switch {
			case !l.explains(got):
				t.Errorf("%s of %s: hub has %v, which the writes %+v do not explain", name, e.node, got, l.writes)
			case !l.exact():
				t.Logf("%s of %s: %v, with cut-off writes in the ledger", name, e.node, got)
			}
		}
		want := 0.0
		switch kind {
		case "max":
			want = slices.Max(fleet)
		case "min":
			want = slices.Min(fleet)
		case "last":
			want = 42.5
			if hc.Writer == nil || *hc.Writer != "kind-3" || hc.Updated == nil || *hc.Updated != own[name]["kind-3"].Updated {
				t.Errorf("firmware: writer %v at %v, want kind-3 at %s", hc.Writer, hc.Updated, own[name]["kind-3"].Updated)
			}
		}
		if hc.Value == nil || *hc.Value != want {
			t.Errorf("%s (%s): hub value %v, want %v of the nodes %v", name, kind, hc.Value, want, fleet)
		}
		t.Logf("%s (%s) = %v %v", name, kind, *hc.Value, fleet)
	}

	var levels hubRegister
	getJSON(t, h.url()+"/api/v1/counters/levels", &levels)
	if levels.Kind != "max" || len(levels.Nodes) != 1 || levels.Nodes["kind-1"] == nil || *levels.Nodes["kind-1"] != 5 {
		t.Errorf("levels = %+v, want kind-1's max 5 alone: kind-2's min is ignored", levels)
	}

	_, page := httpGet(t, h.url()+"/metrics")
	for name, kind := range registerKinds {
		if v, ok := metricValue(t, string(page), fmt.Sprintf(`tributary_counter_info{kind=%q,name=%q}`, kind, name)); !ok || v != 1 {
			t.Errorf("hub /metrics: no tributary_counter_info of %s as a %s", name, kind)
		}
		if v, ok := metricValue(t, string(page), fmt.Sprintf(`tributary_counter_value{name=%q}`, name)); !ok || v != *views[name].Value {
			t.Errorf("hub /metrics: %s = %v (%v), want %v", name, v, ok, *views[name].Value)
		}
	}
	updated, _ := time.Parse(time.RFC3339Nano, *views["firmware"].Updated)
	if v, ok := metricValue(t, string(page), `tributary_counter_updated_timestamp_seconds{name="firmware"}`); !ok || math.Abs(v-float64(updated.UnixMilli())/1000) > 1e-3 {
		t.Errorf("hub /metrics: firmware updated at %v, want %v", v, updated)
	}
	logf("done")
}
