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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/proctest"
)

// copyDir copies the files of src into dst, as a user copies DATA/auth from
// the first hub to the others.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClusterWithCredentials runs three hubs with --auth creds sharing one
// credential store: a node's credential works on every hub; a server
// without the store cannot route into the cluster; a node revoked through
// one hub's store is refused by the others too.
func TestClusterWithCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("three clustered servers")
	}
	var routes, dirs []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(t)))
		dirs = append(dirs, t.TempDir())
	}
	first, err := auth.Open(filepath.Join(dirs[0], "auth"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[1:] {
		copyDir(t, filepath.Join(dirs[0], "auth"), filepath.Join(d, "auth"))
	}
	hubs := make([]*Hub, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := New()
			h.DataDir, h.NATSAddr, h.MaxStore, h.Auth = dirs[i], "127.0.0.1:0", 1<<30, true
			h.Name, h.ClusterAddr, h.Peers, h.Replicas = fmt.Sprintf("hub-%d", i+1), strings.TrimPrefix(routes[i], "nats://"), routes, 3
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if errs[i] = h.Open(ctx); errs[i] != nil {
				h.Close()
				return
			}
			hubs[i] = h
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open hub %d: %v", i+1, err)
		}
	}
	defer func() {
		for _, h := range hubs {
			h.Close()
		}
	}()

	creds, _, err := first.AddNode("n1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "n1.creds")
	os.WriteFile(credsFile, creds, 0o600)
	connect := func(h *Hub) (*nats.Conn, error) {
		return nats.Connect(h.ClientURL(), nats.UserCredentials(credsFile), nats.Timeout(3*time.Second))
	}
	for i, h := range hubs {
		nc, err := connect(h)
		if err != nil {
			t.Fatalf("node credential made on hub-1's store, on hub-%d: %v", i+1, err)
		}
		nc.Close()
	}
	held, err := connect(hubs[2])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// A server of the same cluster name without the store's route secret.
	strangerRoute := fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(t))
	opts := &server.Options{ServerName: "stranger", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{Name: natsjs.ClusterName, Host: "127.0.0.1", Port: portOf(t, strangerRoute)},
		Routes:  server.RoutesFromStr(routes[0])}
	stranger, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	stranger.Start()
	defer stranger.Shutdown()
	waitUntil(t, "hub-1 to refuse the stranger's route", func() bool { return hubs[0].audit.counts()[AuthFailRoute] > 0 })
	if n := stranger.NumRoutes(); n != 0 {
		t.Errorf("the stranger has %d routes into the cluster", n)
	}

	// Revoked through hub-1's store: hub-3 cuts the node off and refuses it.
	if _, err := first.Revoke("n1", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "hub-3 to close the revoked node's connection", func() bool { return held.IsClosed() || !held.IsConnected() })
	waitUntil(t, "every hub to refuse the revoked node", func() bool {
		for _, h := range hubs {
			if nc, err := connect(h); err == nil {
				nc.Close()
				return false
			}
		}
		return true
	})
}

func portOf(t *testing.T, u string) int {
	t.Helper()
	var p int
	if _, err := fmt.Sscanf(u[strings.LastIndex(u, ":")+1:], "%d", &p); err != nil {
		t.Fatal(err)
	}
	return p
}
