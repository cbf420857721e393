package natsjs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterName is the NATS cluster every clustered hub joins. Servers of
// another cluster name refuse each other's routes.
const ClusterName = "tributary"

// ErrNoPeers is returned (wrapped) for a cluster address without a peer other
// than this server: a route to itself alone makes JetStream's meta group wait
// for a second server forever.
var ErrNoPeers = errors.New("nats: a cluster needs the route URLs of the other servers")

// ClusterRoutes returns the routes a server listening for routes on addr
// dials: every peer, and its own route URL unless a peer already is it.
//
// nats-server sizes JetStream's meta group, when it first starts, from the
// number of routes it is given (at least 2), so the routes must name every
// server of the cluster, this one included, or the group expects too few or
// too many servers (too many, and it never elects a leader). A server
// recognises and ignores its own route once connected. A peer counts as this
// server when its port is addr's and its host is addr's host, a loopback or
// local address, or a name that does not resolve (when unsure, it is not
// added twice: a group that expects one server too few still forms and grows
// as the others join).
//
// A peer is nats://host:port (nats-route:// is accepted too; a missing
// scheme means nats://). Errors name the peer that is wrong.
func ClusterRoutes(addr string, peers []string) ([]*url.URL, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("cluster address %q: %w", addr, err)
	}
	if port <= 0 {
		return nil, fmt.Errorf("cluster address %q: give a port (the peers dial it)", addr)
	}
	var routes []*url.URL
	seen := map[string]bool{}
	self, others := false, 0
	for _, p := range peers {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		u, err := parseRoute(p)
		if err != nil {
			return nil, err
		}
		if seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		routes = append(routes, u)
		if mightBeSelf(host, port, u) {
			self = true
		} else {
			others++
		}
	}
	if others == 0 {
		return nil, fmt.Errorf("%w (cluster address %s, peers %q)", ErrNoPeers, addr, peers)
	}
	if !self {
		h := host
		if h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified() {
			h = "127.0.0.1"
		}
		routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort(h, strconv.Itoa(port))})
	}
	return routes, nil
}

// parseRoute parses one peer's route URL.
func parseRoute(p string) (*url.URL, error) {
	raw := p
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", p, err)
	}
	if u.Scheme != "nats" && u.Scheme != "nats-route" {
		return nil, fmt.Errorf("peer %q: scheme %q, want nats://host:port", p, u.Scheme)
	}
	h, port, err := net.SplitHostPort(u.Host)
	if err != nil || h == "" {
		return nil, fmt.Errorf("peer %q: want nats://host:port", p)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("peer %q: bad port", p)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("peer %q: want nats://host:port, nothing after it", p)
	}
	return &url.URL{Scheme: "nats", Host: u.Host, User: u.User}, nil
}

// mightBeSelf reports whether route u may lead to this server, listening for
// routes on host:port.
func mightBeSelf(host string, port int, u *url.URL) bool {
	h, ps, _ := net.SplitHostPort(u.Host)
	if p, _ := strconv.Atoi(ps); p != port {
		return false
	}
	if strings.EqualFold(h, host) || strings.EqualFold(h, "localhost") {
		return true
	}
	ips, err := net.LookupIP(h)
	if err != nil {
		return true
	}
	local := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				local[n.IP.String()] = true
			}
		}
	}
	for _, ip := range ips {
		if ip.IsLoopback() || local[ip.String()] {
			return true
		}
	}
	return false
}

// splitAddr splits host:port; port 0 is returned as 0.
func splitAddr(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	return host, port, nil
}

// Peer is one server of the JetStream meta group as this server sees it.
type Peer struct {
	// Name is the server's name.
	Name string
	// Current is true when the peer is caught up, as far as this server
	// can tell: a follower knows only whether it hears from the leader.
	Current bool
	// Offline is true when the cluster has not heard from the server lately.
	Offline bool
	// Active is how long ago this server last heard from the peer (0 for
	// itself, or when it never has).
	Active time.Duration
	// Routed is true when this server has a route to the peer now (always
	// for itself): the first to know when a peer dies.
	Routed bool
}

// Meta is the JetStream meta group (every JetStream server of the cluster)
// as this server sees it.
type Meta struct {
	// Cluster is the cluster's name, Leader the meta leader's server name
	// (empty while there is none).
	Cluster, Leader string
	// Peers are every server of the group, this one included, by name.
	Peers []Peer
}

// Meta returns the JetStream meta group this server belongs to, and false
// when it is not clustered (or not running).
func (n *Server) Meta() (Meta, bool) {
	if n.srv == nil {
		return Meta{}, false
	}
	jsz, err := n.srv.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return Meta{}, false
	}
	routed := map[string]bool{}
	if rz, err := n.srv.Routez(&server.RoutezOptions{}); err == nil {
		for _, r := range rz.Routes {
			routed[r.RemoteName] = true
		}
	}
	m := Meta{Cluster: jsz.Meta.Name, Leader: jsz.Meta.Leader}
	m.Peers = append(m.Peers, Peer{Name: n.srv.Name(), Current: true, Routed: true})
	for _, r := range jsz.Meta.Replicas {
		if r.Name == "" || r.Name == n.srv.Name() {
			continue
		}
		m.Peers = append(m.Peers, Peer{Name: r.Name, Current: r.Current, Offline: r.Offline, Active: r.Active, Routed: routed[r.Name]})
	}
	sort.Slice(m.Peers, func(i, j int) bool { return m.Peers[i].Name < m.Peers[j].Name })
	return m, true
}
