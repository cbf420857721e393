package natsjs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/internal/apierr"
	"github.com/tributary-edge/tributary/stream"
)

// ErrUnavailable is returned (wrapped) when the COUNTERS bucket cannot be read or
// written: NATS is disconnected, timed out or refused the request. The same
// states can be merged again later; merging is idempotent.
var ErrUnavailable = apierr.CountersUnavailable

// ErrClosed is returned by a Counters store that is not open.
var ErrClosed = apierr.CountersClosed

// maxConflicts bounds the retries of one key's write. Every conflict means
// another writer made progress on that key, so reaching it needs a pathological
// number of concurrent writers.
const maxConflicts = 1000

// Counters keeps merged counter states of every kind in the JetStream KV
// bucket stream.CountersBucket, key "<name>.<node>" (see counters.Key), value
// the node's state as counters.EncodeRegister writes it: a sum as
// {"p":P,"n":N}, byte for byte what hubs before counter kinds wrote and read.
//
// Merge writes with the key's revision and retries on a conflict, so concurrent
// writers (goroutines, or several hub processes sharing a bucket) never lose an
// update. List and Get read an in-memory copy of the bucket: Open loads it, a KV
// watcher keeps it current with every writer's updates, and Merge adds its own
// writes before it returns, so a caller reads its own merges at once and other
// writers' merges as soon as the watcher delivers them: at once normally, and
// 10 to 20 s after the server restarts, when nats.go recreates the watcher's
// consumer after missed heartbeats. The copy is itself merged by each kind's
// rule, so updates arriving in any order or twice leave it right. Keys deleted
// by hand or holding values that do not decode leave the copy; a node's next
// state brings them back.
//
// A counter's kind is the kind the hub holds for its name, from any node: a
// state of another kind is counted (KindConflicts) and ignored, never merged
// and never an error. Every hub consumes the EDGE stream in the same order, so
// every hub keeps the same first kind. Should the bucket hold a name under
// several kinds all the same (written by hand, or by a hub of another
// version), the kind most of its nodes hold is the counter's, ties going to
// the first of sum, max, min, last, and the other nodes are left out of its
// view.
type Counters struct {
	// Replicas is the bucket's replication factor when Open creates it, 1 to 5.
	Replicas int
	// Logger receives warnings about unreadable bucket entries, ignored states
	// and watcher ends.
	Logger zerolog.Logger

	js        jetstream.JetStream
	log       zerolog.Logger
	conflicts atomic.Uint64

	mu    sync.RWMutex
	kv    jetstream.KeyValue
	cache map[string]*entry // counter name → its nodes' states
	open  bool
	stop  context.CancelFunc // ends the watcher
	done  chan struct{}      // closed when the watcher's goroutine returns

	// beforeWrite, when set, runs between reading a key and writing it (tests
	// use it to make a revision conflict happen).
	beforeWrite func(key string)
}

// NewCounters returns a Counters store that uses js, with Replicas 1 and a Nop logger. Call Open
// before anything else.
func NewCounters(js jetstream.JetStream) *Counters {
	return &Counters{Replicas: 1, Logger: zerolog.Nop(), js: js}
}

// Open creates the COUNTERS bucket (Replicas, history 1, file storage) or binds
// to the one that exists, loads every key into memory and starts the watcher
// that keeps the copy current. It returns once the copy holds every key stored
// when Open began. Errors from NATS wrap ErrUnavailable.
func (h *Counters) Open(ctx context.Context) error {
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
		Description: "Tributary: each node's state of each counter, key <name>.<node>",
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
	h.kv, h.cache, h.stop = kv, make(map[string]*entry), stop

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

// Merge merges the whole states of one node into the bucket. For each state it
// reads the key, merges by the kind's rule (counters.Register.Merge) and writes
// the result with the revision it read (kv.Create for a new key, kv.Update
// otherwise), reading again and retrying on a revision conflict. A state that
// would not change what is stored is not written; a counter's first state is
// written even when it holds nothing yet, so that the counter becomes known.
// Only the key "<name>.<node>" of the node given is ever written: one node's
// states cannot touch another's.
//
// A state of another kind than the hub holds for the name, from any node, is
// counted in KindConflicts, logged and ignored; Merge goes on with the others
// and does not fail for it.
//
// Every state is checked before any is written: a bad node or counter name, an
// unknown kind, a negative P or N, or a value that is NaN or infinite returns an
// error wrapping counters.ErrInvalid and writes nothing. A NATS failure returns
// an error wrapping ErrUnavailable; states before the failing one may be
// stored, and merging the same states again is safe. A stored value that cannot
// be decoded is replaced by the incoming state, with a warning.
func (h *Counters) Merge(ctx context.Context, node string, states []stream.CounterState) error {
	if err := stream.ValidateName("node", node); err != nil {
		return fmt.Errorf("merge counters: %w: %w", counters.ErrInvalid, err)
	}
	regs := make([]counters.Register, len(states))
	for i, s := range states {
		r, err := counters.FromWire(s)
		if err != nil {
			return fmt.Errorf("merge counters: counter %q of node %q: %w", s.Name, node, err)
		}
		regs[i] = r
	}
	h.mu.RLock()
	kv, open := h.kv, h.open
	h.mu.RUnlock()
	if !open {
		return fmt.Errorf("merge counters: %w", ErrClosed)
	}
	for i, s := range states {
		if held, ok := h.heldKind(s.Name); ok && held != regs[i].Kind {
			h.ignore(s.Name, node, regs[i].Kind, held)
			continue
		}
		err := h.mergeOne(ctx, kv, s.Name, node, regs[i])
		var kc *kindConflict
		switch {
		case errors.As(err, &kc):
			h.ignore(s.Name, node, regs[i].Kind, kc.held)
		case err != nil:
			return err
		}
	}
	return nil
}

// KindConflicts returns how many states Merge has ignored since Open because
// they were of another kind than their counter.
func (h *Counters) KindConflicts() uint64 { return h.conflicts.Load() }

// heldKind returns the kind the copy holds for counter name, and false when it
// holds no state of it.
func (h *Counters) heldKind(name string) (counters.Kind, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	e := h.cache[name]
	if e == nil {
		return 0, false
	}
	return e.kind(), true
}

// ignore counts and logs a state left out for its kind.
func (h *Counters) ignore(name, node string, kind, held counters.Kind) {
	h.conflicts.Add(1)
	h.log.Warn().Str("counter", name).Str("node", node).Stringer("kind", kind).Stringer("held_kind", held).
		Msg("ignoring a counter state of another kind than the counter's; a counter's kind is fixed by its first write")
}

// kindConflict is mergeOne's answer when the key itself holds a state of
// another kind.
type kindConflict struct{ held counters.Kind }

func (e *kindConflict) Error() string { return "the key holds a " + e.held.String() + " state" }

// mergeOne merges one state into one key, retrying on revision conflicts.
func (h *Counters) mergeOne(ctx context.Context, kv jetstream.KeyValue, name, node string, in counters.Register) error {
	key := counters.Key(name, node)
	for conflicts := 0; ; conflicts++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("merge counter %q of node %q: %w: %w", name, node, ErrUnavailable, err)
		}
		// The copy only holds states that are or were stored, and a stored state
		// only grows: when it already covers the incoming one, so does the bucket.
		h.mu.RLock()
		var cached counters.Register
		known := false
		if e := h.cache[name]; e != nil {
			cached, known = e.nodes[node]
		}
		h.mu.RUnlock()
		if known {
			if m, err := cached.Merge(in); err == nil && m == cached {
				return nil
			}
		}

		var cur counters.Register
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			if cur, err = counters.DecodeRegister(e.Value()); err != nil {
				h.log.Warn().Err(err).Str("key", key).Uint64("revision", rev).Msg("replacing unreadable counter state")
				cur = counters.Register{Kind: in.Kind}
			} else {
				h.observe(name, node, cur)
				if cur.Kind != in.Kind {
					return &kindConflict{held: cur.Kind}
				}
				if m, _ := cur.Merge(in); m == cur {
					return nil
				}
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// rev 0: create the key.
			cur = counters.Register{Kind: in.Kind}
		default:
			return fmt.Errorf("read counter %q of node %q: %w: %w", name, node, ErrUnavailable, err)
		}

		merged, err := cur.Merge(in)
		if err != nil {
			return fmt.Errorf("merge counter %q of node %q: %w", name, node, err)
		}
		val, err := counters.EncodeRegister(merged)
		if err != nil {
			return fmt.Errorf("merge counter %q of node %q: %w", name, node, err)
		}
		if h.beforeWrite != nil {
			h.beforeWrite(key)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, val)
		} else {
			_, err = kv.Update(ctx, key, val, rev)
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

// List returns every counter, sorted by name. When some sums' totals do not fit
// in an int64 it returns an error wrapping counters.ErrOverflow that names them,
// together with every other counter, so that a caller able to show partial
// results (metrics) can. It reads the in-memory copy; ctx is for symmetry with
// Get and Merge.
func (h *Counters) List(ctx context.Context) ([]counters.Counter, error) {
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
	out := make([]counters.Counter, 0, len(names))
	var over []string
	for _, name := range names {
		v, err := h.cache[name].view()
		if err != nil {
			over = append(over, name)
			continue
		}
		out = append(out, counters.Counter{Name: name, View: v})
	}
	if len(over) > 0 {
		return out, fmt.Errorf("list counters: %w: the totals of %q do not fit in an int64", counters.ErrOverflow, over)
	}
	return out, nil
}

// Get returns one counter. It returns an error wrapping counters.ErrUnknownCounter when no
// node has reported it, counters.ErrInvalid for a name that breaks the name rule, and
// counters.ErrOverflow when a sum's total does not fit in an int64.
func (h *Counters) Get(ctx context.Context, name string) (counters.Counter, error) {
	if err := stream.ValidateName("counter", name); err != nil {
		return counters.Counter{}, fmt.Errorf("get counter: %w: %w", counters.ErrInvalid, err)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.open {
		return counters.Counter{}, fmt.Errorf("get counter: %w", ErrClosed)
	}
	e, ok := h.cache[name]
	if !ok {
		return counters.Counter{}, fmt.Errorf("get counter %q: %w", name, counters.ErrUnknownCounter)
	}
	v, err := e.view()
	if err != nil {
		return counters.Counter{}, fmt.Errorf("get counter %q: %w", name, err)
	}
	return counters.Counter{Name: name, View: v}, nil
}

// Close stops the watcher and waits for it. Merge, List and Get return ErrClosed
// afterwards. Closing a Counters that is not open does nothing. Close does not wait
// for the server: the watcher's ephemeral consumer is deleted in the background,
// or by the server once it has been inactive for a while.
func (h *Counters) Close() error {
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

// Heal makes the COUNTERS bucket again when it is gone, and writes back every
// state of the copy in memory, so that no counter loses what the hub had
// merged. It does nothing while the bucket exists or the store is closed.
func (h *Counters) Heal(ctx context.Context) error {
	h.mu.RLock()
	open := h.open
	saved := make(map[string]map[string]counters.Register, len(h.cache))
	for name, e := range h.cache {
		nodes := make(map[string]counters.Register, len(e.nodes))
		for n, r := range e.nodes {
			nodes[n] = r
		}
		saved[name] = nodes
	}
	h.mu.RUnlock()
	if !open {
		return nil
	}
	_, err := h.js.KeyValue(ctx, stream.CountersBucket)
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	h.log.Error().Str("bucket", stream.CountersBucket).Int("counters", len(saved)).
		Msg("the COUNTERS bucket is gone; making it again from the hub's copy")
	if err := h.Close(); err != nil {
		return err
	}
	if err := h.Open(ctx); err != nil {
		return err
	}
	h.mu.RLock()
	kv := h.kv
	h.mu.RUnlock()
	for name, nodes := range saved {
		for node, r := range nodes {
			if err := h.mergeOne(ctx, kv, name, node, r); err != nil {
				return err
			}
		}
	}
	return nil
}
