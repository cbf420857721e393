package hub

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The hubs of a cluster share a credential store (DATA/auth, copied from the
// first hub), so a credential made on any of them works on all: the account
// signs the users, and every server trusts the account. A revocation, though,
// changes the account's JWT, and each server holds that JWT in memory: the
// hubs share it through the KV bucket AUTH (replicated like the stream). A
// hub whose store changes puts its account JWT there; every hub merges what
// it reads there into its own store (revocations only grow), which its
// credentials watch then applies to its server. Two revocations on two hubs
// at once both survive: each merges the other's.
const (
	authBucket = "AUTH"
	authKey    = "account"
)

// openAuthSync makes or binds the AUTH bucket and starts sharing the account.
func (h *Hub) openAuthSync(ctx context.Context) error {
	err := h.retry(ctx, "open the "+authBucket+" bucket", func(ctx context.Context) error {
		kv, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: authBucket, History: 1,
			Description: "Tributary hubs: the fleet account's JWT, with every revocation", Replicas: h.Replicas, Storage: jetstream.FileStorage})
		if err != nil {
			return err
		}
		h.authKV = kv
		return nil
	})
	if err != nil {
		return err
	}
	h.shareAccount(ctx)
	h.wg.Add(1)
	go h.watchAuthKV()
	return nil
}

// shareAccount puts this hub's account JWT into AUTH after merging what is
// there, so that the bucket holds every hub's revocations.
func (h *Hub) shareAccount(ctx context.Context) {
	if h.authKV == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if e, err := h.authKV.Get(ctx, authKey); err == nil {
		if _, _, err := h.store.MergeAccount(string(e.Value())); err != nil {
			h.log.Error().Err(err).Msg("merge the cluster's account")
			return
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		h.log.Warn().Err(err).Msg("read the cluster's account")
		return
	}
	_, j, err := h.store.Account()
	if err != nil {
		h.log.Error().Err(err).Msg("read the account")
		return
	}
	if _, err := h.authKV.Put(ctx, authKey, []byte(j)); err != nil {
		h.log.Warn().Err(err).Msg("share the account with the cluster")
	}
}

// watchAuthKV merges every account JWT another hub puts into AUTH; the
// credentials watch applies the change to the server.
func (h *Hub) watchAuthKV() {
	defer h.wg.Done()
	ctx := h.lctx
	w, err := h.authKV.Watch(ctx, authKey, jetstream.UpdatesOnly())
	if err != nil {
		h.log.Error().Err(err).Msg("watch the cluster's account")
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			merged, changed, err := h.store.MergeAccount(string(e.Value()))
			if err != nil {
				h.log.Error().Err(err).Msg("merge the cluster's account")
				continue
			}
			if changed {
				h.log.Info().Msg("revocations from another hub of the cluster merged")
			}
			if merged != string(e.Value()) {
				// This hub knows revocations the bucket lacks.
				h.shareAccount(ctx)
			}
		}
	}
}
