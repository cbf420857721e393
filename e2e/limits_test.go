package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// The tests in this file run edge agents with small buffers while their hub is
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

// limStatus is the edge's whole GET /api/v1/status answer.
type limStatus struct {
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

func limEdgeStatus(t testing.TB, e *edgeProc) limStatus {
	t.Helper()
	var s limStatus
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
	return &hubProc{dir: t.TempDir(), httpPort: freePort(t), nats: freePort(t)}
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

// TestDropOldestKeepsDiskUnderCapAndAccountsEveryEvent ingests ten times what a
// 4 MiB buffer holds while the hub is down: every request is acknowledged, the
// data directory never grows past the cap, and once the hub is up it holds the
// newest events while the oldest are reported as buffer-full gaps whose counts
// add up to exactly the acknowledged events it lacks.
func TestDropOldestKeepsDiskUnderCapAndAccountsEveryEvent(t *testing.T) {
	const capBytes = 4 << 20
	const node = "lim-drop"
	h := limDownHub(t)
	dir := t.TempDir()
	e := startEdge(t, node, dir, h.natsURL(), "--buffer-max-bytes", "4MiB", "--buffer-policy", "drop-oldest")

	acks := limAcks{}
	const perReq, requests = 200, 200 // about 40 MiB of data
	watch := limWatchDisk(dir)
	for i := 0; i < requests; i++ {
		code, reply := limPost(t, e, "lim", limBody(i*perReq, perReq))
		if code != http.StatusAccepted {
			watch.finish()
			t.Fatalf("request %d while the buffer is full under drop-oldest: %d %s", i, code, reply)
		}
		acks.add(t, reply, i*perReq, perReq)
	}
	peak, files, samples := watch.finish()
	t.Logf("data directory peaked at %d bytes over %d samples (%s); cap %d", peak, samples, files, capBytes)
	if peak > capBytes {
		t.Fatalf("data directory reached %d bytes (%s), over the %d byte cap", peak, files, capBytes)
	}
	st := limEdgeStatus(t, e)
	lastSeq := uint64(len(acks))
	if st.LastSeq != lastSeq || st.Dropped == 0 || st.Buffered <= 0 || uint64(st.Buffered)+st.Dropped != lastSeq {
		t.Fatalf("edge status after ingesting %d events over the cap: %+v", lastSeq, st)
	}
	t.Logf("edge before the hub starts: %d buffered, %d dropped of %d", st.Buffered, st.Dropped, st.LastSeq)

	limBringUp(t, h, "1GiB")
	var ni limNode
	limSettle(t, "the hub to account for every seq", 120*time.Second, func() (bool, string) {
		es := limEdgeStatus(t, e)
		n, ok := limHubNode(t, h, node)
		ni = n
		return ok && es.Buffered == 0 && n.HighSeq == int64(lastSeq) && n.Events+n.Dropped == int64(lastSeq),
			fmt.Sprintf("edge %+v, hub %+v (known %v)", es, n, ok)
	})
	if ni.Missing != 0 || ni.Events+ni.Dropped+ni.Missing != ni.HighSeq || ni.Epochs != 1 || ni.Epoch != st.Epoch {
		t.Fatalf("hub's record of %s: %+v; want events+dropped = high_seq %d, missing 0, one epoch %s", node, ni, lastSeq, st.Epoch)
	}
	if uint64(ni.Dropped) != st.Dropped {
		t.Fatalf("hub counts %d dropped, the edge dropped %d", ni.Dropped, st.Dropped)
	}

	seqs := limHubEvents(t, h, node, st.Epoch, acks)
	if int64(len(seqs)) != ni.Events {
		t.Fatalf("hub lists %d events of %s, its nodes record says %d", len(seqs), node, ni.Events)
	}
	if notThere := int64(len(acks) - len(seqs)); notThere != ni.Dropped {
		t.Fatalf("%d acknowledged events are not at the hub, it counts %d dropped", notThere, ni.Dropped)
	}
	// Drop-oldest with nothing in flight: the hub holds a suffix of the seqs.
	first := uint64(ni.Dropped) + 1
	for i, s := range seqs {
		if s != first+uint64(i) {
			t.Fatalf("hub's seqs are not the newest %d: position %d holds %d, want %d", len(seqs), i, s, first+uint64(i))
		}
	}

	gaps := limGaps(t, h, node)
	if sum := limCheckGaps(t, gaps, st.Epoch, stream.ReasonBufferFull, 1, ni.Dropped); sum != ni.Dropped {
		t.Fatalf("buffer-full gaps count %d, the hub counts %d dropped", sum, ni.Dropped)
	}
	t.Logf("hub: %d events (seqs %d..%d), %d dropped in %d gap(s), %d missing", ni.Events, first, lastSeq, ni.Dropped, len(gaps), ni.Missing)
}

// TestDropOldestAcrossHubOutageAccountsEveryEvent ingests without pause into a
// 4 MiB drop-oldest buffer while the hub runs, is SIGKILLed mid-forwarding, stays
// down while far more than the cap arrives, and comes back: drops now interleave
// with sent and in-flight batches, and still every seq up to the last is either
// at the hub (acknowledged, once) or inside a reported drop, and the drops count
// exactly the acknowledged events the hub lacks.
func TestDropOldestAcrossHubOutageAccountsEveryEvent(t *testing.T) {
	const node = "lim-outage"
	h := limDownHub(t)
	limBringUp(t, h, "1GiB")
	dir := t.TempDir()
	e := startEdge(t, node, dir, h.natsURL(), "--buffer-max-bytes", "4MiB", "--buffer-policy", "drop-oldest")

	var mu sync.Mutex
	acks := limAcks{}
	var lastSeq uint64 // the newest acknowledged seq
	refused := 0
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	failed := make(chan string, 1)
	go func() {
		defer close(done)
		const perReq = 100
		for id := 0; ; id += perReq {
			select {
			case <-stop:
				return
			default:
			}
			code, reply, err := limTryPost(e, "lim", limBody(id, perReq))
			if err != nil {
				failed <- err.Error()
				return
			}
			mu.Lock()
			switch {
			case code == http.StatusAccepted:
				var r ingestReply
				if r, err = acks.record(reply, id, perReq); err == nil {
					lastSeq = r.LastSeq
				}
			case code == http.StatusServiceUnavailable && bytes.Contains(reply, []byte(`"unavailable"`)):
				// Under drop-oldest an append is refused while every held event
				// is in flight (see the report of this test): the refusal must
				// have stored nothing, which the accounting below also checks.
				refused++
				var st limStatus
				if code, body := limTryGet(e.url() + "/api/v1/status"); code != 200 || json.Unmarshal(body, &st) != nil {
					err = fmt.Errorf("status after a refusal: %d %s", code, body)
				} else if st.LastSeq != lastSeq {
					err = fmt.Errorf("a refused request moved last_seq from %d to %d: %s", lastSeq, st.LastSeq, reply)
				}
			default:
				err = fmt.Errorf("request at id %d: %d %s", id, code, reply)
			}
			mu.Unlock()
			if err != nil {
				failed <- err.Error()
				return
			}
		}
	}()
	progress := func(what string, n int) {
		t.Helper()
		before := acked()
		limSettle(t, what, 120*time.Second, func() (bool, string) {
			select {
			case f := <-failed:
				t.Fatal(f)
			default:
			}
			return acked() >= before+n, fmt.Sprintf("%d acknowledged", acked())
		})
	}
	progress("ingest with the hub up", 3000)
	limSettle(t, "the hub to receive some events", 60*time.Second, func() (bool, string) {
		n, _ := limHubNode(t, h, node)
		return n.Events > 0, fmt.Sprintf("%+v", n)
	})
	t.Log("SIGKILL hub mid-forwarding")
	h.kill()
	// Five times the cap arrives while the hub is down.
	progress("ingest with the hub down", 20000)
	watch := limWatchDisk(dir)
	progress("ingest with the hub down, disk watched", 5000)
	peak, files, _ := watch.finish()
	if peak > 4<<20 {
		t.Fatalf("data directory reached %d bytes (%s), over the 4 MiB cap", peak, files)
	}
	h.proc.start()
	h.waitReady()
	progress("ingest with the hub back", 5000)
	close(stop)
	<-done
	select {
	case f := <-failed:
		t.Fatal(f)
	default:
	}

	if lastSeq != uint64(len(acks)) {
		t.Fatalf("newest acknowledged seq %d, but %d events acknowledged", lastSeq, len(acks))
	}
	var ni limNode
	limSettle(t, "the hub to account for every seq", 120*time.Second, func() (bool, string) {
		es := limEdgeStatus(t, e)
		n, _ := limHubNode(t, h, node)
		ni = n
		return es.Buffered == 0 && n.HighSeq == int64(lastSeq) && n.Events+n.Dropped == int64(lastSeq),
			fmt.Sprintf("edge %+v, hub %+v", es, n)
	})
	// The edge may count more drops than the hub: a batch the hub stored just
	// before it was killed, whose ack never came back, stayed buffered and may
	// then have been dropped; the hub counts those seqs as received.
	st := limEdgeStatus(t, e)
	if st.LastSeq != lastSeq || ni.Missing != 0 || uint64(ni.Dropped) > st.Dropped || ni.Dropped == 0 {
		t.Fatalf("after the outage: edge %+v, hub %+v; want last seq %d, nothing missing, at most the edge's drops at the hub", st, ni, lastSeq)
	}
	seqs := limHubEvents(t, h, node, st.Epoch, acks)
	if notThere := int64(len(acks) - len(seqs)); notThere != ni.Dropped || int64(len(seqs)) != ni.Events {
		t.Fatalf("%d of %d acknowledged events are at the hub; it counts %d events and %d dropped", len(seqs), len(acks), ni.Events, ni.Dropped)
	}
	held := map[uint64]bool{}
	for _, s := range seqs {
		held[s] = true
	}
	// Each seq is at the hub or in exactly one drop range; each drop counts
	// exactly the seqs of its range the hub does not hold.
	gaps := limGaps(t, h, node)
	inGap := map[uint64]bool{}
	var sum int64
	for _, g := range gaps {
		if g.Epoch != st.Epoch || g.Reason != stream.ReasonBufferFull || g.FirstSeq < 1 || g.LastSeq < g.FirstSeq {
			t.Fatalf("gap %+v: want a buffer-full range of epoch %s", g, st.Epoch)
		}
		var lacking int64
		for s := uint64(g.FirstSeq); s <= uint64(g.LastSeq); s++ {
			if inGap[s] {
				t.Fatalf("seq %d is in two gaps: %+v", s, gaps)
			}
			inGap[s] = true
			if !held[s] {
				lacking++
			}
		}
		if g.Count != lacking {
			t.Fatalf("gap %+v counts %d, but %d of its seqs are not at the hub", g, g.Count, lacking)
		}
		sum += g.Count
	}
	if sum != ni.Dropped {
		t.Fatalf("gaps count %d, the hub counts %d dropped", sum, ni.Dropped)
	}
	for s := uint64(1); s <= lastSeq; s++ {
		if !held[s] && !inGap[s] {
			t.Fatalf("seq %d is neither at the hub nor in a gap", s)
		}
	}
	t.Logf("%d acknowledged: %d at the hub, %d dropped in %d gap(s); the edge counts %d dropped; %d requests refused",
		lastSeq, ni.Events, ni.Dropped, len(gaps), st.Dropped, refused)
}

// TestRejectAnswers503StoresNothingAndRecovers fills a 2 MiB buffer under the
// reject policy while the hub is down: the edge answers 503 unavailable and the
// refused request leaves no trace; once the hub has drained the backlog, ingest
// works again and the hub holds exactly the acknowledged events, none dropped.
func TestRejectAnswers503StoresNothingAndRecovers(t *testing.T) {
	const capBytes = 2 << 20
	const node = "lim-reject"
	h := limDownHub(t)
	dir := t.TempDir()
	e := startEdge(t, node, dir, h.natsURL(), "--buffer-max-bytes", "2MiB", "--buffer-policy", "reject")

	acks := limAcks{}
	const perReq = 100
	id := 0
	watch := limWatchDisk(dir)
	rejected := 0
	for i := 0; rejected < 3; i++ {
		if i == 200 {
			watch.finish()
			t.Fatalf("200 requests of %d events into a %d byte buffer under reject, none refused", perReq, capBytes)
		}
		before := limEdgeStatus(t, e)
		code, reply := limPost(t, e, "lim", limBody(id, perReq))
		switch code {
		case http.StatusAccepted:
			if rejected > 0 {
				watch.finish()
				t.Fatalf("request %d accepted after a refusal, with the hub down and nothing drained: %s", i, reply)
			}
			acks.add(t, reply, id, perReq)
			id += perReq
		case http.StatusServiceUnavailable:
			if c := limError(t, reply); c != "unavailable" {
				watch.finish()
				t.Fatalf("refusal has code %q, want unavailable: %s", c, reply)
			}
			after := limEdgeStatus(t, e)
			if after.LastSeq != before.LastSeq || after.Buffered != before.Buffered || after.BufferedBytes != before.BufferedBytes || after.Dropped != 0 {
				watch.finish()
				t.Fatalf("a refused request changed the buffer: %+v -> %+v", before, after)
			}
			rejected++
		default:
			watch.finish()
			t.Fatalf("request %d: %d %s, want 202 or 503", i, code, reply)
		}
	}
	peak, files, _ := watch.finish()
	if peak > capBytes {
		t.Fatalf("data directory reached %d bytes (%s), over the %d byte cap", peak, files, capBytes)
	}
	st := limEdgeStatus(t, e)
	if st.LastSeq != uint64(len(acks)) || st.Buffered != int64(len(acks)) || st.Dropped != 0 {
		t.Fatalf("edge status after %d acknowledged events: %+v", len(acks), st)
	}
	t.Logf("buffer full at %d events; data directory peaked at %d bytes (%s)", len(acks), peak, files)

	limBringUp(t, h, "1GiB")
	limSettle(t, "the backlog to drain", 120*time.Second, func() (bool, string) {
		es := limEdgeStatus(t, e)
		n, _ := limHubNode(t, h, node)
		return es.Buffered == 0 && n.Events == int64(len(acks)), fmt.Sprintf("edge %+v, hub %+v", es, n)
	})
	// As much again as filled the buffer, and more: every request is taken now.
	again := len(acks)/perReq + 5
	for i := 0; i < again; i++ {
		code, reply := limPost(t, e, "lim", limBody(id, perReq))
		if code != http.StatusAccepted {
			t.Fatalf("request %d after the backlog drained: %d %s", i, code, reply)
		}
		acks.add(t, reply, id, perReq)
		id += perReq
	}
	var ni limNode
	limSettle(t, "the hub to hold every acknowledged event", 120*time.Second, func() (bool, string) {
		n, _ := limHubNode(t, h, node)
		ni = n
		return n.Events == int64(len(acks)) && n.HighSeq == int64(len(acks)), fmt.Sprintf("hub %+v", n)
	})
	if ni.Dropped != 0 || ni.Missing != 0 {
		t.Fatalf("hub's record under reject: %+v; want nothing dropped or missing", ni)
	}
	if seqs := limHubEvents(t, h, node, st.Epoch, acks); len(seqs) != len(acks) {
		t.Fatalf("hub holds %d of %d acknowledged events", len(seqs), len(acks))
	}
	if gaps := limGaps(t, h, node); len(gaps) != 0 {
		t.Fatalf("gaps under reject: %+v", gaps)
	}
	if es := limEdgeStatus(t, e); es.Dropped != 0 {
		t.Fatalf("edge dropped %d under reject", es.Dropped)
	}
}

// TestMaxAgeDropsUnsentEventsAndReportsThem lets events wait past a 2 s max age
// while the hub is down: the edge drops them all, and the hub, once up, shows
// max-age gaps covering exactly those seqs; later events flow as usual.
func TestMaxAgeDropsUnsentEventsAndReportsThem(t *testing.T) {
	const maxAge = 2 * time.Second
	const node = "lim-age"
	h := limDownHub(t)
	e := startEdge(t, node, t.TempDir(), h.natsURL(), "--buffer-max-age", maxAge.String())

	acks := limAcks{}
	const perReq, requests = 100, 3
	start := time.Now()
	for i := 0; i < requests; i++ {
		code, reply := limPost(t, e, "lim", limBody(i*perReq, perReq))
		if code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, code, reply)
		}
		acks.add(t, reply, i*perReq, perReq)
	}
	const n = perReq * requests
	// Every event was committed after start, so until maxAge has passed since
	// start none may be gone.
	st := limEdgeStatus(t, e)
	if time.Since(start) < maxAge && (st.Buffered != n || st.Dropped != 0) {
		t.Fatalf("events dropped before they were %v old: %+v", maxAge, st)
	}
	limSettle(t, "the edge to drop the events past their max age", 60*time.Second, func() (bool, string) {
		st = limEdgeStatus(t, e)
		return st.Buffered == 0 && st.Dropped == n, fmt.Sprintf("%+v", st)
	})
	if st.LastSeq != n || st.AckedSeq != n {
		t.Fatalf("edge status after the max-age drop: %+v", st)
	}

	limBringUp(t, h, "1GiB")
	var ni limNode
	limSettle(t, "the hub to learn of the drops", 60*time.Second, func() (bool, string) {
		var ok bool
		ni, ok = limHubNode(t, h, node)
		return ok && ni.Dropped == n, fmt.Sprintf("%+v (known %v)", ni, ok)
	})
	if ni.Events != 0 || ni.HighSeq != n || ni.Missing != 0 {
		t.Fatalf("hub's record after %d max-age drops: %+v", n, ni)
	}
	limCheckGaps(t, limGaps(t, h, node), st.Epoch, stream.ReasonMaxAge, 1, n)

	// Fresh events are sent well within their max age.
	code, reply := limPost(t, e, "lim", limBody(n, perReq))
	if code != http.StatusAccepted {
		t.Fatalf("ingest with the hub up: %d %s", code, reply)
	}
	r := acks.add(t, reply, n, perReq)
	if r.FirstSeq != n+1 {
		t.Fatalf("first seq after the drops = %d, want %d", r.FirstSeq, n+1)
	}
	limSettle(t, "the fresh events at the hub", 60*time.Second, func() (bool, string) {
		ni, _ = limHubNode(t, h, node)
		return ni.Events == perReq && ni.HighSeq == n+perReq, fmt.Sprintf("%+v", ni)
	})
	if seqs := limHubEvents(t, h, node, st.Epoch, acks); len(seqs) != perReq || seqs[0] != n+1 {
		t.Fatalf("hub holds seqs %v, want %d..%d", seqs, n+1, n+perReq)
	}
	if ni.Dropped != n || ni.Missing != 0 {
		t.Fatalf("hub's record at the end: %+v", ni)
	}
}

// TestCorruptBufferIsMovedAsideAndReported SIGKILLs an edge holding unsent
// events, damages its buffer file, and restarts it: the agent starts with a new
// epoch and keeps the damaged file as buffer.db.corrupt-*. When the old meta row
// is still readable, the hub learns of a corrupt-buffer gap for the old epoch
// covering exactly the unsent events; when the whole file is garbage the old
// epoch cannot be named and nothing is reported. Either way new events flow.
func TestCorruptBufferIsMovedAsideAndReported(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the buffer file and returns the bytes it wrote and where.
		damage func(t *testing.T, path string) (int64, []byte)
		// readable: the old meta row survives, so the loss is reported.
		readable bool
	}{
		{"pages-in-the-middle", func(t *testing.T, path string) (int64, []byte) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			const page = 4096
			if fi.Size() < 64*page {
				t.Fatalf("buffer file has %d bytes: too few of the events reached it for the test", fi.Size())
			}
			at := fi.Size() / 2 / page * page
			garbage := make([]byte, 4*page)
			rand.Read(garbage)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(garbage, at); err != nil {
				t.Fatal(err)
			}
			return at, garbage
		}, true},
		{"whole-file-garbage", func(t *testing.T, path string) (int64, []byte) {
			// The log goes too: left in place, it would still hold the meta
			// row and the file's first page, and the loss would be told.
			garbage := make([]byte, 256<<10)
			rand.Read(garbage)
			if err := os.WriteFile(path, garbage, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path + "-wal"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return 0, garbage
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := "lim-corrupt-" + tc.name[:5]
			h := limDownHub(t)
			dir := t.TempDir()
			// A small cap checkpoints often, so that the file itself (not only
			// its log) holds the events when the agent is killed.
			e := startEdge(t, node, dir, h.natsURL(), "--buffer-max-bytes", "4MiB")
			acks := limAcks{}
			const perReq, requests = 100, 15
			for i := 0; i < requests; i++ {
				code, reply := limPost(t, e, "lim", limBody(i*perReq, perReq))
				if code != http.StatusAccepted {
					t.Fatalf("request %d: %d %s", i, code, reply)
				}
				acks.add(t, reply, i*perReq, perReq)
			}
			const n = perReq * requests
			old := limEdgeStatus(t, e)
			if old.Buffered != n || old.LastSeq != n {
				t.Fatalf("edge status before the kill: %+v", old)
			}
			e.kill()
			path := filepath.Join(dir, "buffer.db")
			at, garbage := tc.damage(t, path)

			e.start()
			e.waitReady()
			st := limEdgeStatus(t, e)
			if st.Epoch == old.Epoch || st.Epoch == "" || st.LastSeq != 0 || st.Buffered != 0 {
				t.Fatalf("edge status after restarting on a damaged buffer: %+v (old epoch %s)", st, old.Epoch)
			}
			wantDropped := uint64(0)
			if tc.readable {
				wantDropped = n
			}
			if st.Dropped != wantDropped {
				t.Fatalf("edge counts %d dropped after recovery, want %d", st.Dropped, wantDropped)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "buffer.db.corrupt-*"))
			var mains []string
			for _, p := range aside {
				if !strings.HasSuffix(p, "-wal") && !strings.HasSuffix(p, "-shm") {
					mains = append(mains, p)
				}
			}
			if len(mains) != 1 {
				t.Fatalf("files moved aside: %v, want one buffer.db.corrupt-*", aside)
			}
			kept, err := os.ReadFile(mains[0])
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(kept)) < at+int64(len(garbage)) || !bytes.Equal(kept[at:at+int64(len(garbage))], garbage) {
				t.Fatalf("%s is not the damaged file", mains[0])
			}
			if !tc.readable && !strings.Contains(e.out.String(), "its epoch could not be read") {
				t.Fatalf("no log line says the unreadable file's events are lost without a record:\n%s", tail(e.out.String(), 3000))
			}

			limBringUp(t, h, "1GiB")
			code, reply := limPost(t, e, "lim", limBody(n, perReq))
			if code != http.StatusAccepted {
				t.Fatalf("ingest after recovery: %d %s", code, reply)
			}
			newAcks := limAcks{}
			if r := newAcks.add(t, reply, n, perReq); r.FirstSeq != 1 {
				t.Fatalf("first seq of the new epoch = %d, want 1", r.FirstSeq)
			}
			var ni limNode
			limSettle(t, "the new epoch's events and the old epoch's drops at the hub", 60*time.Second, func() (bool, string) {
				ni, _ = limHubNode(t, h, node)
				return ni.Events == perReq && ni.Epoch == st.Epoch && ni.HighSeq == perReq && ni.Dropped == int64(wantDropped),
					fmt.Sprintf("%+v", ni)
			})
			if seqs := limHubEvents(t, h, node, st.Epoch, newAcks); len(seqs) != perReq {
				t.Fatalf("hub holds %d of the new epoch's %d events", len(seqs), perReq)
			}
			gaps := limGaps(t, h, node)
			if tc.readable {
				want := []limGap{{Epoch: old.Epoch, FirstSeq: 1, LastSeq: n, Count: n, Reason: stream.ReasonCorruptBuffer}}
				if len(gaps) != 1 || gaps[0] != want[0] {
					t.Fatalf("gaps after a corrupt buffer: %+v, want %+v", gaps, want)
				}
				if ni.Epochs != 2 || ni.Missing != 0 {
					t.Fatalf("hub's record: %+v; want two epochs, nothing missing", ni)
				}
			} else {
				if len(gaps) != 0 || ni.Epochs != 1 || ni.Missing != 0 {
					t.Fatalf("hub after an unreadable buffer: %+v, gaps %+v; want only the new epoch and no gaps", ni, gaps)
				}
			}
		})
	}
}

// TestDiskFullAnswers503AndRecovers runs an edge on a 4 MiB tmpfs (skipped
// where mounting is not permitted), fills the disk while the hub is down, and
// checks that ingest answers 503 unavailable without storing anything, the
// agent stays up, ingest works again once space frees, and the hub gets every
// acknowledged event exactly once.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the buffer's own disk-full test covers ENOSPC", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	const node = "lim-diskfull"
	h := limDownHub(t)
	e := startEdge(t, node, filepath.Join(mnt, "edge"), h.natsURL())

	acks := limAcks{}
	const perReq = 100
	id, full := 0, 0
	for i := 0; full < 3; i++ {
		if i == 100 {
			t.Fatalf("100 requests of %d events onto a 4 MiB disk, none refused", perReq)
		}
		before := limEdgeStatus(t, e)
		code, reply := limPost(t, e, "lim", limBody(id, perReq))
		switch code {
		case http.StatusAccepted:
			if full > 0 {
				t.Fatalf("request accepted on a full disk after a refusal: %s", reply)
			}
			acks.add(t, reply, id, perReq)
			id += perReq
		case http.StatusServiceUnavailable:
			if c := limError(t, reply); c != "unavailable" {
				t.Fatalf("disk-full refusal has code %q: %s", c, reply)
			}
			after := limEdgeStatus(t, e)
			if after.LastSeq != before.LastSeq || after.Buffered != before.Buffered || after.BufferedBytes != before.BufferedBytes {
				t.Fatalf("a refused request changed the buffer: %+v -> %+v", before, after)
			}
			full++
		default:
			t.Fatalf("request %d on a filling disk: %d %s", i, code, reply)
		}
	}
	if code, _ := httpGet(t, e.url()+"/healthz"); code != 200 {
		t.Fatalf("/healthz on a full disk: %d, want 200 (the agent keeps running)", code)
	}
	st := limEdgeStatus(t, e)
	if st.LastSeq != uint64(len(acks)) || st.Buffered != int64(len(acks)) {
		t.Fatalf("edge status on a full disk after %d acknowledged events: %+v", len(acks), st)
	}
	t.Logf("disk full after %d events", len(acks))

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	code, reply := limPost(t, e, "lim", limBody(id, perReq))
	if code != http.StatusAccepted {
		t.Fatalf("ingest after space freed: %d %s", code, reply)
	}
	if r := acks.add(t, reply, id, perReq); r.FirstSeq != st.LastSeq+1 {
		t.Fatalf("first seq after space freed = %d, want %d", r.FirstSeq, st.LastSeq+1)
	}

	limBringUp(t, h, "1GiB")
	var ni limNode
	limSettle(t, "the hub to hold every acknowledged event", 120*time.Second, func() (bool, string) {
		ni, _ = limHubNode(t, h, node)
		return ni.Events == int64(len(acks)), fmt.Sprintf("%+v", ni)
	})
	if ni.HighSeq != int64(len(acks)) || ni.Dropped != 0 || ni.Missing != 0 {
		t.Fatalf("hub's record after a full disk: %+v", ni)
	}
	if seqs := limHubEvents(t, h, node, st.Epoch, acks); len(seqs) != len(acks) {
		t.Fatalf("hub holds %d of %d acknowledged events", len(seqs), len(acks))
	}
}

// memSample is one reading of the agent's (and the hub's) memory.
type memSample struct {
	at            time.Duration
	phase         string
	rss, hwm      int64 // edge VmRSS and VmHWM, bytes
	cpu           time.Duration
	hubRSS        int64
	bufferedBytes int64
	buffered      int64
}

// memSampler reads /proc/<pid>/status of the edge (and the hub, once set) and
// the edge's status every second.
type memSampler struct {
	mu      sync.Mutex
	phase   string
	hubPID  int
	samples []memSample
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// procCPU returns the user plus system CPU time pid has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces, start at state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procMem returns VmRSS and VmHWM of pid in bytes.
func procMem(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}

func startMemSampler(e *edgeProc) *memSampler {
	m := &memSampler{phase: "start", stop: make(chan struct{}), done: make(chan struct{})}
	pid := e.cmd.Process.Pid
	client := &http.Client{Timeout: 900 * time.Millisecond}
	begin := time.Now()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s := memSample{at: time.Since(begin)}
			s.rss, s.hwm = procMem(pid)
			s.cpu = procCPU(pid)
			if resp, err := client.Get(e.url() + "/api/v1/status"); err == nil {
				var st limStatus
				if json.NewDecoder(resp.Body).Decode(&st) == nil {
					s.buffered, s.bufferedBytes = st.Buffered, st.BufferedBytes
				}
				resp.Body.Close()
			}
			m.mu.Lock()
			s.phase = m.phase
			if m.hubPID != 0 {
				s.hubRSS, _ = procMem(m.hubPID)
			}
			m.samples = append(m.samples, s)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memSampler) set(phase string, hubPID int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = phase
	if hubPID != 0 {
		m.hubPID = hubPID
	}
}

func (m *memSampler) finish() []memSample {
	m.once.Do(func() { close(m.stop) })
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}

const mib = 1 << 20

// TestEdgeMemoryWhileBacklogDrains measures the edge agent's resident memory
// while it takes in a large backlog (1 GiB of event data by default) with the
// hub down, while the backlog drains to the hub, and at rest afterwards, and
// the drain throughput. It is a measurement, run only with
// TRIBUTARY_MEMORY_TEST=1 (TRIBUTARY_MEMORY_BACKLOG sets the size in bytes);
// docs/memory.md has the method and the figures. Every phase has a deadline,
// and the hub must end up holding every event.
func TestEdgeMemoryWhileBacklogDrains(t *testing.T) {
	if os.Getenv("TRIBUTARY_MEMORY_TEST") != "1" {
		t.Skip("memory measurement: set TRIBUTARY_MEMORY_TEST=1 (takes tens of minutes)")
	}
	target := int64(1 << 30)
	if v := os.Getenv("TRIBUTARY_MEMORY_BACKLOG"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("TRIBUTARY_MEMORY_BACKLOG=%q: want a positive number of bytes", v)
		}
		target = n
	}
	const node = "mem-1"
	h := limDownHub(t)
	e := startEdge(t, node, t.TempDir(), h.natsURL(), "--buffer-max-bytes", "4GiB")
	m := startMemSampler(e)
	defer m.finish()

	// Ingest: 8 MiB NDJSON bodies of 1 KiB events, one request at a time.
	const perReq = 8000
	m.set("ingest", 0)
	ingestStart := time.Now()
	deadline := ingestStart.Add(60 * time.Minute)
	var st limStatus
	id := 0
	for st = limEdgeStatus(t, e); st.BufferedBytes < target; st = limEdgeStatus(t, e) {
		if time.Now().After(deadline) {
			t.Fatalf("ingest of %d bytes did not finish in an hour: %+v", target, st)
		}
		code, reply := limPost(t, e, "mem", limBody(id, perReq))
		if code != http.StatusAccepted {
			t.Fatalf("ingest request at %d events: %d %s", id, code, reply)
		}
		id += perReq
	}
	ingestTook := time.Since(ingestStart)
	backlog := st
	dataDir, _ := limDiskUse(e.dir)
	t.Logf("backlog: %d events, %d data bytes, %d bytes on disk, ingested in %v (%.1f MiB/s)",
		backlog.Buffered, backlog.BufferedBytes, dataDir, ingestTook.Round(time.Second), float64(backlog.BufferedBytes)/mib/ingestTook.Seconds())

	// The agent idles with its backlog: time itself is the subject here.
	m.set("idle-backlog", 0)
	time.Sleep(15 * time.Second)

	limBringUp(t, h, "8GiB")
	m.set("drain", h.cmd.Process.Pid)
	drainStart := time.Now()
	limSettle(t, "the backlog to drain", 60*time.Minute, func() (bool, string) {
		s := limEdgeStatus(t, e)
		return s.Buffered == 0, fmt.Sprintf("%+v", s)
	})
	drainTook := time.Since(drainStart)
	m.set("hub-indexing", 0)
	limSettle(t, "the hub to index the backlog", 60*time.Minute, func() (bool, string) {
		n, _ := limHubNode(t, h, node)
		return n.Events == int64(backlog.LastSeq), fmt.Sprintf("%+v", n)
	})
	indexTook := time.Since(drainStart)
	m.set("rest", 0)
	time.Sleep(30 * time.Second)
	samples := m.finish()

	ni, _ := limHubNode(t, h, node)
	if ni.Events != int64(backlog.LastSeq) || ni.HighSeq != int64(backlog.LastSeq) || ni.Dropped != 0 || ni.Missing != 0 {
		t.Fatalf("hub's record after the drain: %+v, want %d events", ni, backlog.LastSeq)
	}

	type agg struct {
		peakRSS, lastRSS, peakHub int64
		hwm                       int64
		cpu0, cpu1                time.Duration
		t0, t1                    time.Duration
	}
	phases := map[string]*agg{}
	var order []string
	for _, s := range samples {
		a := phases[s.phase]
		if a == nil {
			a = &agg{cpu0: s.cpu, t0: s.at}
			phases[s.phase] = a
			order = append(order, s.phase)
		}
		a.peakRSS, a.lastRSS, a.peakHub = max(a.peakRSS, s.rss), s.rss, max(a.peakHub, s.hubRSS)
		a.cpu1, a.t1, a.hwm = s.cpu, s.at, s.hwm
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| phase | length | edge peak VmRSS | edge VmRSS at end | edge VmHWM at end | edge CPU | hub peak VmRSS |\n|---|---|---|---|---|---|---|\n")
	for _, p := range order {
		a := phases[p]
		fmt.Fprintf(&table, "| %s | %v | %.1f MiB | %.1f MiB | %.1f MiB | %v | %.1f MiB |\n", p, (a.t1 - a.t0).Round(time.Second),
			float64(a.peakRSS)/mib, float64(a.lastRSS)/mib, float64(a.hwm)/mib, (a.cpu1 - a.cpu0).Round(10*time.Millisecond), float64(a.peakHub)/mib)
	}
	last := samples[len(samples)-1]
	fmt.Fprintf(&table, "\nedge VmHWM at the end: %.1f MiB\n", float64(last.hwm)/mib)
	fmt.Fprintf(&table, "drain: %d events, %.1f MiB of data in %v: %.0f events/s, %.1f MiB/s (hub indexed all after %v)\n",
		backlog.Buffered, float64(backlog.BufferedBytes)/mib, drainTook.Round(time.Second),
		float64(backlog.Buffered)/drainTook.Seconds(), float64(backlog.BufferedBytes)/mib/drainTook.Seconds(), indexTook.Round(time.Second))
	t.Log(table.String())

	// The series, every 10 s, to see whether memory follows the backlog.
	var series strings.Builder
	series.WriteString("\n   t  phase          edge RSS  edge HWM   hub RSS  buffered MiB\n")
	for i, s := range samples {
		if i%10 == 0 || i == len(samples)-1 {
			fmt.Fprintf(&series, "%4.0fs %-13s %7.1f  %8.1f  %8.1f  %8.1f\n", s.at.Seconds(), s.phase,
				float64(s.rss)/mib, float64(s.hwm)/mib, float64(s.hubRSS)/mib, float64(s.bufferedBytes)/mib)
		}
	}
	t.Log(series.String())
}
