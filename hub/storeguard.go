package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// storeCheckPeriod is how often the store guard looks at the free space: a
// statfs, cheap enough to run often, so that a fast stream of batches does not
// run through the reserve between two looks.
const storeCheckPeriod = 250 * time.Millisecond

// storeGuard keeps the embedded JetStream off a full disk. nats-server, when a
// write fails for lack of space, stops writing that stream and answers no
// publish until it is restarted, so edges would wait for acks that never come.
// The guard watches the free space of the store's file system: below Reserve
// it caps the EDGE stream at its current size with discard-new, so that every
// publish gets a fast refusal and the hub reports itself full; once twice the
// reserve is free again it lifts the cap. Should a write fail anyway (another
// process filled the disk faster than a check), it restarts JetStream, which
// loads the stream afresh.
//
// Capping the stream writes its configuration to the same disk, and so does
// the index, which keeps applying what the stream holds after the cap. So the
// guard also holds a ballast file (CockroachDB keeps one for the same reason):
// at a disk with no room for the cap it deletes the ballast first, caps, and
// makes the ballast again once the disk has room.
type storeGuard struct {
	nats    *natsjs.Server
	js      jetstream.JetStream
	dir     string
	reserve int64
	normal  jetstream.StreamConfig
	log     zerolog.Logger

	mu      sync.Mutex
	capped  bool
	ballast int64 // bytes of the ballast file held now: 0 or ballastBytes()
	// noBallast is set once the file system refused the ballast (no
	// fallocate, say): the guard then works without one and stops trying.
	noBallast bool
	full      atomic.Bool
	reason    atomic.Pointer[string]
	free      atomic.Int64
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
		// Cap before the restart, so that the stream comes back refusing
		// what it has no room for instead of meeting the full disk again.
		g.capped = g.capWithRoom(ctx) == nil
		if err := g.nats.ResetJetStream(); err != nil {
			g.log.Error().Err(err).Msg("restart JetStream")
			g.setFull(fmt.Sprintf("store full: the EDGE stream cannot write (%v) and JetStream did not restart", werr))
			return
		}
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
			if err := g.capWithRoom(ctx); err != nil {
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
	case !g.full.Load() && g.ballast == 0 && !g.noBallast && free >= 2*g.reserve:
		g.makeBallast()
	}
}

// ballastBytes is the size of the ballast: a quarter of the reserve, at most
// 8 MiB, far more than a stream's configuration needs.
func (g *storeGuard) ballastBytes() int64 { return min(g.reserve/4, 8<<20) }

func (g *storeGuard) ballastPath() string { return filepath.Join(g.dir, BallastFile) }

// BallastFile is the name of the store guard's ballast in the hub's data
// directory.
const BallastFile = "store.ballast"

// adoptBallast takes up the ballast a previous run of the hub left.
func (g *storeGuard) adoptBallast() {
	if st, err := os.Stat(g.ballastPath()); err == nil && st.Mode().IsRegular() {
		g.ballast = st.Size()
	}
}

// makeBallast allocates the ballast file, and does nothing where it cannot.
func (g *storeGuard) makeBallast() {
	n := g.ballastBytes()
	if n <= 0 {
		return
	}
	if err := allocate(g.ballastPath(), n); err != nil {
		g.log.Warn().Err(err).Str("path", g.ballastPath()).Msg("cannot make the store's ballast file; a disk filled at once by another process may leave edges waiting for acks until space frees")
		os.Remove(g.ballastPath())
		g.noBallast = true
		return
	}
	g.ballast = n
}

// releaseBallast deletes the ballast file, to give its room to JetStream.
func (g *storeGuard) releaseBallast() bool {
	if g.ballast == 0 {
		return false
	}
	if err := os.Remove(g.ballastPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		g.log.Error().Err(err).Msg("delete the store's ballast file")
		return false
	}
	g.log.Warn().Int64("bytes", g.ballast).Msg("deleted the store's ballast file to make room for capping the EDGE stream")
	g.ballast = 0
	return true
}

// capWithRoom caps the stream, deleting the ballast and trying once more if
// the first try fails (for want of room to write the configuration, most
// often).
func (g *storeGuard) capWithRoom(ctx context.Context) error {
	err := g.cap(ctx)
	if err != nil && g.releaseBallast() {
		err = g.cap(ctx)
	}
	return err
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
