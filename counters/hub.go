package counters

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/stream"
)

// ErrUnknownCounter is returned by Hub.Get for a counter no node has reported.
var ErrUnknownCounter = errors.New("counters: unknown counter")

// ErrUnavailable is returned (wrapped) when the COUNTERS bucket cannot be read or
// written: NATS is disconnected, timed out or refused the request. The same
// states can be merged again later; merging is idempotent.
var ErrUnavailable = errors.New("counters: store unavailable")

// ErrClosed is returned by a Hub that is not open.
var ErrClosed = errors.New("counters: hub not open")

// maxConflicts bounds the retries of one key's write. Every conflict means
// another writer made progress on that key, so reaching it needs a pathological
// number of concurrent writers.
const maxConflicts = 1000

// Counter is the hub's view of one counter.
type Counter struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
	// Nodes holds each node's contribution P − N.
	Nodes map[string]int64 `json:"nodes"`
}

// Hub keeps merged counter states in the JetStream KV bucket
// stream.CountersBucket, key "<name>.<node>" (see Key), value the node's PN as
// JSON (see EncodePN).
//
// Merge writes with the key's revision and retries on a conflict, so concurrent
// writers (goroutines, or several hub processes sharing a bucket) never lose an
// update. List and Get read an in-memory copy of the bucket: Open loads it, a KV
// watcher keeps it current with every writer's updates, and Merge adds its own
// writes before it returns, so a caller reads its own merges at once and other
// writers' merges as soon as the watcher delivers them: at once normally, and
// 10 to 20 s after the server restarts, when nats.go recreates the watcher's
// consumer after missed heartbeats. The copy is itself merged by maximum, so
// updates arriving in any order or twice leave it right. Keys deleted by hand or
// holding values that are not a PN leave the copy; a node's next state brings
// them back.
type Hub struct {
	// Replicas is the bucket's replication factor when Open creates it, 1 to 5.
	Replicas int
	// Logger receives warnings about unreadable bucket entries and watcher ends.
	Logger zerolog.Logger

	js  jetstream.JetStream
	log zerolog.Logger

	mu    sync.RWMutex
	kv    jetstream.KeyValue
	cache map[string]State // counter name → node → PN
	open  bool
	stop  context.CancelFunc // ends the watcher
	done  chan struct{}      // closed when the watcher's goroutine returns

	// beforeWrite, when set, runs between reading a key and writing it (tests
	// use it to make a revision conflict happen).
	beforeWrite func(key string)
}

// NewHub returns a Hub that uses js, with Replicas 1 and a Nop logger. Call Open
// before anything else.
func NewHub(js jetstream.JetStream) *Hub {
	return &Hub{Replicas: 1, Logger: zerolog.Nop(), js: js}
}

// Open creates the COUNTERS bucket (Replicas, history 1, file storage) or binds
// to the one that exists, loads every key into memory and starts the watcher
// that keeps the copy current. It returns once the copy holds every key stored
// when Open began. Errors from NATS wrap ErrUnavailable.
func (h *Hub) Open(ctx context.Context) error {
	if h.Replicas < 1 || h.Replicas > 5 {
		return fmt.Errorf("open counters: replicas %d, want 1 to 5", h.Replicas)
	}
	if h.js == nil {
		return errors.New("open counters: no JetStream context")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open {
		return errors.New("open counters: already open")
	}
	h.log = h.Logger.With().Str("component", "counters").Logger()

	cfg := jetstream.KeyValueConfig{
		Bucket:      stream.CountersBucket,
		Description: "Tributary: each node's PN state of each counter, key <name>.<node>",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    h.Replicas,
	}
	kv, err := h.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		// An operator may have changed the bucket (replicas, say); use it as it is.
		h.log.Warn().Str("bucket", cfg.Bucket).Msg("counters bucket exists with another configuration; using it as it is")
		kv, err = h.js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return fmt.Errorf("open counters bucket: %w: %w", ErrUnavailable, err)
	}

	// The watcher lives until Close, not until ctx ends: its subscription is tied
	// to the context it is made with.
	wctx, stop := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		stop()
		return fmt.Errorf("watch counters bucket: %w: %w", ErrUnavailable, err)
	}
	h.kv, h.cache, h.stop = kv, make(map[string]State), stop

	// Load the keys stored now; the watcher sends nil after the last of them.
	for loading := true; loading; {
		select {
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				stop()
				return fmt.Errorf("load counters: %w: watcher ended", ErrUnavailable)
			case e == nil:
				loading = false
			default:
				h.applyLocked(e)
			}
		case <-ctx.Done():
			stop()
			return fmt.Errorf("load counters: %w: %w", ErrUnavailable, ctx.Err())
		}
	}
	h.done = make(chan struct{})
	h.open = true
	go h.watch(w.Updates(), h.done)
	return nil
}

// watch applies the watcher's updates to the copy until the watcher ends.
func (h *Hub) watch(updates <-chan jetstream.KeyValueEntry, done chan<- struct{}) {
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
func (h *Hub) applyLocked(e jetstream.KeyValueEntry) {
	name, node, err := ParseKey(e.Key())
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
	c, err := DecodePN(e.Value())
	if err != nil {
		// The bucket no longer holds a state for this key; forget the old one so
		// that Merge reads the key and replaces what is there.
		h.log.Warn().Err(err).Str("key", e.Key()).Uint64("revision", e.Revision()).Msg("ignoring unreadable counter state")
		h.forgetLocked(name, node)
		return
	}
	h.observeLocked(name, node, c)
}

// forgetLocked removes one node's state of one counter from the copy.
func (h *Hub) forgetLocked(name, node string) {
	delete(h.cache[name], node)
	if len(h.cache[name]) == 0 {
		delete(h.cache, name)
	}
}

// observeLocked merges a state known to be stored into the copy.
func (h *Hub) observeLocked(name, node string, c PN) {
	s := h.cache[name]
	if s == nil {
		s = make(State)
		h.cache[name] = s
	}
	s[node] = s[node].Merge(c)
}

// Merge merges the whole states of one node into the bucket. For each state it
// reads the key, takes the maximum of each field (PN.Merge) and writes the
// result with the revision it read (kv.Create for a new key, kv.Update
// otherwise), reading again and retrying on a revision conflict. A state that
// would not change what is stored is not written; a counter's first state is
// written even when zero, so that the counter becomes known.
//
// Every state is checked before any is written: a bad node or counter name, or a
// negative field, returns an error wrapping ErrInvalid and writes nothing. A NATS
// failure returns an error wrapping ErrUnavailable; states before the failing one
// may be stored, and merging the same states again is safe. A stored value that
// cannot be decoded is replaced by the incoming state, with a warning.
func (h *Hub) Merge(ctx context.Context, node string, states []stream.CounterState) error {
	if err := stream.ValidateName("node", node); err != nil {
		return fmt.Errorf("merge counters: %w: %w", ErrInvalid, err)
	}
	for _, s := range states {
		if err := validate(node, s); err != nil {
			return fmt.Errorf("merge counters: %w", err)
		}
	}
	h.mu.RLock()
	kv, open := h.kv, h.open
	h.mu.RUnlock()
	if !open {
		return fmt.Errorf("merge counters: %w", ErrClosed)
	}
	for _, s := range states {
		if err := h.mergeOne(ctx, kv, s.Name, node, PN{P: s.P, N: s.N}); err != nil {
			return err
		}
	}
	return nil
}

// mergeOne merges one state into one key, retrying on revision conflicts.
func (h *Hub) mergeOne(ctx context.Context, kv jetstream.KeyValue, name, node string, in PN) error {
	key := Key(name, node)
	for conflicts := 0; ; conflicts++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("merge counter %q of node %q: %w: %w", name, node, ErrUnavailable, err)
		}
		// The copy only holds states that are or were stored, and a stored state
		// only grows: when it already covers the incoming one, so does the bucket.
		h.mu.RLock()
		cached, known := h.cache[name][node]
		h.mu.RUnlock()
		if known && cached.Merge(in) == cached {
			return nil
		}

		var cur PN
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			if cur, err = DecodePN(e.Value()); err != nil {
				h.log.Warn().Err(err).Str("key", key).Uint64("revision", rev).Msg("replacing unreadable counter state")
				cur = PN{}
			} else {
				h.observe(name, node, cur)
				if cur.Merge(in) == cur {
					return nil
				}
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// rev 0: create the key.
		default:
			return fmt.Errorf("read counter %q of node %q: %w: %w", name, node, ErrUnavailable, err)
		}

		merged := cur.Merge(in)
		if h.beforeWrite != nil {
			h.beforeWrite(key)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, EncodePN(merged))
		} else {
			_, err = kv.Update(ctx, key, EncodePN(merged), rev)
		}
		switch {
		case err == nil:
			h.observe(name, node, merged)
			return nil
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			if conflicts >= maxConflicts {
				return fmt.Errorf("write counter %q of node %q: %w: %d revision conflicts in a row", name, node, ErrUnavailable, conflicts+1)
			}
		default:
			return fmt.Errorf("write counter %q of node %q: %w: %w", name, node, ErrUnavailable, err)
		}
	}
}

// observe merges a state known to be stored into the copy.
func (h *Hub) observe(name, node string, c PN) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache != nil {
		h.observeLocked(name, node, c)
	}
}

// List returns every counter, sorted by name. When some counters' totals do not
// fit in an int64 it returns an error wrapping ErrOverflow that names them,
// together with every other counter, so that a caller able to show partial
// results (metrics) can. It reads the in-memory copy; ctx is for symmetry with
// Get and Merge.
func (h *Hub) List(ctx context.Context) ([]Counter, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.open {
		return nil, fmt.Errorf("list counters: %w", ErrClosed)
	}
	names := make([]string, 0, len(h.cache))
	for name := range h.cache {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Counter, 0, len(names))
	var over []string
	for _, name := range names {
		c, err := counterOf(name, h.cache[name])
		if err != nil {
			over = append(over, name)
			continue
		}
		out = append(out, c)
	}
	if len(over) > 0 {
		return out, fmt.Errorf("list counters: %w: the totals of %q do not fit in an int64", ErrOverflow, over)
	}
	return out, nil
}

// Get returns one counter. It returns an error wrapping ErrUnknownCounter when no
// node has reported it, ErrInvalid for a name that breaks the name rule, and
// ErrOverflow when its total does not fit in an int64.
func (h *Hub) Get(ctx context.Context, name string) (Counter, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return Counter{}, fmt.Errorf("get counter: %w: %w", ErrInvalid, err)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.open {
		return Counter{}, fmt.Errorf("get counter: %w", ErrClosed)
	}
	s, ok := h.cache[name]
	if !ok {
		return Counter{}, fmt.Errorf("get counter %q: %w", name, ErrUnknownCounter)
	}
	c, err := counterOf(name, s)
	if err != nil {
		return Counter{}, fmt.Errorf("get counter %q: %w", name, err)
	}
	return c, nil
}

// counterOf builds the API view of one counter's state.
func counterOf(name string, s State) (Counter, error) {
	v, err := s.Value()
	if err != nil {
		return Counter{}, err
	}
	nodes := make(map[string]int64, len(s))
	for n, c := range s {
		nodes[n] = c.Value()
	}
	return Counter{Name: name, Value: v, Nodes: nodes}, nil
}

// Close stops the watcher and waits for it. Merge, List and Get return ErrClosed
// afterwards. Closing a Hub that is not open does nothing. Close does not wait
// for the server: the watcher's ephemeral consumer is deleted in the background,
// or by the server once it has been inactive for a while.
func (h *Hub) Close() error {
	h.mu.Lock()
	if !h.open {
		h.mu.Unlock()
		return nil
	}
	h.open = false
	stop, done := h.stop, h.done
	h.mu.Unlock()

	// Cancelling the watcher's context unsubscribes it, which closes its updates
	// channel; watcher.Stop would also wait for the consumer's deletion, up to a
	// timeout when the server is gone.
	stop()
	<-done
	return nil
}
