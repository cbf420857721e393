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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/internal/cli"
	"github.com/tributary-edge/tributary/internal/version"
	"github.com/tributary-edge/tributary/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// config is everything the flags and environment set.
type config struct {
	data, http, nats, natsURL string
	maxStore                  cli.Size
	retention                 time.Duration
	replicas                  int
	logFormat, logLevel       string
	version                   bool
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{maxStore: 10 << 30}
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", "./hub-data", "`DIR` for the JetStream store and the query index")
	fs.StringVar(&c.http, "http", "127.0.0.1:8080", "`ADDR` of the REST API, dashboard, /metrics and /healthz")
	fs.StringVar(&c.nats, "nats", "127.0.0.1:4222", "`ADDR` of the NATS listener that edge agents connect to")
	fs.StringVar(&c.natsURL, "nats-url", "", "`URL` of an existing NATS/JetStream deployment to use instead of the embedded server")
	fs.Var(&c.maxStore, "max-store", "most `BYTES` of JetStream file storage (units: MiB, GiB, …)")
	fs.DurationVar(&c.retention, "retention", 30*24*time.Hour, "how long events are kept (`DURATION`; 0 keeps them forever)")
	fs.IntVar(&c.replicas, "replicas", 1, "replica `COUNT` of the EDGE stream and the counters bucket (clustered deployments with --nats-url)")
	fs.StringVar(&c.logFormat, "log-format", "json", "log `FORMAT`: json or console")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.maxStore <= 0 {
		return nil, errors.New("--max-store must be more than 0")
	}
	if c.retention < 0 {
		return nil, errors.New("--retention must not be negative")
	}
	if c.replicas < 1 || c.replicas > 5 {
		return nil, fmt.Errorf("--replicas %d: want 1 to 5", c.replicas)
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hub:", err)
		return 2
	}
	if c.version {
		fmt.Fprintln(stdout, version.String("hub"))
		return 0
	}
	log, err := cli.NewLogger(c.logFormat, c.logLevel, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "hub:", err)
		return 2
	}
	h := hub.New()
	h.DataDir, h.NATSAddr, h.NATSURL = c.data, c.nats, c.natsURL
	h.MaxStore, h.Retention, h.Replicas = int64(c.maxStore), c.retention, c.replicas
	h.Logger = log.With().Str("component", "hub").Logger()
	if err := h.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start hub")
		return 1
	}
	defer h.Close()
	srv := web.NewServer(c.http)
	srv.Logger = log.With().Str("component", "http").Logger()
	srv.MountHub(h)
	srv.MountDashboard()
	if err := srv.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start http")
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "tributary hub %s: api %s/api/v1  dashboard %s/  nats %s  data %s\n",
		version.Version, srv.URL(), srv.URL(), h.ClientURL(), c.data)
	log.Info().Str("http", srv.Address()).Str("nats", h.ClientURL()).Str("data", c.data).Msg("hub started")
	<-ctx.Done()
	log.Info().Msg("hub stopping")
	return 0
}
