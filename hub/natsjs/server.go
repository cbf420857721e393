// Package natsjs is the hub's NATS adapter: the embedded nats-server with
// JetStream, the definitions of the EDGE stream and the COUNTERS bucket, and the
// merge of counter states into that bucket. It is the only package that builds
// nats-server options; tests start their servers through it too.
package natsjs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/tributary-edge/tributary/stream"
)

// Server is the embedded nats-server with JetStream. It syncs every write to
// disk before acknowledging (SyncAlways) and stores at most MaxStore bytes.
// Set the fields, then Open and Close.
type Server struct {
	// Name is the server's name (nats-server's ServerName).
	Name string
	// Addr is the host:port clients connect to; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's files.
	StoreDir string
	// MaxStore caps JetStream's file storage in bytes. It must be set:
	// nats-server's default is a share of the free disk at start.
	MaxStore int64
	// MaxMemory caps JetStream's memory storage in bytes; 0 means 256 MiB.
	MaxMemory int64
	// ReadyTimeout bounds the wait for the server to accept connections; 0
	// means 30 s.
	ReadyTimeout time.Duration
	// Auth, when set, turns on NATS's decentralized auth: clients must
	// present a user JWT of an account the server resolves from memory.
	Auth *Auth
	// TLS, when set, serves clients over TLS; with ClientAuth set to
	// tls.RequireAndVerifyClientCert clients need a certificate from its
	// ClientCAs.
	TLS *tls.Config
	// Logger, when set, receives the server's log (errors and warnings).
	Logger server.Logger

	// ClusterAddr is the host:port of the route listener the other servers of
	// the cluster connect to; empty means a single server. With it set, the
	// server joins the cluster ClusterName, JetStream runs clustered (Raft)
	// and Name must be unique in the cluster.
	ClusterAddr string
	// RouteUser and RoutePassword, when set, are what every route must
	// present, and what this server presents on the routes it dials.
	RouteUser, RoutePassword string
	// RouteTLS, when set, serves and dials the routes over TLS; with
	// ClientAuth set the other servers' certificates are verified too.
	RouteTLS *tls.Config
	// Peers are the route URLs (nats://host:port) of the other servers of the
	// cluster. Listing this server's own URL too is fine, so that every server
	// can be given the same list; see ClusterRoutes.
	Peers []string

	srv *server.Server
}

// Auth is what the server trusts: an operator, its system account, and the
// accounts' JWTs by public key.
type Auth struct {
	Operator      *jwt.OperatorClaims
	SystemAccount string
	Accounts      map[string]string
}

// Options returns the nats-server options Open starts the server with.
func (n *Server) Options() (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(n.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: %w", n.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats address %q: bad port", n.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if n.MaxStore <= 0 {
		return nil, fmt.Errorf("nats: MaxStore must be set (got %d)", n.MaxStore)
	}
	mem := n.MaxMemory
	if mem <= 0 {
		mem = 256 << 20
	}
	name := n.Name
	if name == "" {
		name = "tributary-hub"
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           n.StoreDir,
		JetStreamMaxStore:  n.MaxStore,
		JetStreamMaxMemory: mem,
		SyncAlways:         true,
		MaxPayload:         stream.MaxFrameBytes,
		NoSigs:             true,
		NoLog:              n.Logger == nil,
	}
	if a := n.Auth; a != nil {
		res := &server.MemAccResolver{}
		for pub, j := range a.Accounts {
			if err := res.Store(pub, j); err != nil {
				return nil, fmt.Errorf("nats: account %s: %w", pub, err)
			}
		}
		opts.TrustedOperators = []*jwt.OperatorClaims{a.Operator}
		opts.SystemAccount = a.SystemAccount
		opts.AccountResolver = res
	}
	if n.TLS != nil {
		opts.TLSConfig = n.TLS
		opts.TLS = true
		opts.TLSTimeout = 5
		opts.TLSVerify = n.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if n.ClusterAddr == "" {
		if len(n.Peers) > 0 {
			return nil, errors.New("nats: peers given without a cluster address")
		}
		return opts, nil
	}
	if n.Name == "" {
		return nil, errors.New("nats: a clustered server needs a name, unique in the cluster")
	}
	routes, err := ClusterRoutes(n.ClusterAddr, n.Peers)
	if err != nil {
		return nil, err
	}
	chost, cport, _ := splitAddr(n.ClusterAddr)
	opts.Cluster = server.ClusterOpts{Name: ClusterName, Host: chost, Port: cport}
	if n.RouteUser != "" {
		opts.Cluster.Username, opts.Cluster.Password = n.RouteUser, n.RoutePassword
		for _, r := range routes {
			r.User = url.UserPassword(n.RouteUser, n.RoutePassword)
		}
	}
	if n.RouteTLS != nil {
		opts.Cluster.TLSConfig = n.RouteTLS
		opts.Cluster.TLSTimeout = 5
	}
	opts.Routes = routes
	return opts, nil
}

// Open starts the server and waits until it accepts connections. An address
// another process listens on is an error at once.
func (n *Server) Open() error {
	opts, err := n.Options()
	if err != nil {
		return err
	}
	// nats-server logs a listener it cannot bind and is then never ready:
	// find out now rather than after ReadyTimeout.
	if opts.Port != server.RANDOM_PORT {
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
		if err != nil {
			return fmt.Errorf("start nats on %s: %w", n.Addr, err)
		}
		ln.Close()
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	if n.Logger != nil {
		s.SetLoggerV2(n.Logger, false, false, false)
	}
	s.Start()
	wait := n.ReadyTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	if !s.ReadyForConnections(wait) {
		s.Shutdown()
		return fmt.Errorf("start nats on %s: not ready after %v", n.Addr, wait)
	}
	n.srv = s
	return nil
}

// ClientURL returns the nats:// URL clients connect to.
func (n *Server) ClientURL() string { return n.srv.ClientURL() }

// NATS returns the running nats-server, for tests and health checks.
func (n *Server) NATS() *server.Server { return n.srv }

// Close shuts the server down and waits for it.
func (n *Server) Close() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// StreamWriteError returns the error that stopped the given stream from
// writing (a full disk, most often), or nil. nats-server keeps such an error
// until the stream is loaded again, and answers no publish meanwhile.
func (n *Server) StreamWriteError(stream string) error {
	if n.srv == nil {
		return nil
	}
	h := n.srv.Healthz(&server.HealthzOptions{Details: true})
	for _, e := range h.Errors {
		if e.Stream == stream && strings.Contains(e.Error, "write error") {
			return errors.New(e.Error)
		}
	}
	return nil
}

// ResetJetStream stops JetStream and starts it again with the same
// configuration, which loads every stream from disk afresh: the way out of a
// stream write error once there is room again. Clients see their consumers
// and watchers interrupted and take them up again.
func (n *Server) ResetJetStream() error {
	cfg := n.srv.JetStreamConfig()
	if cfg == nil {
		return errors.New("nats: jetstream is not enabled")
	}
	if err := n.srv.ShutdownJetStream(); err != nil {
		return fmt.Errorf("nats: stop jetstream: %w", err)
	}
	// EnableJetStream adds the jetstream directory to the one it is given.
	cfg.StoreDir = filepath.Dir(cfg.StoreDir)
	if err := n.srv.EnableJetStream(cfg); err != nil {
		return fmt.Errorf("nats: start jetstream again: %w", err)
	}
	return nil
}

// UpdateAccount gives the running server an account's new JWT (a revocation,
// say): the server applies it at once and closes the connections it no longer
// allows.
func (n *Server) UpdateAccount(pub, accountJWT string) error {
	claims, err := jwt.DecodeAccountClaims(accountJWT)
	if err != nil {
		return fmt.Errorf("nats: account %s: %w", pub, err)
	}
	if err := n.srv.AccountResolver().Store(pub, accountJWT); err != nil {
		return fmt.Errorf("nats: store account %s: %w", pub, err)
	}
	acc, err := n.srv.LookupAccount(pub)
	if err != nil {
		return fmt.Errorf("nats: account %s: %w", pub, err)
	}
	n.srv.UpdateAccountClaims(acc, claims)
	return nil
}

// Connz returns the server's connections of the given account (all when
// empty), for audit logs.
func (n *Server) Connz(account string) ([]*server.ConnInfo, error) {
	c, err := n.srv.Connz(&server.ConnzOptions{Account: account, Username: true, Limit: 100000})
	if err != nil {
		return nil, err
	}
	return c.Conns, nil
}
