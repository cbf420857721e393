package hub

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tributary-edge/tributary/stream"
)

// NATS is the hub's embedded nats-server with JetStream. It syncs every write to
// disk before acknowledging (SyncAlways) and stores at most MaxStore bytes.
type NATS struct {
	// Addr is the host:port edge agents connect to; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's files.
	StoreDir string
	// MaxStore caps JetStream's file storage in bytes. It is always set
	// explicitly: nats-server's default is a share of the free disk at start.
	MaxStore int64
	// MaxMemory caps JetStream's memory storage in bytes.
	MaxMemory int64

	srv *server.Server
}

// Open starts the server and waits until it accepts connections.
func (n *NATS) Open() error {
	host, portStr, err := net.SplitHostPort(n.Addr)
	if err != nil {
		return fmt.Errorf("nats address %q: %w", n.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("nats address %q: bad port", n.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if n.MaxStore <= 0 {
		return fmt.Errorf("nats: MaxStore must be set (got %d)", n.MaxStore)
	}
	if n.MaxMemory <= 0 {
		n.MaxMemory = 256 << 20
	}
	opts := &server.Options{
		ServerName:         "tributary-hub",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           n.StoreDir,
		JetStreamMaxStore:  n.MaxStore,
		JetStreamMaxMemory: n.MaxMemory,
		SyncAlways:         true,
		MaxPayload:         stream.MaxFrameBytes,
		NoSigs:             true,
		NoLog:              true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("start nats on %s: not ready after 30s", n.Addr)
	}
	n.srv = s
	return nil
}

// ClientURL returns the nats:// URL clients connect to.
func (n *NATS) ClientURL() string { return n.srv.ClientURL() }

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}
