package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// The limits tests run edge agents with small buffers while their hub is
// down, and check at the hub that every acknowledged event is either held or
// accounted for as a reported drop, with exact counts and ranges.

// limPad is the padding of the events these tests ingest: about 1 KiB each.
var limPad = strings.Repeat("x", 1000)

// limBody returns an NDJSON body of n events whose ids are first, first+1, ….
func limBody(first, n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"pad":%q}`+"\n", first+i, limPad)
	}
	return b.Bytes()
}

// limPost sends an NDJSON body to the edge and returns the status and the body
// of the answer. A transport error fails the test: no edge is killed while
// these requests run.
func limPost(t testing.TB, e *edgeProc, streamName string, body []byte) (int, []byte) {
	t.Helper()
	code, reply, err := limTryPost(e, streamName, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, reply
}

// limTryPost is limPost for goroutines other than the test's: it returns the
// transport error.
func limTryPost(e *edgeProc, streamName string, body []byte) (int, []byte, error) {
	req, _ := http.NewRequest("POST", e.url()+"/api/v1/events?stream="+streamName, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	client := &http.Client{Timeout: 120 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("POST events to %s: %v", e.node, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("POST events to %s: reading the answer: %v", e.node, err)
	}
	return resp.StatusCode, out, nil
}

// limAcks maps each acknowledged seq to the id of the event the test sent.
type limAcks map[uint64]int

// add records a 202 answer for n events with ids from firstID.
func (a limAcks) add(t testing.TB, reply []byte, firstID, n int) ingestReply {
	t.Helper()
	r, err := a.record(reply, firstID, n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// record is add for goroutines other than the test's: it returns what is wrong
// with the answer.
func (a limAcks) record(reply []byte, firstID, n int) (ingestReply, error) {
	var r ingestReply
	if err := json.Unmarshal(reply, &r); err != nil {
		return r, fmt.Errorf("ingest answer %s: %v", reply, err)
	}
	if r.Accepted != n || r.LastSeq-r.FirstSeq+1 != uint64(n) {
		return r, fmt.Errorf("ingest of %d events answered %+v", n, r)
	}
	for j := 0; j < n; j++ {
		if _, dup := a[r.FirstSeq+uint64(j)]; dup {
			return r, fmt.Errorf("seq %d acknowledged twice", r.FirstSeq+uint64(j))
		}
		a[r.FirstSeq+uint64(j)] = firstID + j
	}
	return r, nil
}

// limError decodes an error answer's code.
func limError(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error answer %q is not {\"error\": {\"code\", \"message\"}}", body)
	}
	return e.Error.Code
}

// limTryGet GETs u and returns the status and body; 0 on a transport error.
func limTryGet(u string) (int, []byte) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func limEdgeStatus(t testing.TB, e *edgeProc) edgeStatus {
	t.Helper()
	var s edgeStatus
	getJSON(t, e.url()+"/api/v1/status", &s)
	return s
}

// limNode is one entry of the hub's GET /api/v1/nodes.
type limNode struct {
	Node     string `json:"node"`
	Online   bool   `json:"online"`
	Events   int64  `json:"events"`
	Epochs   int    `json:"epochs"`
	Epoch    string `json:"epoch"`
	HighSeq  int64  `json:"high_seq"`
	Buffered int64  `json:"buffered"`
	Dropped  int64  `json:"dropped"`
	Missing  int64  `json:"missing"`
}

// limHubNode returns the hub's record of node; ok is false while the hub has
// not heard of it.
func limHubNode(t testing.TB, h *hubProc, node string) (limNode, bool) {
	t.Helper()
	var r struct {
		Nodes []limNode `json:"nodes"`
	}
	getJSON(t, h.url()+"/api/v1/nodes", &r)
	for _, n := range r.Nodes {
		if n.Node == node {
			return n, true
		}
	}
	return limNode{}, false
}

// limGap is one entry of GET /api/v1/nodes/{node}/gaps.
type limGap struct {
	Epoch    string `json:"epoch"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Count    int64  `json:"count"`
	Reason   string `json:"reason"`
}

func limGaps(t testing.TB, h *hubProc, node string) []limGap {
	t.Helper()
	var r struct {
		Node string   `json:"node"`
		Gaps []limGap `json:"gaps"`
	}
	getJSON(t, h.url()+"/api/v1/nodes/"+node+"/gaps", &r)
	if r.Node != node {
		t.Fatalf("gaps of %s name node %q", node, r.Node)
	}
	return r.Gaps
}

// limHubEvents returns the node's events at the hub, checking that each carries
// epoch, an acknowledged seq with the id the test sent under it, and that no seq
// or id is there twice. It returns the seqs in ascending order.
func limHubEvents(t testing.TB, h *hubProc, node, epoch string, acks limAcks) []uint64 {
	t.Helper()
	got := h.all(t, map[string]string{"pattern": "single(" + node + ")"})
	seqs := make([]uint64, 0, len(got))
	seenSeq := map[uint64]bool{}
	seenID := map[int]bool{}
	for _, ev := range got {
		var d struct {
			ID *int `json:"id"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.ID == nil {
			t.Fatalf("event %s/%d data %.80s: no id (%v)", ev.Epoch, ev.Seq, ev.Data, err)
		}
		if ev.Epoch != epoch {
			t.Fatalf("event seq %d of epoch %s at the hub, want epoch %s", ev.Seq, ev.Epoch, epoch)
		}
		want, ok := acks[ev.Seq]
		if !ok {
			t.Fatalf("event seq %d (id %d) is at the hub but was never acknowledged", ev.Seq, *d.ID)
		}
		if want != *d.ID {
			t.Fatalf("event seq %d has id %d at the hub, the edge acknowledged id %d under it", ev.Seq, *d.ID, want)
		}
		if seenSeq[ev.Seq] || seenID[*d.ID] {
			t.Fatalf("event seq %d (id %d) is at the hub twice", ev.Seq, *d.ID)
		}
		seenSeq[ev.Seq], seenID[*d.ID] = true, true
		seqs = append(seqs, ev.Seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs
}

// limSettle polls cond every 100 ms until it reports true, and fails the test
// with cond's last description of what it saw when timeout passes first.
func limSettle(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// limDownHub returns a hub whose ports and data directory are chosen but which
// does not run yet, so that edges can be pointed at it while it is down.
func limDownHub(t testing.TB) *hubProc {
	return &hubProc{dir: t.TempDir(), httpPort: proctest.FreePort(t), nats: proctest.FreePort(t)}
}

// limBringUp starts a hub made by limDownHub and waits for it to be ready.
func limBringUp(t testing.TB, h *hubProc, maxStore string) {
	t.Helper()
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", maxStore)
	h.waitReady()
}

// limDiskUse returns the total size of the regular files under dir, and a
// description of each.
func limDiskUse(dir string) (int64, string) {
	var total int64
	var parts []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		total += fi.Size()
		parts = append(parts, fmt.Sprintf("%s=%d", d.Name(), fi.Size()))
		return nil
	})
	return total, strings.Join(parts, " ")
}

// limDiskWatch samples the size of dir every few milliseconds until stopped and
// keeps the largest it saw, to catch a file that grows within a request.
type limDiskWatch struct {
	stop chan struct{}
	done chan struct{}
	max  int64
	at   string
	n    int
}

func limWatchDisk(dir string) *limDiskWatch {
	w := &limDiskWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if n, at := limDiskUse(dir); n > w.max {
				w.max, w.at = n, at
			}
			w.n++
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return w
}

// finish stops the sampling and returns the largest size seen, its files, and
// how many samples were taken.
func (w *limDiskWatch) finish() (int64, string, int) {
	close(w.stop)
	<-w.done
	return w.max, w.at, w.n
}

// limCheckGaps checks that gaps cover [first, last] of epoch exactly, one after
// the other without holes or overlaps, each counting every seq of its range, all
// with reason; it returns the sum of the counts.
func limCheckGaps(t testing.TB, gaps []limGap, epoch, reason string, first, last int64) int64 {
	t.Helper()
	next := first
	var sum int64
	for _, g := range gaps {
		if g.Epoch != epoch || g.Reason != reason {
			t.Fatalf("gap %+v: want epoch %s and reason %s; all gaps: %+v", g, epoch, reason, gaps)
		}
		if g.FirstSeq != next || g.LastSeq < g.FirstSeq || g.Count != g.LastSeq-g.FirstSeq+1 {
			t.Fatalf("gap %+v: want a range from %d counting each of its seqs; all gaps: %+v", g, next, gaps)
		}
		next = g.LastSeq + 1
		sum += g.Count
	}
	if next != last+1 {
		t.Fatalf("gaps end at %d, want them to cover %d..%d: %+v", next-1, first, last, gaps)
	}
	return sum
}
