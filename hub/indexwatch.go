package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrIndexGone is sent on Failed when the index file the hub opened was
// deleted or replaced while it ran.
var ErrIndexGone = errors.New("hub: the index file was deleted or replaced")

// Failed returns a channel that receives an error, once, when the hub can no
// longer work and must be restarted: its index file was deleted or replaced
// (ErrIndexGone), so the events it materializes would land in a file nobody
// reads. The process should exit; started again, the hub finds no index and
// rebuilds it from the stream. Ready returns the same error from then on.
func (h *Hub) Failed() <-chan error { return h.failed }

// watchIndex checks every IndexCheck that the index file is still the one
// Open opened, and reports on Failed when it is not.
func (h *Hub) watchIndex(ctx context.Context) {
	defer h.wg.Done()
	path := h.index.Path
	opened, err := os.Stat(path)
	if err != nil {
		return
	}
	t := time.NewTicker(h.IndexCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err == nil && os.SameFile(fi, opened) {
			continue
		}
		ferr := fmt.Errorf("%w: %s (%v); restart the hub to rebuild it from the stream", ErrIndexGone, path, err)
		if err == nil {
			ferr = fmt.Errorf("%w: %s is another file now; restart the hub to rebuild it from the stream", ErrIndexGone, path)
		}
		h.failure.Store(&ferr)
		h.log.Error().Err(ferr).Msg("index file gone")
		h.failed <- ferr
		return
	}
}
