package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/stream"
)

// DefaultStoreReserve is the free disk space below which the hub stops
// accepting batches: two of the largest frames, so that no write of JetStream
// meets a full disk.
const DefaultStoreReserve = 2 * stream.MaxFrameBytes

// storeGuard keeps the embedded JetStream off a full disk. nats-server, when a
// write fails for lack of space, stops writing that stream and answers no
// publish until it is restarted, so edges would wait for acks that never come.
// The guard watches the free space of the store's file system: below Reserve
// it caps the EDGE stream at its current size with discard-new, so that every
// publish gets a fast refusal and the hub reports itself full; once twice the
// reserve is free again it lifts the cap. Should a write fail anyway (another
// process filled the disk faster than a check), it restarts JetStream, which
// loads the stream afresh.
type storeGuard struct {
	nats    *natsjs.Server
	js      jetstream.JetStream
	dir     string
	reserve int64
	normal  jetstream.StreamConfig
	log     zerolog.Logger

	mu     sync.Mutex
	capped bool
	full   atomic.Bool
	reason atomic.Pointer[string]
	free   atomic.Int64
}

// err returns why the store is full, or nil.
func (g *storeGuard) err() error {
	if !g.full.Load() {
		return nil
	}
	if r := g.reason.Load(); r != nil {
		return errors.New(*r)
	}
	return errors.New("store full")
}

// run checks every period until ctx ends.
func (g *storeGuard) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		g.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check looks at the disk once and caps or uncaps the stream.
func (g *storeGuard) check(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	free, ferr := freeBytes(g.dir)
	if ferr != nil {
		return
	}
	g.free.Store(free)
	werr := g.nats.StreamWriteError(stream.JetStreamName)
	if werr != nil {
		g.log.Error().Err(werr).Int64("free_bytes", free).Msg("the EDGE stream stopped writing; restarting JetStream so that publishes are answered again")
		if err := g.nats.ResetJetStream(); err != nil {
			g.log.Error().Err(err).Msg("restart JetStream")
			g.setFull(fmt.Sprintf("store full: the EDGE stream cannot write (%v) and JetStream did not restart", werr))
			return
		}
		g.capped = false
	}
	low := free < g.reserve || werr != nil
	switch {
	case low:
		if !g.full.Load() {
			g.log.Error().Int64("free_bytes", free).Int64("reserve_bytes", g.reserve).Str("dir", g.dir).
				Msg("hub store full: batches are refused until space frees")
		}
		g.setFull(fmt.Sprintf("store full: %d MiB free on %s, under the reserve of %d MiB; batches are refused until space frees", free>>20, g.dir, g.reserve>>20))
		if !g.capped {
			if err := g.cap(ctx); err != nil {
				g.log.Error().Err(err).Msg("cap the EDGE stream")
				return
			}
			g.capped = true
		}
	case g.full.Load() && free >= 2*g.reserve:
		if g.capped {
			if _, err := g.js.UpdateStream(ctx, g.normal); err != nil {
				g.log.Error().Err(err).Msg("lift the cap of the EDGE stream")
				return
			}
			g.capped = false
		}
		g.full.Store(false)
		g.log.Info().Int64("free_bytes", free).Msg("hub store has room again: batches are accepted")
	}
}

func (g *storeGuard) setFull(reason string) {
	g.reason.Store(&reason)
	g.full.Store(true)
}

// cap limits the EDGE stream to its size now and makes it refuse new
// messages beyond it, rather than discard old ones the index may not hold.
func (g *storeGuard) cap(ctx context.Context) error {
	s, err := g.js.Stream(ctx, stream.JetStreamName)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	cfg := info.Config
	cfg.Discard = jetstream.DiscardNew
	cfg.MaxBytes = max(int64(info.State.Bytes), 1)
	_, err = g.js.UpdateStream(ctx, cfg)
	return err
}
