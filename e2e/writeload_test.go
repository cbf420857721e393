package e2e

import (
	"sync"
	"testing"
	"time"
)

// writeWorker writes to one edge until it is stopped, counting the writes the
// edge acknowledged and the ones that failed.
type writeWorker interface {
	run(stop <-chan struct{}, wg *sync.WaitGroup)
	counts() (ok, failed int)
}

// writeLoad runs one writeWorker per edge side by side, through hub and edge
// crashes, for the counter tests.
type writeLoad[W writeWorker] struct {
	t       *testing.T
	workers []W
	stopc   chan struct{}
	wg      sync.WaitGroup
}

// startWrites starts the workers; they stop with stop or when the test ends.
func startWrites[W writeWorker](t *testing.T, workers []W) *writeLoad[W] {
	l := &writeLoad[W]{t: t, workers: workers, stopc: make(chan struct{})}
	for _, w := range workers {
		l.wg.Add(1)
		go w.run(l.stopc, &l.wg)
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends every worker and waits for them; it may be called more than once.
func (l *writeLoad[W]) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// progress waits until every worker has n more acknowledged writes.
func (l *writeLoad[W]) progress(what string, n int) {
	l.t.Helper()
	before := make([]int, len(l.workers))
	for i, w := range l.workers {
		before[i], _ = w.counts()
	}
	waitFor(l.t, what, 120*time.Second, func() bool {
		for i, w := range l.workers {
			if ok, _ := w.counts(); ok < before[i]+n {
				return false
			}
		}
		return true
	})
}

// offline SIGKILLs the hub, waits until every edge knows, then until every
// worker has n more acknowledged writes, and fails the test for each write
// that failed meanwhile: an edge answers its writes with the hub down. It
// returns how many writes each worker had acknowledged meanwhile.
func (l *writeLoad[W]) offline(h *hubProc, edges []*edgeProc, what string, n int) []int {
	l.t.Helper()
	h.kill()
	waitFor(l.t, "every edge to notice the hub is gone", 120*time.Second, func() bool {
		for _, e := range edges {
			if e.status(l.t).HubConnected {
				return false
			}
		}
		return true
	})
	okBefore := make([]int, len(l.workers))
	failBefore := make([]int, len(l.workers))
	for i, w := range l.workers {
		okBefore[i], failBefore[i] = w.counts()
	}
	l.progress(what+" while the hub is down", n)
	acked := make([]int, len(l.workers))
	for i, w := range l.workers {
		ok, failed := w.counts()
		if failed != failBefore[i] {
			l.t.Errorf("%s: %d %s failed while the hub was down; an edge must answer 200 offline", edges[i].node, failed-failBefore[i], what)
		}
		acked[i] = ok - okBefore[i]
	}
	return acked
}
