package hub

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/stream"
)

// every calls fn every period until ctx ends, on the hub's wait group.
func (h *Hub) every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	defer h.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}

// healOnce checks that the EDGE stream, the COUNTERS bucket and the
// materializer's consumer exist, and makes again whatever is gone — deleted by
// hand, or by a client that should not have been able to — logging it as an
// error. Edges resume by themselves once their stream is back.
func (h *Hub) healOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.js.Stream(ctx, stream.JetStreamName); errors.Is(err, jetstream.ErrStreamNotFound) {
		h.log.Error().Str("stream", stream.JetStreamName).Msg("the EDGE stream is gone; making it again (batches it held and the index had not read are lost)")
		if _, err := h.js.CreateOrUpdateStream(ctx, natsjs.StreamConfig(h.Retention, h.Replicas)); err != nil {
			h.log.Error().Err(err).Msg("make the EDGE stream again")
			return
		}
	}
	if err := h.counters.Heal(ctx); err != nil {
		h.log.Error().Err(err).Msg("make the COUNTERS bucket again")
	}
	if err := h.mat.Heal(ctx); err != nil {
		h.log.Error().Err(err).Msg("make the materializer's consumer again")
	}
}

// checkCredentials applies the credential store's changes (revocations) to
// the running server when the store has changed since the last look.
func (h *Hub) checkCredentials(ctx context.Context) {
	gen := h.store.Generation()
	if gen.Equal(h.credGen) {
		return
	}
	if err := h.applyCredentials(); err != nil {
		h.log.Error().Err(err).Msg("apply the credential store")
		return
	}
	h.credGen = gen
	h.shareAccount(ctx)
}

// applyCredentials gives the server the fleet account's current JWT and logs
// every revoked node still connected, whose connections the server now closes.
func (h *Hub) applyCredentials() error {
	pub, accJWT, err := h.store.Account()
	if err != nil {
		return err
	}
	nodes, err := h.store.Nodes()
	if err != nil {
		return err
	}
	conns, _ := h.nats.Connz(pub)
	for _, n := range nodes {
		if n.Revoked.IsZero() {
			continue
		}
		for _, c := range conns {
			if c.AuthorizedUser == n.PublicKey {
				h.audit.failures[AuthFailRevoked].Add(1)
				h.log.Warn().Str("reason", AuthFailRevoked).Str("node", n.Name).Str("remote", c.IP).Int("port", c.Port).
					Msg("node revoked: closing its connection")
			}
		}
	}
	if err := h.nats.UpdateAccount(pub, accJWT); err != nil {
		return err
	}
	revoked := slices.DeleteFunc(nodes, func(n auth.Node) bool { return n.Revoked.IsZero() })
	h.log.Info().Int("revoked_nodes", len(revoked)).Msg("credential store applied")
	return nil
}
