// Command hub runs Tributary's hub: an embedded nats-server with JetStream that
// edge agents push to, the materializer and query index, and the REST API,
// dashboard, /healthz and /metrics. See DESIGN.md for flags and the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/cli"
	"github.com/tributary-edge/tributary/internal/version"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
	"github.com/tributary-edge/tributary/web/hubapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// DefaultHTTP is the default address of the REST API and the dashboard.
const DefaultHTTP = "127.0.0.1:8080"

// config is everything the flags and environment set.
type config struct {
	data, http, nats, natsURL string
	maxStore, storeReserve    cli.Size
	retention                 time.Duration
	replicas                  int
	cluster, peers, name      string
	security
	cli.Common

	peerList []string
	hubs     int // in the cluster, this one included
	consumer string
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	d := hub.New()
	c := &config{maxStore: cli.Size(d.MaxStore), storeReserve: cli.Size(d.StoreReserve)}
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", d.DataDir, "`DIR` for the JetStream store and the query index")
	fs.StringVar(&c.http, "http", DefaultHTTP, "`ADDR` of the REST API, dashboard, /metrics and /healthz")
	fs.StringVar(&c.nats, "nats", d.NATSAddr, "`ADDR` of the NATS listener that edge agents connect to")
	fs.StringVar(&c.natsURL, "nats-url", "", "`URL` of an existing NATS/JetStream deployment to use instead of the embedded server")
	fs.Var(&c.maxStore, "max-store", "most `BYTES` of JetStream file storage (units: MiB, GiB, …)")
	fs.Var(&c.storeReserve, "store-reserve", "free `BYTES` kept on the JetStream store's disk: below it batches are refused until space frees (0: no reserve)")
	fs.DurationVar(&c.retention, "retention", d.Retention, "how long events are kept (`DURATION`; 0 keeps them forever)")
	fs.IntVar(&c.replicas, "replicas", d.Replicas, "replica `COUNT` of the EDGE stream and the counters bucket: 1, 3 or 5 (default 3 with --cluster)")
	fs.StringVar(&c.cluster, "cluster", "", "`ADDR` (host:port) of the route listener for the other hubs; turns clustering on")
	fs.StringVar(&c.peers, "peers", "", "route URLs of the other hubs, comma-separated `LIST` (nats://host:port,…); this hub's own may be listed too")
	fs.StringVar(&c.name, "name", d.Name, "this hub's unique `NAME` in the cluster (letters, digits, _ and -)")
	c.security.register(fs)
	c.Common.Register(fs)
	if err := cli.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.maxStore <= 0 {
		return nil, errors.New("--max-store must be more than 0")
	}
	if c.retention < 0 {
		return nil, errors.New("--retention must not be negative")
	}
	if err := c.clusterConfig(set); err != nil {
		return nil, err
	}
	natsListener := c.nats
	if c.natsURL != "" {
		natsListener = ""
	} else if c.natsCreds != "" {
		return nil, errors.New("--nats-creds goes with --nats-url")
	}
	if err := c.security.check(natsListener, c.http); err != nil {
		return nil, err
	}
	return c, nil
}

// redacted returns the peers with any password in them masked, for the log.
func redacted(peers []string) []string {
	out := make([]string, len(peers))
	for i, p := range peers {
		out[i] = p
		if u, err := url.Parse(p); err == nil && u.User != nil {
			out[i] = u.Redacted()
		}
	}
	return out
}

// clusterConfig checks --cluster, --peers, --name and --replicas together,
// defaults --replicas to 3 in a cluster, and names the durable consumer.
func (c *config) clusterConfig(set map[string]bool) error {
	if err := stream.ValidateName("hub", c.name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	for _, p := range strings.Split(c.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.peerList = append(c.peerList, p)
		}
	}
	if c.cluster != "" && !set["replicas"] {
		c.replicas = 3
	}
	switch {
	case c.replicas == 2 || c.replicas == 4:
		return fmt.Errorf("--replicas %d: JetStream needs a majority of replicas (%d of %d) to accept a batch, so %d replicas survive no more lost hubs than %d do; use 1, 3 or 5",
			c.replicas, c.replicas/2+1, c.replicas, c.replicas, c.replicas-1)
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("--replicas %d: want 1, 3 or 5", c.replicas)
	case c.cluster == "" && len(c.peerList) > 0:
		return errors.New("--peers needs --cluster: the route listener the other hubs dial")
	case c.cluster != "" && c.natsURL != "":
		return errors.New("--cluster and --nats-url exclude each other: with --nats-url, the deployment's servers are the cluster")
	case c.cluster == "" && c.natsURL == "" && c.replicas > 1:
		return fmt.Errorf("--replicas %d: a single hub's embedded server holds one replica; start every hub with --cluster and --peers", c.replicas)
	}
	c.consumer = hub.ConsumerName
	if c.cluster != "" {
		routes, err := natsjs.ClusterRoutes(c.cluster, c.peerList)
		if err != nil {
			return fmt.Errorf("--cluster %s --peers %q: %w", c.cluster, c.peers, err)
		}
		if c.replicas > len(routes) {
			return fmt.Errorf("--replicas %d: the cluster has %d hubs (this one and --peers)", c.replicas, len(routes))
		}
		c.hubs, c.consumer = len(routes), hub.ClusterConsumer(c.name)
	} else if c.natsURL != "" && set["name"] {
		// Several hubs on one external deployment are told apart by their
		// names; a hub without one keeps the consumer it always had.
		c.consumer = hub.ClusterConsumer(c.name)
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "node" {
		return runNode(args[1:], getenv, time.Now(), stdout, stderr)
	}
	c, err := parse(args, getenv, stderr)
	if c == nil {
		c = &config{}
	}
	log, code, ok := cli.Start("hub", err, &c.Common, nil, stdout, stderr)
	if !ok {
		return code
	}
	h := hub.New()
	h.DataDir, h.NATSAddr, h.NATSURL = c.data, c.nats, c.natsURL
	h.MaxStore, h.Retention, h.Replicas, h.StoreReserve = int64(c.maxStore), c.retention, c.replicas, int64(c.storeReserve)
	h.Name, h.ClusterAddr, h.Peers, h.Consumer = c.name, c.cluster, c.peerList, c.consumer
	h.Logger = log
	h.Auth, h.TLS, h.NATSCreds, h.ClusterTLS = c.auth == authCreds, c.tls, c.natsCreds, c.clusterTLS()
	for _, w := range c.warnings {
		log.Warn().Msg(w)
	}
	srv := web.NewServer(c.http)
	srv.TLS = c.httpTLS()
	srv.SetTokens(c.tokens)
	srv.Logger = log.With().Str("component", "http").Logger()
	hubapi.Mount(srv, h)
	hubapi.MountDashboard(srv)
	// The data directory first: a second hub on it says so, whatever its
	// ports. Then the ports, before the slow part of the start.
	if err := h.Lock(); err != nil {
		log.Error().Err(err).Msg("start hub")
		return 1
	}
	listens := [][2]string{{"http", c.http}}
	if c.natsURL == "" {
		listens = append(listens, [2]string{"nats", c.nats})
	}
	for _, l := range listens {
		if err := cli.CheckListen(l[0], l[1]); err != nil {
			log.Error().Err(err).Msg("start hub")
			h.Close()
			return 1
		}
	}
	if err := h.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start hub")
		return 1
	}
	defer h.Close()
	if err := srv.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start http")
		return 1
	}
	defer srv.Close()
	cluster := ""
	if c.cluster != "" {
		cluster = fmt.Sprintf("  cluster %s (%s, %d hubs, R%d)", c.cluster, natsjs.ClusterName, c.hubs, c.replicas)
	}
	fmt.Fprintf(stdout, "tributary hub %s (%s): api %s/api/v1  dashboard %s/  nats %s  data %s%s\n",
		version.Version, c.name, srv.URL(), srv.URL(), h.ClientURL(), c.data, cluster)
	log.Info().Str("name", c.name).Str("http", srv.Address()).Str("nats", h.ClientURL()).Str("cluster", c.cluster).
		Strs("peers", redacted(c.peerList)).Int("replicas", c.replicas).Str("consumer", c.consumer).Str("data", c.data).
		Str("auth", c.auth).Bool("tls", c.tls != nil).Int("api_tokens", len(c.tokens)).Msg("hub started")
	select {
	case <-ctx.Done():
		log.Info().Msg("hub stopping")
		return 0
	case err := <-h.Failed():
		// Exit so that the supervisor starts the hub again, which rebuilds
		// what it lost (the index) from the stream.
		log.Error().Err(err).Msg("hub stopping: it must be restarted")
		fmt.Fprintln(stderr, "hub:", err)
		return 1
	}
}
