package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

func routeStrings(us []*url.URL) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

func TestClusterRoutes(t *testing.T) {
	tests := []struct {
		name  string
		addr  string
		peers []string
		want  []string // routes, or the error's text
		err   bool
	}{
		{"the others: this server is added", "127.0.0.1:6222", []string{"nats://127.0.0.1:6223", "127.0.0.1:6224"},
			[]string{"nats://127.0.0.1:6223", "nats://127.0.0.1:6224", "nats://127.0.0.1:6222"}, false},
		{"every server: nothing is added", "127.0.0.1:6222", []string{"nats://127.0.0.1:6222", "nats://127.0.0.1:6223", "nats://127.0.0.1:6224"},
			[]string{"nats://127.0.0.1:6222", "nats://127.0.0.1:6223", "nats://127.0.0.1:6224"}, false},
		{"a wildcard listener dials itself on loopback", "0.0.0.0:6222", []string{"nats://10.9.8.7:6222", "nats://10.9.8.6:6222"},
			[]string{"nats://10.9.8.7:6222", "nats://10.9.8.6:6222", "nats://127.0.0.1:6222"}, false},
		{"localhost on our port is us", "0.0.0.0:6222", []string{"nats://localhost:6222", "nats-route://10.9.8.6:6222"},
			[]string{"nats://localhost:6222", "nats://10.9.8.6:6222"}, false},
		{"a repeated peer counts once", "127.0.0.1:6222", []string{"nats://127.0.0.1:6223", "nats-route://127.0.0.1:6223"},
			[]string{"nats://127.0.0.1:6223", "nats://127.0.0.1:6222"}, false},
		{"itself alone", "127.0.0.1:6222", []string{"nats://127.0.0.1:6222"}, []string{"other servers"}, true},
		{"no peers", "127.0.0.1:6222", nil, []string{"other servers"}, true},
		{"no port to listen on", "127.0.0.1:0", []string{"nats://127.0.0.1:6223"}, []string{"give a port"}, true},
		{"a peer without a port", "127.0.0.1:6222", []string{"nats://10.0.0.1"}, []string{`peer "nats://10.0.0.1"`}, true},
		{"a peer of another scheme", "127.0.0.1:6222", []string{"http://10.0.0.1:6222"}, []string{`scheme "http"`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := natsjs.ClusterRoutes(tt.addr, tt.peers)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want[0]) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.want[0])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(routeStrings(got)) != fmt.Sprint(tt.want) {
				t.Fatalf("routes %v, want %v", routeStrings(got), tt.want)
			}
		})
	}
	if _, err := natsjs.ClusterRoutes("127.0.0.1:6222", nil); !errors.Is(err, natsjs.ErrNoPeers) {
		t.Fatalf("no peers: %v, want ErrNoPeers", err)
	}
}

// TestClusterOptionsMatchTheConfigFile holds the hand-built options of a
// clustered server against what nats-server makes of the equivalent
// configuration file, the way its own cluster tests configure servers
// (server/jetstream_helpers_test.go): hand-built options that miss what the
// file parser sets are a known source of clusters that never elect leaders.
func TestClusterOptionsMatchTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	n := &natsjs.Server{Name: "hub-a", Addr: "127.0.0.1:4222", StoreDir: dir, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		ClusterAddr: "127.0.0.1:6222", Peers: []string{"nats://127.0.0.1:6223", "nats://127.0.0.1:6224"}}
	ours, err := n.Options()
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
		listen: 127.0.0.1:4222
		server_name: hub-a
		jetstream: {max_mem_store: %d, max_file_store: %d, store_dir: '%s', sync_interval: always}
		max_payload: %d
		cluster {
			name: tributary
			listen: 127.0.0.1:6222
			routes = [nats://127.0.0.1:6223, nats://127.0.0.1:6224, nats://127.0.0.1:6222]
		}`, 64<<20, 1<<30, dir, stream.MaxFrameBytes)
	file := &server.Options{}
	if err := file.ProcessConfigString(conf); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"server_name", ours.ServerName, file.ServerName},
		{"listen", fmt.Sprint(ours.Host, ":", ours.Port), fmt.Sprint(file.Host, ":", file.Port)},
		{"jetstream", ours.JetStream, file.JetStream},
		{"store_dir", ours.StoreDir, file.StoreDir},
		{"max_file_store", ours.JetStreamMaxStore, file.JetStreamMaxStore},
		{"max_mem_store", ours.JetStreamMaxMemory, file.JetStreamMaxMemory},
		{"sync always", ours.SyncAlways, file.SyncAlways},
		{"max_payload", ours.MaxPayload, file.MaxPayload},
		{"cluster name", ours.Cluster.Name, file.Cluster.Name},
		{"cluster listen", fmt.Sprint(ours.Cluster.Host, ":", ours.Cluster.Port), fmt.Sprint(file.Cluster.Host, ":", file.Cluster.Port)},
		{"routes", fmt.Sprint(routeStrings(ours.Routes)), fmt.Sprint(routeStrings(file.Routes))},
		{"no advertise", ours.Cluster.NoAdvertise, file.Cluster.NoAdvertise},
		{"system account", ours.SystemAccount, file.SystemAccount},
		{"no system account", ours.NoSystemAccount, file.NoSystemAccount},
		{"dont listen", ours.DontListen, file.DontListen},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: ours %v, the config file's %v", c.what, c.got, c.want)
		}
	}
	if ours.Cluster.Name != natsjs.ClusterName {
		t.Errorf("cluster name %q, want %q", ours.Cluster.Name, natsjs.ClusterName)
	}

	single := &natsjs.Server{Addr: "127.0.0.1:4222", StoreDir: dir, MaxStore: 1 << 30}
	if o, err := single.Options(); err != nil || o.Cluster.Port != 0 || len(o.Routes) != 0 {
		t.Fatalf("a single server has cluster options: %+v, %v", o.Cluster, err)
	}
	noName := *n
	noName.Name = ""
	if _, err := noName.Options(); err == nil {
		t.Fatal("a clustered server without a name was accepted")
	}
}

// cluster is three embedded servers routed to each other.
type cluster struct {
	t       *testing.T
	servers []*natsjs.Server
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var peers []string
	for i := 0; i < n; i++ {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(t)))
	}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		c.servers = append(c.servers, &natsjs.Server{Name: fmt.Sprintf("s%d", i+1), Addr: "127.0.0.1:0",
			StoreDir: filepath.Join(dir, fmt.Sprint(i)), MaxStore: 1 << 30, MaxMemory: 64 << 20,
			ClusterAddr: strings.TrimPrefix(peers[i], "nats://"), Peers: peers, ReadyTimeout: 30 * time.Second})
	}
	for i := range c.servers {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.Close()
		}
	})
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	if err := c.servers[i].Open(); err != nil {
		c.t.Fatalf("start %s: %v", c.servers[i].Name, err)
	}
}

func (c *cluster) urls() string {
	var us []string
	for _, s := range c.servers {
		if s.NATS() != nil && s.NATS().Running() {
			us = append(us, s.ClientURL())
		}
	}
	return strings.Join(us, ",")
}

// TestClusterReplicatesThroughALeaderLoss runs three servers built from
// Options, creates the EDGE stream at R3, stops its leader, publishes through
// the other two, and brings the server back: it catches up.
func TestClusterReplicatesThroughALeaderLoss(t *testing.T) {
	c := startCluster(t, 3)
	nc, err := nats.Connect(c.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	proctest.WaitFor(t, "a meta leader and three peers", 30*time.Second, func() bool {
		m, ok := c.servers[0].Meta()
		return ok && m.Leader != "" && len(m.Peers) == 3 && m.Cluster == natsjs.ClusterName
	})
	var s jetstream.Stream
	proctest.WaitFor(t, "the R3 stream", 30*time.Second, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err = js.CreateOrUpdateStream(cctx, natsjs.StreamConfig(0, 3))
		return err == nil
	})
	base := 0
	publish := func(n int) {
		t.Helper()
		base++
		for i := 0; i < n; i++ {
			// While the stream elects a leader a publish gets no answer at
			// all: each try has its own deadline, and the message ID makes a
			// repeat of a stored one a no-op.
			for {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "edge.n1.s", []byte("x"), jetstream.WithMsgID(fmt.Sprintf("m-%d-%d", base, i)))
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
			}
		}
	}
	publish(10)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v", info.Cluster)
	}
	leader := -1
	for i, srv := range c.servers {
		if srv.Name == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("leader %q is none of the servers", info.Cluster.Leader)
	}
	c.servers[leader].Close()
	publish(10)
	c.start(leader)
	proctest.WaitFor(t, "the returned server to hold every message", 60*time.Second, func() bool {
		return localMsgs(c.servers[leader].NATS(), stream.JetStreamName) == 20
	})
	proctest.WaitFor(t, "every replica current", 60*time.Second, func() bool {
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return len(info.Cluster.Replicas) == 2 && info.State.Msgs == 20
	})
}

// localMsgs returns the messages server s itself holds in the named stream.
func localMsgs(s *server.Server, name string) uint64 {
	jsz, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return 0
	}
	for _, a := range jsz.AccountDetails {
		for _, st := range a.Streams {
			if st.Name == name {
				return st.State.Msgs
			}
		}
	}
	return 0
}
