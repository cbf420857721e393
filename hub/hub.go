// Package hub is the cloud side: an embedded nats-server with JetStream (or an
// existing deployment), the materializer that turns edge batches into the query
// index, the node registry and the live fan-out. JetStream is the source of
// truth; the index is a cache that is rebuilt from it when it is missing.
package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// Hub is the whole hub minus its HTTP server. Create it with New, set fields,
// then Open and Close.
type Hub struct {
	// DataDir holds JetStream's store (jetstream/) and the index (index.db).
	DataDir string
	// NATSAddr is where the embedded server listens for edge agents.
	NATSAddr string
	// NATSURL, when set, uses an existing NATS/JetStream deployment instead of
	// the embedded server.
	NATSURL string
	// MaxStore caps the embedded JetStream's file storage in bytes.
	MaxStore int64
	// Retention is how long the EDGE stream and the index keep events; 0 keeps
	// them forever.
	Retention time.Duration
	// Replicas is the EDGE stream's and the counters bucket's replica count.
	Replicas int
	Logger   zerolog.Logger
	Now      func() time.Time

	Index        *Index
	Counters     *counters.Hub
	Live         *Live
	Materializer *Materializer

	nats   *NATS
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a hub with defaults: ./hub-data, 127.0.0.1:4222, 10 GiB of
// JetStream storage, 30 days of retention.
func New() *Hub {
	return &Hub{
		DataDir:   "./hub-data",
		NATSAddr:  "127.0.0.1:4222",
		MaxStore:  10 << 30,
		Retention: 30 * 24 * time.Hour,
		Replicas:  1,
		Logger:    zerolog.Nop(),
		Now:       time.Now,
	}
}

// Open starts the embedded server (unless NATSURL is set), makes sure the EDGE
// stream and the counters bucket exist, opens the index and starts the
// materializer.
func (h *Hub) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if err := os.MkdirAll(h.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	url := h.NATSURL
	if url == "" {
		h.nats = &NATS{Addr: h.NATSAddr, StoreDir: filepath.Join(h.DataDir, "jetstream"), MaxStore: h.MaxStore}
		if err := h.nats.Open(); err != nil {
			return err
		}
		url = h.nats.ClientURL()
	}
	log := h.Logger
	h.nc, err = nats.Connect(url, nats.Name("tributary-hub"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("nats disconnected") }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info().Str("url", c.ConnectedUrl()).Msg("nats reconnected") }))
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", url, err)
	}
	js, err := jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, stream.StreamConfig(h.Retention, h.Replicas)); err != nil {
		return fmt.Errorf("create stream %s: %w", stream.JetStreamName, err)
	}
	h.Counters = counters.NewHub(js)
	h.Counters.Replicas = h.Replicas
	h.Counters.Logger = h.Logger.With().Str("component", "counters").Logger()
	if err := h.Counters.Open(ctx); err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	h.Index = NewIndex(filepath.Join(h.DataDir, "index.db"))
	if err := h.Index.Open(ctx); err != nil {
		return err
	}
	h.Live = NewLive()
	h.Materializer = NewMaterializer(js, h.Index, h.Counters, h.Live)
	h.Materializer.Logger = h.Logger.With().Str("component", "materializer").Logger()
	h.Materializer.Replay = h.Index.Created()
	if h.Materializer.Replay {
		h.Logger.Info().Msg("index is new: replaying the EDGE stream from the start")
	}
	if err := h.Materializer.Open(ctx); err != nil {
		return err
	}
	var pctx context.Context
	pctx, h.cancel = context.WithCancel(context.Background())
	h.done = make(chan struct{})
	go h.prune(pctx)
	return nil
}

// NATSURL returns the URL edge agents connect to.
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
	case h.Materializer == nil || !h.Materializer.Running():
		return errors.New("materializer not running")
	}
	return nil
}

// Query runs a prepared pattern query over the index.
func (h *Hub) Query(ctx context.Context, q *pattern.Query) (*pattern.Result, error) {
	return pattern.Execute(ctx, h.Index, q)
}

// Nodes returns the node registry.
func (h *Hub) Nodes(ctx context.Context) ([]NodeInfo, error) {
	return h.Index.NodeInfos(ctx, h.Now())
}

// Close stops the materializer, closes the index and the connection, and shuts
// the embedded server down.
func (h *Hub) Close() error {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
	if h.Materializer != nil {
		h.Materializer.Close()
	}
	var errs []error
	if h.Counters != nil {
		errs = append(errs, h.Counters.Close())
	}
	if h.Index != nil {
		errs = append(errs, h.Index.Close())
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.nats != nil {
		h.nats.Close()
	}
	return errors.Join(errs...)
}

// prune deletes index events older than Retention once an hour, so the index
// holds what the stream holds.
func (h *Hub) prune(ctx context.Context) {
	defer close(h.done)
	if h.Retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cut := h.Now().Add(-h.Retention).UnixNano()
		if n, err := h.Index.Prune(ctx, cut); err != nil {
			h.Logger.Warn().Err(err).Msg("prune index")
		} else if n > 0 {
			h.Logger.Info().Int64("events", n).Msg("pruned index past retention")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
