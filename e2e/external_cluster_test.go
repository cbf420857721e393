package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/proctest"
)

var (
	natsServerOnce sync.Once
	natsServerErr  error
)

// buildNATSServer builds the nats-server binary of the module's own
// nats-server dependency into binDir, once.
func buildNATSServer(t *testing.T) {
	t.Helper()
	natsServerOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "nats-server"), "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsServerErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsServerErr != nil {
		t.Fatal(natsServerErr)
	}
}

// natsNode is one nats-server process of an external cluster.
type natsNode struct {
	*proc
	name       string
	port, conf int
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// startNATSCluster starts n nats-server processes, n1 … nN, clustered with
// JetStream (file storage, sync always, 16 MiB payloads like the embedded
// server), and waits until they have a JetStream meta leader.
func startNATSCluster(t *testing.T, n int) []*natsNode {
	t.Helper()
	buildNATSServer(t)
	var nodes []*natsNode
	var routes []string
	for i := 0; i < n; i++ {
		nodes = append(nodes, &natsNode{name: fmt.Sprintf("n%d", i+1), port: proctest.FreePort(t), conf: proctest.FreePort(t)})
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", nodes[i].conf))
	}
	for _, nd := range nodes {
		dir := t.TempDir()
		conf := fmt.Sprintf(`
server_name: %s
listen: 127.0.0.1:%d
max_payload: 16MB
jetstream { store_dir: '%s', max_file_store: 1GB, max_memory_store: 64MB, sync_interval: always }
cluster { name: external, listen: 127.0.0.1:%d, routes: [%s] }
`, nd.name, nd.port, filepath.Join(dir, "js"), nd.conf, strings.Join(routes, ", "))
		path := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		nd.proc = startProc(t, "nats-server "+nd.name, "nats-server", "-c", path)
	}
	var urls []string
	for _, nd := range nodes {
		urls = append(urls, nd.url())
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitFor(t, "the external cluster's meta leader", 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	return nodes
}

// TestExternalNATSClusterLosesNothing runs two hubs with --nats-url against
// three real nats-server processes clustered with R3, and edges that list the
// three servers. The server leading EDGE is SIGKILLed mid-ingest and started
// again: every acknowledged event is on both hubs once, counters equal the
// acknowledged increments, and the hubs answer alike.
func TestExternalNATSClusterLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("external cluster crash test")
	}
	servers := startNATSCluster(t, 3)
	var urls []string
	byName := map[string]*natsNode{}
	for _, s := range servers {
		urls = append(urls, s.url())
		byName[s.name] = s
	}
	natsURL := strings.Join(urls, ",")
	c := &hubCluster{t: t, by: map[string]*hubProc{}}
	for _, name := range []string{"hub-a", "hub-b"} {
		c.add(name, t.TempDir(), "--nats-url", natsURL, "--replicas", "3", "--name", name)
	}
	c.waitReady(c.hubs...)
	for _, h := range c.hubs {
		st, ok := h.cluster()
		if !ok || !st.Clustered || st.Replicas != 3 || len(st.Peers) != 3 || byName[st.StreamLeader] == nil ||
			st.Consumer != "materializer-"+c.name(h) || st.Cluster != "external" {
			t.Fatalf("%s: cluster %+v", c.name(h), st)
		}
	}
	var edges []*edgeProc
	for i := 1; i <= 2; i++ {
		edges = append(edges, startEdge(t, fmt.Sprintf("ext-%d", i), t.TempDir(), natsURL))
	}
	w := startWorkload(t, edges, "ext", "ext-hits")
	waitAcked(t, "batches acknowledged by the external cluster", edges, ackedSeqs(t, edges), 200, 60*time.Second)

	st, _ := c.hubs[0].cluster()
	leader := byName[st.StreamLeader]
	if leader == nil {
		t.Fatalf("stream leader %q is none of the servers", st.StreamLeader)
	}
	t.Logf("SIGKILL nats-server %s, the stream leader", leader.name)
	leader.kill()
	at := lastSeqs(t, edges)
	took := waitAcked(t, "acknowledged batches through the other servers", edges, at, 1, 60*time.Second)
	t.Logf("failover: every edge had an event taken in after the SIGKILL acknowledged %v after it", took.Round(10*time.Millisecond))
	waitAcked(t, "ingest through two servers", edges, ackedSeqs(t, edges), 200, 60*time.Second)
	leader.start()
	waitAcked(t, "ingest after the server returned", edges, ackedSeqs(t, edges), 200, 60*time.Second)
	w.halt()

	nodes := c.checkHoldsAll(t, edges, w, "ext", "ext-hits")
	sameAnswers(t, []string{"hub-a", "hub-b"}, c.hubs, nodes, "ext")
}
