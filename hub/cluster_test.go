package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
)

// TestSingleHubIsItsOwnCluster: a hub without a cluster answers clustered
// false, with itself as the only peer and the leader of its own stream, and
// reads with the consumer single hubs always had.
func TestSingleHubIsItsOwnCluster(t *testing.T) {
	h := openHub(t, t.TempDir())
	defer h.Close()
	st, err := h.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Clustered || st.Name != h.Name || st.StreamLeader != h.Name || st.Replicas != 1 || st.Consumer != ConsumerName {
		t.Fatalf("status %+v", st)
	}
	if len(st.Peers) != 1 || st.Peers[0] != (ClusterPeer{Name: h.Name, Current: true, Active: true}) {
		t.Fatalf("peers %+v", st.Peers)
	}
	if st.Pending == nil || *st.Pending != 0 {
		t.Fatalf("pending %v", st.Pending)
	}
}

// clusterHubs opens n hubs that form a cluster, at once: each one's Open
// waits for a quorum of them.
func clusterHubs(t *testing.T, dirs []string, routes []string) []*Hub {
	t.Helper()
	hubs := make([]*Hub, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hubs[i], errs[i] = openClusterHub(dirs[i], i, routes)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open hub %d: %v", i+1, err)
		}
	}
	return hubs
}

func openClusterHub(dir string, i int, routes []string) (*Hub, error) {
	h := New()
	h.DataDir, h.NATSAddr, h.MaxStore = dir, "127.0.0.1:0", 1<<30
	h.Name, h.ClusterAddr, h.Peers, h.Replicas = fmt.Sprintf("hub-%d", i+1), strings.TrimPrefix(routes[i], "nats://"), routes, 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Open(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// publishUntilStored publishes one batch of events, trying again while the
// cluster has no stream leader; its message ID makes a repeat harmless.
func publishUntilStored(t *testing.T, js jetstream.JetStream, node, epoch string, first, n int) {
	t.Helper()
	recs := make([]stream.Record, n)
	for i := range recs {
		recs[i] = stream.Record{Seq: uint64(first + i), TS: int64(first+i) * 1e6, Data: []byte(fmt.Sprintf(`{"i":%d}`, first+i))}
	}
	frame, err := stream.EncodeEvents(nil, node, epoch, "s", recs)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a stream leader to store a batch", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, stream.Subject(node, "s"), frame, jetstream.WithMsgID(fmt.Sprintf("%s-%d", node, first)))
		return err == nil
	})
}

func consumerCreated(t *testing.T, js jetstream.JetStream, name string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream.JetStreamName, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	return c.CachedInfo().Created
}

// TestClusterOfHubs opens three hubs as a cluster at R3: each reads the whole
// stream into its own index through its own consumer and describes the same
// cluster. Then one hub's index is deleted while the others run: it rebuilds
// from the replicated stream by recreating its own consumer, and the others'
// consumers are not touched.
func TestClusterOfHubs(t *testing.T) {
	if testing.Short() {
		t.Skip("three clustered servers")
	}
	var routes, dirs []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(t)))
		dirs = append(dirs, t.TempDir())
	}
	hubs := clusterHubs(t, dirs, routes)
	defer func() {
		for _, h := range hubs {
			h.Close()
		}
	}()
	var urls []string
	for _, h := range hubs {
		urls = append(urls, h.ClientURL())
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for i := 0; i < 5; i++ {
		publishUntilStored(t, js, "c1", "ep", i*100+1, 100)
	}
	for _, h := range hubs {
		waitUntil(t, h.Name+" to index every event", func() bool { return nodeEvents(t, h, "c1").Events == 500 })
	}

	names := map[string]bool{}
	for _, h := range hubs {
		var st ClusterStatus
		waitUntil(t, h.Name+" to see every peer current", func() bool {
			st, err = h.Cluster(context.Background())
			if err != nil || len(st.Peers) != 3 || st.StreamLeader == "" {
				return false
			}
			for _, p := range st.Peers {
				if !p.Current || !p.Active {
					return false
				}
			}
			return true
		})
		if !st.Clustered || st.Name != h.Name || st.Replicas != 3 || st.Cluster != "tributary" || st.Consumer != "materializer-"+h.Name {
			t.Fatalf("%s: status %+v", h.Name, st)
		}
		if st.Peers[0].Name != "hub-1" || st.Peers[1].Name != "hub-2" || st.Peers[2].Name != "hub-3" {
			t.Fatalf("%s: peers %+v", h.Name, st.Peers)
		}
		names[st.Consumer] = true
	}
	if len(names) != 3 {
		t.Fatalf("consumers %v, want one per hub", names)
	}
	// The COUNTERS bucket is replicated like the stream.
	kv, err := js.KeyValue(context.Background(), stream.CountersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := kv.Status(context.Background()); err != nil || ks.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("counters bucket status %v, %v", ks, err)
	}

	before1, before3 := consumerCreated(t, js, "materializer-hub-1"), consumerCreated(t, js, "materializer-hub-3")
	before2 := consumerCreated(t, js, "materializer-hub-2")
	hubs[1].Close()
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(dirs[1], f))
	}
	// hub-2 may have led the stream: publishing waits for a new leader.
	publishUntilStored(t, js, "c1", "ep", 501, 100)
	if hubs[1], err = openClusterHub(dirs[1], 1, routes); err != nil {
		t.Fatal(err)
	}
	for _, h := range hubs {
		waitUntil(t, h.Name+" to index every event", func() bool { return nodeEvents(t, h, "c1").Events == 600 })
	}
	if ni := nodeEvents(t, hubs[1], "c1"); ni.HighSeq != 600 || ni.Missing != 0 {
		t.Fatalf("rebuilt index: %+v", ni)
	}
	if !consumerCreated(t, js, "materializer-hub-2").After(before2) {
		t.Fatal("the rebuilt hub's consumer was not recreated")
	}
	if !consumerCreated(t, js, "materializer-hub-1").Equal(before1) || !consumerCreated(t, js, "materializer-hub-3").Equal(before3) {
		t.Fatal("rebuilding one hub's index recreated another hub's consumer")
	}
	if st := hubs[0].mat.Stats(); st.Duplicates != 0 {
		t.Fatalf("hub-1 saw %d duplicates: its consumer was replayed", st.Duplicates)
	}
}
