package hub

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/apierr"
	"github.com/tributary-edge/tributary/stream"
)

// activeWithin is how recently a peer must have been heard from to count as
// active: nats-server's own interval for a lost quorum.
const activeWithin = 10 * time.Second

// clusterTimeout bounds the stream info request of Cluster: while the stream
// has no leader nobody answers it.
const clusterTimeout = 2 * time.Second

// ErrNotOpen is returned by Cluster before Open has connected the hub.
var ErrNotOpen = apierr.HubNotOpen

// ClusterStatus is the hub's view of its cluster, GET /api/v1/cluster.
type ClusterStatus struct {
	// Name is this hub's name.
	Name string `json:"name"`
	// Clustered is true when the hub's JetStream is clustered: its embedded
	// server is one of a cluster of hubs, or its NATSURL deployment is a
	// cluster.
	Clustered bool `json:"clustered"`
	// Cluster is the NATS cluster's name, empty for a single server.
	Cluster string `json:"cluster"`
	// Peers are the servers of the cluster, this hub's included, by name. With
	// the embedded server they are the hubs; with NATSURL, the servers of that
	// deployment that hold the EDGE stream.
	Peers []ClusterPeer `json:"peers"`
	// StreamLeader names the server that leads the EDGE stream, empty while
	// it has none (a lost quorum, an election).
	StreamLeader string `json:"stream_leader"`
	// MetaLeader names the server that leads JetStream's meta group (stream
	// and consumer placement), when the hub can see it.
	MetaLeader string `json:"meta_leader,omitempty"`
	// Replicas is the EDGE stream's replica count.
	Replicas int `json:"replicas"`
	// Server is the NATS server the hub is connected to.
	Server string `json:"server"`
	// Consumer is the durable consumer this hub materializes with; Pending
	// the stream messages it has yet to materialize (nil when unknown).
	Consumer string  `json:"consumer"`
	Pending  *uint64 `json:"pending"`
}

// ClusterPeer is one server of the cluster.
type ClusterPeer struct {
	Name string `json:"name"`
	// Current is true when the peer's replica of the EDGE stream is caught up
	// with the leader's (for a server that holds none, what the meta group
	// says).
	Current bool `json:"current"`
	// Active is true when the peer is reachable: this hub has a route to it
	// (with the embedded server), and it is current or was heard from within
	// the last 10 s.
	Active bool `json:"active"`
	// LastSeenMS is how many milliseconds ago it was last heard from (0: now,
	// or never).
	LastSeenMS int64 `json:"last_seen_ms"`
}

// Cluster returns the hub's view of its cluster. It asks JetStream for the
// EDGE stream's info (bounded by 2 s and ctx) and, with the embedded server,
// reads the meta group from it; while the stream has no leader it answers
// with what the server itself knows and an empty StreamLeader. It returns an
// error only when the hub is not open.
func (h *Hub) Cluster(ctx context.Context) (ClusterStatus, error) {
	st := ClusterStatus{Name: h.Name, Replicas: h.Replicas, Consumer: h.Consumer}
	if h.nc == nil || h.js == nil {
		return st, ErrNotOpen
	}
	st.Server = h.nc.ConnectedServerName()
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	var ci *jetstream.ClusterInfo
	if s, err := h.js.Stream(ctx, stream.JetStreamName); err == nil {
		if info, err := s.Info(ctx); err == nil {
			st.Replicas, ci = info.Config.Replicas, info.Cluster
		}
	}
	if h.mat != nil && h.mat.cons != nil {
		if p, err := h.mat.Pending(ctx); err == nil {
			st.Pending = &p
		}
	}
	peers := map[string]ClusterPeer{}
	routed := map[string]bool{}
	if h.nats != nil {
		if m, ok := h.nats.Meta(); ok {
			st.Clustered, st.Cluster, st.MetaLeader = true, m.Cluster, m.Leader
			for _, p := range m.Peers {
				peers[p.Name] = ClusterPeer{Name: p.Name, Current: p.Current, Active: p.Routed && heard(p.Current, p.Offline, p.Active),
					LastSeenMS: p.Active.Milliseconds()}
				routed[p.Name] = p.Routed
			}
		}
	} else if ci != nil && (ci.Name != "" || len(ci.Replicas) > 0) {
		st.Clustered, st.Cluster = true, ci.Name
	}
	if ci != nil && st.Clustered {
		// The stream's leader answered: its view of the replicas is the one
		// that knows how far each has got. With the embedded server, this
		// hub's routes say first when a hub is gone.
		st.StreamLeader = ci.Leader
		reach := func(name string) bool { _, known := routed[name]; return !known || routed[name] }
		if ci.Leader != "" {
			peers[ci.Leader] = ClusterPeer{Name: ci.Leader, Current: true, Active: reach(ci.Leader)}
		}
		for _, r := range ci.Replicas {
			peers[r.Name] = ClusterPeer{Name: r.Name, Current: r.Current, Active: reach(r.Name) && heard(r.Current, r.Offline, r.Active),
				LastSeenMS: r.Active.Milliseconds()}
		}
	}
	if !st.Clustered {
		// A single hub: itself, leading its own stream.
		st.StreamLeader = h.Name
		peers = map[string]ClusterPeer{h.Name: {Name: h.Name, Current: true, Active: true}}
	}
	for _, p := range peers {
		st.Peers = append(st.Peers, p)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Name < st.Peers[j].Name })
	return st, nil
}

// heard reports whether a peer counts as active from what Raft says of it:
// not offline, and current or heard from lately (a peer not heard from since
// a leader change has no time at all, and is not current either).
func heard(current, offline bool, since time.Duration) bool {
	return !offline && (current || since > 0 && since < activeWithin)
}

// validate checks the cluster fields and fills in Consumer.
func (h *Hub) validate() error {
	if h.Replicas < 1 || h.Replicas > 5 {
		return fmt.Errorf("replicas %d: want 1 to 5", h.Replicas)
	}
	if h.ClusterAddr == "" {
		if len(h.Peers) > 0 {
			return errors.New("peers given without a cluster address")
		}
	} else {
		if h.NATSURL != "" {
			return errors.New("a cluster address and a NATS URL exclude each other: the hubs of an external deployment share its cluster")
		}
		if err := stream.ValidateName("hub", h.Name); err != nil {
			return err
		}
		routes, err := natsjs.ClusterRoutes(h.ClusterAddr, h.Peers)
		if err != nil {
			return err
		}
		if h.Replicas > len(routes) {
			return fmt.Errorf("replicas %d: the cluster has %d hubs", h.Replicas, len(routes))
		}
	}
	if h.Consumer == "" {
		h.Consumer = ConsumerName
		if h.clustered() {
			h.Consumer = ClusterConsumer(h.Name)
		}
	}
	return nil
}

// clustered reports whether the embedded server is one of a cluster.
func (h *Hub) clustered() bool { return h.ClusterAddr != "" }

// retry runs fn until it succeeds or ctx ends. A single embedded server
// answers at once or never, so fn runs once; a cluster (or an external
// deployment) may be electing leaders or waiting for its peers, so each try
// gets 4 s and a failure is tried again, logged now and then, except for a
// configuration the deployment refuses.
func (h *Hub) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	if !h.clustered() && h.NATSURL == "" {
		return fn(ctx)
	}
	wait := 100 * time.Millisecond
	var logged time.Time
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 4*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				h.log.Info().Int("attempts", attempt).Msg(what + ": done")
			}
			return nil
		}
		if ctx.Err() != nil || permanent(err) {
			return err
		}
		if time.Since(logged) > 5*time.Second {
			h.log.Warn().Err(err).Int("attempt", attempt).Msg(what + ": waiting for the JetStream cluster (a quorum of hubs)")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// jsReplicasNotSupported is JetStream's error code for replicas above 1 on a
// server that is not clustered.
const jsReplicasNotSupported jetstream.ErrorCode = 10074

// permanent reports whether JetStream refused a request for a reason that
// waiting does not cure.
func permanent(err error) bool {
	var jerr jetstream.JetStreamError
	return errors.As(err, &jerr) && jerr.APIError() != nil && jerr.APIError().ErrorCode == jsReplicasNotSupported
}
