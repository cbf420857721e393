package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// ledger records what the test sent to one edge and what the edge acknowledged.
type ledger struct {
	mu    sync.Mutex
	acked map[string]bool // ids the edge answered 202 for
	sent  map[string]bool // every id ever sent, acknowledged or not
}

func newLedger() *ledger { return &ledger{acked: map[string]bool{}, sent: map[string]bool{}} }

// send posts batch n of 25 events with unique ids to e's streamName, recording
// them as sent before and as acknowledged after a 202; it reports the 202.
func (l *ledger) send(e *edgeProc, streamName string, n int) bool {
	batch := make([]map[string]any, 25)
	ids := make([]string, 25)
	for i := range batch {
		ids[i] = fmt.Sprintf("%s-%d-%d", e.node, n, i)
		batch[i] = map[string]any{"id": ids[i], "v": (n*25 + i) % 100}
	}
	l.mu.Lock()
	for _, id := range ids {
		l.sent[id] = true
	}
	l.mu.Unlock()
	if _, ok := e.ingest(streamName, batch); !ok {
		return false
	}
	l.mu.Lock()
	for _, id := range ids {
		l.acked[id] = true
	}
	l.mu.Unlock()
	return true
}

func (l *ledger) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// ingestLoop sends batches of 25 events with unique ids to e until stop closes.
// A request cut short by a kill is simply not acknowledged.
func ingestLoop(e *edgeProc, l *ledger, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		if !l.send(e, "crash", n) {
			// The agent is down or restarting: try again shortly.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestCrashesLoseNothingAndDuplicateNothing SIGKILLs edges in the middle of ingest
// requests and the hub in the middle of forwarding, several times, and then checks
// that every acknowledged event is at the hub exactly once. The hub runs as on a
// network: node credentials and TLS.
func TestCrashesLoseNothingAndDuplicateNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test")
	}
	sh := startSecureHub(t)
	h := sh.hubProc
	var edges []*edgeProc
	var ledgers []*ledger
	for i := 1; i <= 3; i++ {
		node := fmt.Sprintf("crash-%d", i)
		edges = append(edges, startEdge(t, node, t.TempDir(), h.natsURL(), sh.edgeArgs(sh.nodeAdd(t, node))...))
		ledgers = append(ledgers, newLedger())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range edges {
		wg.Add(1)
		go ingestLoop(edges[i], ledgers[i], stop, &wg)
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	progress := func(what string) {
		t.Helper()
		before := make([]int, len(ledgers))
		for i, l := range ledgers {
			before[i] = l.ackedCount()
		}
		waitFor(t, what, 60*time.Second, func() bool {
			for i, l := range ledgers {
				if l.ackedCount() < before[i]+200 {
					return false
				}
			}
			return true
		})
	}
	var hubKills atomic.Int32
	for round := 0; round < 3; round++ {
		progress(fmt.Sprintf("ingest progress before round %d", round))
		e := edges[round%len(edges)]
		t.Logf("round %d: SIGKILL %s mid-ingest", round, e.name)
		e.restart()
		progress("ingest progress after the edge restart")
		// Kill the hub while edges are forwarding: wait until it is busy.
		t.Logf("round %d: SIGKILL hub mid-forwarding", round)
		h.restart()
		hubKills.Add(1)
	}
	progress("ingest progress after the last restart")
	close(stop)
	wg.Wait()

	for i, e := range edges {
		l := ledgers[i]
		var st edgeStatus
		waitFor(t, e.node+" to drain and the hub to index it", 120*time.Second, func() bool {
			st = e.status(t)
			return st.Buffered == 0 && h.count(t, map[string]string{"pattern": "single(" + e.node + ")", "stream": "crash"}) == int64(st.LastSeq)
		})
		got := h.all(t, map[string]string{"pattern": "single(" + e.node + ")", "stream": "crash"})
		seen := map[string]int{}
		seqs := map[uint64]bool{}
		for _, ev := range got {
			var d struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatalf("event data %s: %v", ev.Data, err)
			}
			seen[d.ID]++
			if seqs[ev.Seq] {
				t.Fatalf("%s: seq %d twice", e.node, ev.Seq)
			}
			seqs[ev.Seq] = true
			if ev.Epoch != st.Epoch {
				t.Fatalf("%s: epoch changed across restarts: %s then %s", e.node, ev.Epoch, st.Epoch)
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s: event %s is at the hub %d times", e.node, id, n)
			}
			if !l.sent[id] {
				t.Errorf("%s: event %s was never sent", e.node, id)
			}
		}
		lost := 0
		for id := range l.acked {
			if seen[id] == 0 {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d acknowledged events are not at the hub", e.node, lost)
		}
		if uint64(len(got)) != st.LastSeq {
			t.Errorf("%s: hub holds %d events, edge committed %d", e.node, len(got), st.LastSeq)
		}
		t.Logf("%s: %d acknowledged, %d at the hub (committed without an answer: %d), epoch %s",
			e.node, len(l.acked), len(got), len(got)-len(l.acked), st.Epoch)
	}
	if hubKills.Load() < 3 {
		t.Fatalf("hub killed %d times", hubKills.Load())
	}
}

// TestEdgeDrainsAfterHubReturns ingests while no hub runs, then starts the hub:
// the buffered events arrive exactly once.
func TestEdgeDrainsAfterHubReturns(t *testing.T) {
	natsPort := proctest.FreePort(t)
	hubURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	e := startEdge(t, "offline-1", t.TempDir(), hubURL)
	const n = 2000
	for i := 0; i < n; i += 500 {
		batch := make([]map[string]any, 500)
		for j := range batch {
			batch[j] = map[string]any{"i": i + j}
		}
		if r, ok := e.ingest("offline", batch); !ok || r.Accepted != 500 {
			t.Fatalf("ingest while the hub is down: %+v %v", r, ok)
		}
	}
	st := e.status(t)
	if st.HubConnected || st.Buffered != n || st.LastSeq != n {
		t.Fatalf("status while the hub is down: %+v", st)
	}
	h := &hubProc{dir: t.TempDir(), httpPort: proctest.FreePort(t), nats: natsPort}
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "1GiB")
	h.waitReady()
	waitFor(t, "the backlog to drain", 60*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "single(offline-1)"}) == n
	})
	got := h.all(t, map[string]string{"pattern": "single(offline-1)"})
	seen := map[int]bool{}
	for _, ev := range got {
		var d struct{ I int }
		json.Unmarshal(ev.Data, &d)
		if seen[d.I] {
			t.Fatalf("event %d twice", d.I)
		}
		seen[d.I] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events at the hub, want %d", len(seen), n)
	}
	waitFor(t, "the edge to report an empty buffer", 30*time.Second, func() bool {
		st := e.status(t)
		return st.Buffered == 0 && st.HubConnected
	})
}
