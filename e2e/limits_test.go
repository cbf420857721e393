package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

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
			case code == http.StatusServiceUnavailable:
				// drop-oldest makes room instead of refusing: the forwarder
				// leases at most a quarter of the cap, so there is always
				// something to drop.
				refused++
				err = fmt.Errorf("drop-oldest refused a request at id %d: %s", id, reply)
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
	// As much again as filled the buffer, and more, each request after the
	// previous one has reached the hub: every request is taken now. (A burst
	// faster than the forwarder's acks could fill the buffer again, and be
	// refused rightly.)
	again := len(acks)/perReq + 5
	for i := 0; i < again; i++ {
		code, reply := limPost(t, e, "lim", limBody(id, perReq))
		if code != http.StatusAccepted {
			t.Fatalf("request %d after the backlog drained: %d %s", i, code, reply)
		}
		acks.add(t, reply, id, perReq)
		id += perReq
		limSettle(t, "the request to be forwarded", 60*time.Second, func() (bool, string) {
			es := limEdgeStatus(t, e)
			return es.Buffered == 0, fmt.Sprintf("%+v", es)
		})
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
