package natsjs

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/counters"
)

// This file is the Counters store's in-memory copy of the bucket: what List
// and Get read, kept current by the watcher and by Merge's own writes.

// entry is the copy of one counter: each node's state, and how many nodes hold
// a state of each kind.
type entry struct {
	nodes map[string]counters.Register
	kinds map[counters.Kind]int
}

// kind returns the counter's kind: the one most nodes hold, ties going to the
// lowest.
func (e *entry) kind() counters.Kind {
	best := counters.KindSum
	for k, n := range e.kinds {
		if n > e.kinds[best] || (n == e.kinds[best] && k < best) {
			best = k
		}
	}
	return best
}

// view returns the fleet view of the counter, leaving out the nodes of another
// kind than its own.
func (e *entry) view() (counters.View, error) {
	k := e.kind()
	nodes := e.nodes
	if e.kinds[k] != len(nodes) {
		nodes = make(map[string]counters.Register, e.kinds[k])
		for n, r := range e.nodes {
			if r.Kind == k {
				nodes[n] = r
			}
		}
	}
	return counters.Fleet(k, nodes)
}

// watch applies the watcher's updates to the copy until the watcher ends.
func (h *Counters) watch(updates <-chan jetstream.KeyValueEntry, done chan<- struct{}) {
	defer close(done)
	for e := range updates {
		if e == nil {
			continue
		}
		h.mu.Lock()
		h.applyLocked(e)
		h.mu.Unlock()
	}
}

// applyLocked merges one bucket entry into the copy; h.mu is held for writing.
func (h *Counters) applyLocked(e jetstream.KeyValueEntry) {
	name, node, err := counters.ParseKey(e.Key())
	if err != nil {
		h.log.Warn().Err(err).Msg("ignoring counters bucket key")
		return
	}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		// Someone removed the key by hand. The node's next state brings it back.
		h.forgetLocked(name, node)
		return
	}
	r, err := counters.DecodeRegister(e.Value())
	if err != nil {
		// The bucket no longer holds a state for this key; forget the old one so
		// that Merge reads the key and replaces what is there.
		h.log.Warn().Err(err).Str("key", e.Key()).Uint64("revision", e.Revision()).Msg("ignoring unreadable counter state")
		h.forgetLocked(name, node)
		return
	}
	h.observeLocked(name, node, r)
}

// forgetLocked removes one node's state of one counter from the copy.
func (h *Counters) forgetLocked(name, node string) {
	e := h.cache[name]
	if e == nil {
		return
	}
	if r, ok := e.nodes[node]; ok {
		delete(e.nodes, node)
		if e.kinds[r.Kind]--; e.kinds[r.Kind] == 0 {
			delete(e.kinds, r.Kind)
		}
	}
	if len(e.nodes) == 0 {
		delete(h.cache, name)
	}
}

// observeLocked merges a state known to be stored into the copy. A state of
// another kind than the copy holds for the key replaces it: the bucket was
// changed under the hub, and what it holds now is the truth.
func (h *Counters) observeLocked(name, node string, r counters.Register) {
	e := h.cache[name]
	if e == nil {
		e = &entry{nodes: make(map[string]counters.Register), kinds: make(map[counters.Kind]int)}
		h.cache[name] = e
	}
	if old, ok := e.nodes[node]; ok {
		if m, err := old.Merge(r); err == nil {
			r = m
		}
		if e.kinds[old.Kind]--; e.kinds[old.Kind] == 0 {
			delete(e.kinds, old.Kind)
		}
	}
	e.nodes[node] = r
	e.kinds[r.Kind]++
}

// observe merges a state known to be stored into the copy.
func (h *Counters) observe(name, node string, r counters.Register) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache != nil {
		h.observeLocked(name, node, r)
	}
}
