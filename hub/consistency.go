package hub

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// strongFanout bounds the seq requests a strong read has out at once.
const strongFanout = 256

// answerClock answers a node's clock request with the hub's receive and send
// times. Hubs of a cluster share the work in one queue group: one answer a
// request.
func (h *Hub) answerClock(m *nats.Msg) {
	t1 := h.Now().UnixNano()
	b, _ := json.Marshal(stream.ClockReply{T1: t1, T2: h.Now().UnixNano()})
	_ = m.Respond(b)
}

// catchUp is the first half of a strong read: it asks every online node of
// nodes for the newest seq whose ingest it acknowledged, then waits, until
// ctx ends or wait runs out, for the index to hold each node's events up to
// it. It returns the completeness of each node asked: complete when caught
// up, not when it did not answer in time or could not be caught up. Nodes it
// did not ask (offline ones) keep the registry's completeness.
func (h *Hub) catchUp(ctx context.Context, nodes []string, wait time.Duration) map[string]pattern.Completeness {
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	now := h.Now().UnixNano()
	var online []string
	for _, n := range nodes {
		if h.reg.online(n, now) {
			online = append(online, n)
		}
	}
	targets := make(map[string]stream.SeqReply, len(online))
	asked := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, strongFanout)
	for _, n := range online {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			msg, err := h.nc.RequestWithContext(ctx, stream.CommandSubject(n, stream.SeqCommand), nil)
			if err != nil {
				return
			}
			var r stream.SeqReply
			if json.Unmarshal(msg.Data, &r) != nil || r.Epoch == "" {
				return
			}
			mu.Lock()
			targets[n] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	out := make(map[string]pattern.Completeness, len(online))
	pending := make(map[string]stream.SeqReply, len(targets))
	for n, r := range targets {
		pending[n] = r
	}
	// The registry learns of each indexed batch after its commit: poll it
	// until every node is caught up or the wait ends.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
wait:
	for {
		for n, r := range pending {
			if c, ok := h.reg.caughtUp(n, r); ok {
				c.AsOf = asked.UTC()
				out[n] = c
				delete(pending, n)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-t.C:
		}
	}
	for _, n := range online {
		if _, ok := out[n]; ok {
			continue
		}
		c := h.Completeness(n)
		c.Complete = false
		if r, ok := pending[n]; ok {
			c, _ = h.reg.caughtUp(n, r)
			c.AsOf = asked.UTC()
		}
		out[n] = c
	}
	return out
}
