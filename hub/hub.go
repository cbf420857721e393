// Package hub is the cloud side: it runs the embedded nats-server with
// JetStream (or uses an existing deployment), materializes edge batches into
// the query index, keeps the node registry and fans new events out to live
// queries. JetStream is the source of truth; the index is a cache that is
// rebuilt from it when it is missing.
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// ErrUnknownNode is returned (wrapped) for a node the hub has never heard of.
var ErrUnknownNode = pattern.ErrUnknownNode

// Observer takes one measurement, such as a latency in seconds;
// prometheus.Histogram implements it.
type Observer interface{ Observe(float64) }

// Hub is the whole hub minus its HTTP server. Create it with New, set fields,
// then Open and Close.
type Hub struct {
	// DataDir holds JetStream's store (jetstream/) and the index (index.db).
	DataDir string
	// NATSAddr is where the embedded server listens for edge agents.
	NATSAddr string
	// NATSURL, when set, uses an existing NATS/JetStream deployment instead of
	// the embedded server. It may list several servers, comma-separated.
	NATSURL string
	// Name is this hub's name: /api/v1/cluster answers with it, and in a
	// cluster it is the embedded server's name, unique among the hubs.
	Name string
	// ClusterAddr, when set, makes the embedded server join the cluster of
	// hubs (natsjs.ClusterName): it is the host:port the other hubs' routes
	// dial. Peers are their route URLs (see natsjs.ClusterRoutes).
	ClusterAddr string
	Peers       []string
	// Consumer is the durable consumer the materializer reads the EDGE stream
	// with. Empty means ConsumerName for a single hub and ClusterConsumer(Name)
	// with ClusterAddr; hubs sharing a NATSURL deployment must be given their
	// own.
	Consumer string
	// MaxStore caps the embedded JetStream's file storage in bytes.
	MaxStore int64
	// Retention is how long the EDGE stream and the index keep events; 0 keeps
	// them forever.
	Retention time.Duration
	// Replicas is the EDGE stream's and the counters bucket's replica count.
	Replicas int
	// HeartbeatFlush is how often heartbeats are written to the index, in one
	// transaction for every node heard from since the last.
	HeartbeatFlush time.Duration
	// Auth turns on NATS's decentralized auth for the embedded server: every
	// client needs a credential of the store in DataDir/auth (see package
	// auth); the hub uses its own.
	Auth bool
	// TLS, when set, serves NATS clients over TLS (mTLS when it requires
	// client certificates).
	TLS *tls.Config
	// NATSCreds is the credentials file the hub connects to NATSURL with.
	NATSCreds string
	// ClusterTLS, when set, serves and dials the routes to the other hubs
	// over TLS.
	ClusterTLS *tls.Config
	// IndexCheck is how often the hub checks that its index file is still
	// the one it opened (see Failed).
	IndexCheck time.Duration
	// StoreReserve is the free space the embedded JetStream keeps on its disk:
	// below it the hub refuses batches (see storeGuard); a negative value
	// turns the guard off. It does not apply with NATSURL.
	StoreReserve int64
	Logger       zerolog.Logger
	Now          func() time.Time

	log      zerolog.Logger
	index    *index.Index
	reg      *registry
	counters *natsjs.Counters
	live     *Live
	mat      *Materializer
	nats     *natsjs.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	hbSub    *nats.Subscription
	clockSub *nats.Subscription
	guard    *storeGuard
	store    *auth.Store
	authKV   jetstream.KeyValue // AUTH, in a cluster with credentials
	lctx     context.Context    // ends with Close
	audit    *audit
	sysNC    *nats.Conn
	credGen  time.Time
	delivery Observer
	failed   chan error
	failure  atomic.Pointer[error]
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	lock     *os.File // holds LockFile
}

// New returns a hub with defaults: ./hub-data, 127.0.0.1:4222, 10 GiB of
// JetStream storage, 30 days of retention.
func New() *Hub {
	return &Hub{
		DataDir:        "./hub-data",
		NATSAddr:       "127.0.0.1:4222",
		MaxStore:       10 << 30,
		Retention:      30 * 24 * time.Hour,
		Name:           DefaultName(),
		Replicas:       1,
		HeartbeatFlush: time.Second,
		IndexCheck:     2 * time.Second,
		StoreReserve:   DefaultStoreReserve,
		Logger:         zerolog.Nop(),
		Now:            time.Now,
	}
}

// DefaultName is the host name, cleaned into a valid name (stream.CleanName).
func DefaultName() string {
	host, _ := os.Hostname()
	return stream.CleanName(host)
}

// ObserveDelivery makes the materializer tell o, for every new event that
// carries its ingest time, how long it took from its ingest at the edge to
// being queryable at the hub, in seconds. Call it before Open.
func (h *Hub) ObserveDelivery(o Observer) { h.delivery = o }

// Open takes the data directory (see Lock), starts the embedded server (unless
// NATSURL is set), makes sure the EDGE stream and the counters bucket exist,
// opens the index and the registry, and starts the materializer and the
// heartbeat listener.
func (h *Hub) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if err := h.Lock(); err != nil {
		return err
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.HeartbeatFlush <= 0 {
		h.HeartbeatFlush = time.Second
	}
	if h.IndexCheck <= 0 {
		h.IndexCheck = 2 * time.Second
	}
	h.failed = make(chan error, 1)
	h.log = h.Logger.With().Str("component", "hub").Logger()
	if err := h.validate(); err != nil {
		return err
	}
	if err := h.connect(); err != nil {
		return err
	}
	js, err := jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	h.js = js
	if err := h.retry(ctx, "create stream "+stream.JetStreamName, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig(h.Retention, h.Replicas))
		return err
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", stream.JetStreamName, err)
	}
	if err := h.retry(ctx, "open the counters bucket", func(ctx context.Context) error {
		h.counters = natsjs.NewCounters(js)
		h.counters.Replicas = h.Replicas
		h.counters.Logger = h.Logger
		return h.counters.Open(ctx)
	}); err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	if err := h.openIndex(ctx); err != nil {
		return err
	}
	h.live = NewLive()
	h.mat = NewMaterializer(js, h.index, h.reg, h.counters, h.live)
	h.mat.Logger, h.mat.Now, h.mat.Delivery, h.mat.Consumer = h.Logger, h.Now, h.delivery, h.Consumer
	h.mat.Replay = h.index.Created()
	if h.mat.Replay {
		h.log.Info().Str("consumer", h.Consumer).Msg("index is new: replaying the EDGE stream from the start")
	}
	h.js = js
	if err := h.retry(ctx, "create consumer "+h.Consumer, h.mat.Open); err != nil {
		return err
	}
	if h.hbSub, err = h.nc.Subscribe(stream.HeartbeatSubjects, h.onHeartbeat); err != nil {
		return fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	// A fleet sends thousands of heartbeats a second: let them queue in the
	// client rather than be dropped as a slow consumer.
	_ = h.hbSub.SetPendingLimits(1<<20, 256<<20)
	if h.clockSub, err = h.nc.QueueSubscribe(stream.ClockSubjects, "clock", h.answerClock); err != nil {
		return fmt.Errorf("subscribe to clock requests: %w", err)
	}
	// Open returns once the server has the subscriptions, so that a
	// heartbeat sent after Open is never missed.
	if err := h.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	var lctx context.Context
	lctx, h.cancel = context.WithCancel(context.Background())
	h.lctx = lctx
	h.wg.Add(3)
	go h.flushHeartbeats(lctx)
	go h.prune(lctx)
	go h.watchIndex(lctx)
	h.wg.Add(1)
	go h.every(lctx, 2*time.Second, h.healOnce)
	if h.store != nil {
		h.wg.Add(1)
		go h.every(lctx, time.Second, h.checkCredentials)
		if h.clustered() {
			if err := h.openAuthSync(ctx); err != nil {
				return err
			}
		}
	}
	if h.nats != nil && h.StoreReserve >= 0 {
		h.guard = &storeGuard{nats: h.nats, js: js, dir: h.DataDir, reserve: h.StoreReserve,
			normal: natsjs.StreamConfig(h.Retention, h.Replicas), log: h.log}
		h.guard.adoptBallast()
		h.guard.check(ctx)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.guard.run(lctx, storeCheckPeriod)
		}()
	}
	return nil
}

// openIndex opens the index and fills the registry from it.
func (h *Hub) openIndex(ctx context.Context) error {
	h.index = index.New(filepath.Join(h.DataDir, "index.db"))
	if err := h.index.Open(ctx); err != nil {
		return err
	}
	nodes, err := h.index.LoadNodes(ctx)
	if err != nil {
		return err
	}
	epochs, err := h.index.LoadEpochs(ctx)
	if err != nil {
		return err
	}
	h.reg = newRegistry()
	h.reg.load(nodes, epochs)
	return nil
}

// ClientURL returns the URL edge agents connect to.
func (h *Hub) ClientURL() string {
	if h.nats != nil {
		return h.nats.ClientURL()
	}
	return h.NATSURL
}

// Ready returns nil when the hub is connected to JetStream and materializing.
func (h *Hub) Ready() error {
	switch {
	case h.nc == nil || !h.nc.IsConnected():
		return errors.New("not connected to nats")
	case h.mat == nil || !h.mat.Running():
		return errors.New("materializer not running")
	}
	if p := h.failure.Load(); p != nil {
		return *p
	}
	if h.guard != nil {
		if err := h.guard.err(); err != nil {
			return err
		}
	}
	return h.mat.Healthy()
}

// queryIndex is the index as queries see it: the nodes come from the
// registry, which knows a node from its first heartbeat, the chunks from the
// index.
type queryIndex struct {
	*index.Index
	reg *registry
}

func (q queryIndex) Nodes(context.Context) ([]string, error) { return q.reg.list(), nil }
func (q queryIndex) HasNode(_ context.Context, node string) (bool, error) {
	return q.reg.has(node), nil
}

func (h *Hub) queries() pattern.Index { return queryIndex{Index: h.index, reg: h.reg} }

// Query runs a prepared pattern query over the index: CatchUp, then Answer.
func (h *Hub) Query(ctx context.Context, q *pattern.Query) (*pattern.Result, error) {
	caught, err := h.CatchUp(ctx, q)
	if err != nil {
		return nil, err
	}
	return h.Answer(ctx, q, caught)
}

// CatchUp is the wait of a strong read (see catchUp): it returns the
// completeness of each online node in scope after the wait, or nil for an
// eventual read.
func (h *Hub) CatchUp(ctx context.Context, q *pattern.Query) (map[string]pattern.Completeness, error) {
	if !q.Strong {
		return nil, nil
	}
	nodes, err := h.Scope(ctx, q)
	if err != nil {
		return nil, err
	}
	return h.catchUp(ctx, nodes, q.Wait), nil
}

// Answer runs q over the index and fills in each node's completeness — from
// caught where it has the node, else from the registry — and with it whether
// the verdict is certain.
func (h *Hub) Answer(ctx context.Context, q *pattern.Query, caught map[string]pattern.Completeness) (*pattern.Result, error) {
	res, err := pattern.Execute(ctx, h.queries(), q)
	if err != nil {
		return nil, err
	}
	h.reg.withCompleteness(h.Now().UnixNano(), func(of func(string) pattern.Completeness) {
		res.SetCompleteness(q.Kind, func(n string) pattern.Completeness {
			if c, ok := caught[n]; ok {
				return c
			}
			return of(n)
		})
	})
	return res, nil
}

// Completeness returns what the hub knows of how complete its data of node
// is, now.
func (h *Hub) Completeness(node string) pattern.Completeness {
	return h.reg.completeness(node, h.Now().UnixNano())
}

// Scope returns the nodes in scope of q, or an error wrapping
// pattern.ErrUnknownNode for a named node the hub has never heard of.
func (h *Hub) Scope(ctx context.Context, q *pattern.Query) ([]string, error) {
	return pattern.Scope(ctx, h.queries(), q)
}

// Subscribe starts a live query: matches of events indexed from now on.
func (h *Hub) Subscribe(q *pattern.Query) *Subscription { return h.live.Subscribe(q) }

// Nodes returns a page of the node registry with totals over the whole
// fleet. A bad query returns an error wrapping ErrInvalidQuery.
func (h *Hub) Nodes(ctx context.Context, q NodeQuery) (NodePage, error) {
	return h.reg.page(q, h.Now().UnixNano())
}

// Gaps returns a node's dropped and missing ranges (see index.Index.Gaps), or
// an error wrapping ErrUnknownNode.
func (h *Hub) Gaps(ctx context.Context, node string) ([]stream.Drop, error) {
	if !h.reg.has(node) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	return h.index.Gaps(ctx, node)
}

// Counters returns every distributed counter, sorted by name.
func (h *Hub) Counters(ctx context.Context) ([]counters.Counter, error) {
	return h.counters.List(ctx)
}

// Counter returns one distributed counter, or an error wrapping
// counters.ErrUnknownCounter.
func (h *Hub) Counter(ctx context.Context, name string) (counters.Counter, error) {
	return h.counters.Get(ctx, name)
}

// Stats are the hub's figures for /metrics.
type Stats struct {
	Materializer MaterializerStats
	// LiveSubscribers is the number of open live queries.
	LiveSubscribers int
	// Pending is the number of stream messages not yet materialized, when it
	// could be read.
	Pending    uint64
	PendingErr error
	// StoreFull is true while the embedded JetStream's disk is under its
	// reserve; StoreFreeBytes is the space left there (0 when not measured).
	StoreFull      bool
	StoreFreeBytes int64
	// CounterKindConflicts counts counter states ignored because they were of
	// another kind than their counter.
	CounterKindConflicts uint64
	// AuthFailures counts refused NATS connections and messages by reason
	// (AuthFail…); nil when the hub runs no embedded server.
	AuthFailures map[string]int64
}

// Stats returns the hub's figures. It asks JetStream for the consumer's
// pending count, bounded by ctx.
func (h *Hub) Stats(ctx context.Context) Stats {
	st := Stats{Materializer: h.mat.Stats(), LiveSubscribers: h.live.Count(), CounterKindConflicts: h.counters.KindConflicts()}
	st.Pending, st.PendingErr = h.mat.Pending(ctx)
	if h.guard != nil {
		st.StoreFull, st.StoreFreeBytes = h.guard.full.Load(), h.guard.free.Load()
	}
	if h.audit != nil {
		st.AuthFailures = h.audit.counts()
	}
	return st
}

// Close stops the materializer and the listeners, stores the heartbeats not
// yet stored, closes the index and the connection, and shuts the embedded
// server down.
func (h *Hub) Close() error {
	if h.hbSub != nil {
		_ = h.hbSub.Unsubscribe()
	}
	if h.clockSub != nil {
		_ = h.clockSub.Unsubscribe()
	}
	if h.sysNC != nil {
		h.sysNC.Close()
	}
	if h.cancel != nil {
		h.cancel()
		h.wg.Wait()
	}
	if h.mat != nil {
		h.mat.Close()
	}
	var errs []error
	if h.reg != nil && h.index != nil {
		errs = append(errs, h.saveHeartbeats(context.Background()))
	}
	if h.counters != nil {
		errs = append(errs, h.counters.Close())
	}
	if h.index != nil {
		errs = append(errs, h.index.Close())
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.nats != nil {
		h.nats.Close()
	}
	if h.audit != nil {
		h.audit.close()
	}
	h.unlock()
	return errors.Join(errs...)
}

// onHeartbeat records one heartbeat from ctl.<node>.hb. A heartbeat is for the
// moment: a bad one is logged at debug level and dropped, and the next one
// replaces it.
func (h *Hub) onHeartbeat(m *nats.Msg) {
	node, err := stream.ParseHeartbeatSubject(m.Subject)
	if err == nil {
		err = stream.ValidateName("node", node)
	}
	var f *stream.Frame
	if err == nil {
		f, err = stream.Decode(m.Data)
	}
	switch {
	case err != nil:
	case f.Kind != stream.KindHeartbeat:
		err = fmt.Errorf("%v frame on %s", f.Kind, m.Subject)
	case f.Node != node:
		err = fmt.Errorf("heartbeat of node %q on %s", f.Node, m.Subject)
	}
	if err != nil {
		h.log.Debug().Err(err).Str("subject", m.Subject).Msg("ignoring heartbeat")
		return
	}
	h.reg.heartbeat(node, f.Epoch, *f.Heartbeat, h.Now().UnixNano())
}

// flushHeartbeats writes the registry's new heartbeats to the index every
// HeartbeatFlush, in one transaction.
func (h *Hub) flushHeartbeats(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTicker(h.HeartbeatFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.saveHeartbeats(ctx); err != nil {
			h.log.Warn().Err(err).Msg("store heartbeats; trying again")
		}
	}
}

func (h *Hub) saveHeartbeats(ctx context.Context) error {
	rows := h.reg.takeDirty()
	if err := h.index.SaveHeartbeats(ctx, rows); err != nil {
		h.reg.redirty(rows)
		return err
	}
	return nil
}

// prune deletes index events older than Retention once an hour, so the index
// holds what the stream holds.
func (h *Hub) prune(ctx context.Context) {
	defer h.wg.Done()
	if h.Retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cut := h.Now().Add(-h.Retention).UnixNano()
		if n, err := h.index.Prune(ctx, cut); err != nil {
			h.log.Warn().Err(err).Msg("prune index")
		} else if n > 0 {
			h.log.Info().Int64("events", n).Msg("pruned index past retention")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
