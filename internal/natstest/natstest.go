// Package natstest starts a real embedded nats-server with JetStream for tests.
package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/natsjs"
)

// Server is a running embedded nats-server with the EDGE stream created.
type Server struct {
	*server.Server
	Dir string
}

// Start runs a nats-server with JetStream (sync always) on a free port, storing in
// dir (t.TempDir() when empty), creates the EDGE stream, and shuts it down when
// the test ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return StartOn(t, dir, -1)
}

// StartOn is Start on a given port (-1 for a free one), for restarting a server
// on the port its clients know.
func StartOn(t testing.TB, dir string, port int) *Server {
	t.Helper()
	if port < 0 {
		port = 0
	}
	n := &natsjs.Server{Name: "natstest", Addr: fmt.Sprintf("127.0.0.1:%d", port), StoreDir: dir,
		MaxStore: 1 << 30, MaxMemory: 64 << 20, ReadyTimeout: 10 * time.Second}
	if err := n.Open(); err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s := n.NATS()
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig(0, 1)); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return &Server{Server: s, Dir: dir}
}
