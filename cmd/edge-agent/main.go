// Command edge-agent runs a Tributary edge: it takes events in (the local HTTP
// API and the built-in sources), keeps them in a SQLite buffer that survives
// crashes and hub outages, and forwards them to the hub's JetStream. See
// DESIGN.md for the flags and the API.
//
//	edge-agent [flags]                          run the agent
//	edge-agent incr NAME DELTA [--listen ADDR]  add DELTA to a counter of a running agent
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

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/cli"
	"github.com/tributary-edge/tributary/internal/version"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// DefaultListen is the default address of the local API.
const DefaultListen = "127.0.0.1:7070"

// config is everything the flags and environment set.
type config struct {
	node, hub, data, listen, sources string
	bufferMaxBytes                   cli.Size
	bufferMaxAge                     time.Duration
	bufferPolicy                     string
	logFormat, logLevel              string
	version                          bool

	specs  []string
	policy edge.Policy
}

// defaultNode is the host name, cleaned into a valid node ID.
func defaultNode() string {
	host, _ := os.Hostname()
	return stream.CleanName(host)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{bufferMaxBytes: edge.DefaultMaxBytes}
	fs := flag.NewFlagSet("edge-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.node, "node", defaultNode(), "this edge's node `ID` (letters, digits, _ and -)")
	fs.StringVar(&c.hub, "hub", edge.DefaultHubURL, "the hub's NATS `URL`; several may be given, separated by commas")
	fs.StringVar(&c.data, "data", "./edge-data", "`DIR` of the SQLite buffer")
	fs.StringVar(&c.listen, "listen", DefaultListen, "`ADDR` of the local API, /metrics and /healthz")
	fs.StringVar(&c.sources, "source", "", "built-in sources, comma-separated `LIST`: sim (synthetic sensor readings), host (this machine's\nCPU, memory, disk), stdin (NDJSON), file:PATH (follow an NDJSON file)")
	fs.Var(&c.bufferMaxBytes, "buffer-max-bytes", "cap on the buffer's size on disk (`BYTES`, units: KiB, MiB, GiB, …; 0: no cap)")
	fs.DurationVar(&c.bufferMaxAge, "buffer-max-age", 0, "drop unsent events older than this (`DURATION`; 0: never)")
	fs.StringVar(&c.bufferPolicy, "buffer-policy", string(edge.DropOldest), "what a full buffer does with new events: drop-oldest or reject (`POLICY`)")
	fs.StringVar(&c.logFormat, "log-format", "json", "log `FORMAT`: json or console")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the subcommand is incr NAME DELTA)", fs.Arg(0))
	}
	if c.version {
		return c, nil
	}
	if err := stream.ValidateName("node", c.node); err != nil {
		return nil, fmt.Errorf("--node: %v", err)
	}
	if _, err := edge.HubURLs(c.hub); err != nil {
		return nil, fmt.Errorf("--hub: %v", err)
	}
	if c.bufferMaxBytes < 0 || (c.bufferMaxBytes > 0 && c.bufferMaxBytes < edge.MinMaxBytes) {
		return nil, fmt.Errorf("--buffer-max-bytes %s: want 0 (no cap) or at least %d", c.bufferMaxBytes.String(), edge.MinMaxBytes)
	}
	if c.bufferMaxAge < 0 {
		return nil, errors.New("--buffer-max-age must not be negative")
	}
	p, err := edge.ParsePolicy(c.bufferPolicy)
	if err != nil {
		return nil, fmt.Errorf("--buffer-policy: %v", err)
	}
	c.policy = p
	if c.specs, err = edge.SourceSpecs(c.sources); err != nil {
		return nil, fmt.Errorf("--source: %v", err)
	}
	return c, nil
}

// run is the whole program: it returns the exit status (0 after a clean stop, 1
// when the agent cannot start, 2 for bad usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "incr" {
		return runIncr(ctx, args[1:], getenv, stdout, stderr)
	}
	c, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "\nSubcommand:\n  edge-agent incr NAME DELTA [--listen ADDR]\n        add DELTA to counter NAME of the agent running at ADDR")
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "edge-agent:", err)
		return 2
	}
	if c.version {
		fmt.Fprintln(stdout, version.String("edge-agent"))
		return 0
	}
	log, err := cli.NewLogger(c.logFormat, c.logLevel, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "edge-agent:", err)
		return 2
	}

	a := edge.NewAgent(c.node, c.data, c.hub)
	a.Buffer.MaxBytes, a.Buffer.MaxAge, a.Buffer.Policy = int64(c.bufferMaxBytes), c.bufferMaxAge, c.policy
	a.Sources, a.Stdin, a.Logger = c.specs, stdin, log

	// The API listens first, so that /healthz answers 503 while the buffer
	// opens (a recovery can take a while).
	srv := web.NewServer(c.listen)
	srv.Logger = log.With().Str("component", "http").Logger()
	srv.MountEdge(a)
	if err := srv.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start the local API")
		return 1
	}
	if err := a.Open(ctx); err != nil {
		log.Error().Err(err).Msg("start the agent")
		srv.Close()
		return 1
	}

	fmt.Fprintf(stdout, "tributary edge-agent %s: api %s/api/v1  node %s  epoch %s  data %s  hub %s\n",
		version.Version, srv.URL(), c.node, a.Buffer.Epoch(), c.data, c.hub)
	log.Info().Str("listen", srv.Address()).Str("node", c.node).Str("epoch", a.Buffer.Epoch()).
		Str("data", c.data).Str("hub", c.hub).Strs("sources", c.specs).Msg("edge agent started")
	<-ctx.Done()
	log.Info().Msg("edge agent stopping")
	// Requests first, then sources, forwarder and buffer.
	err = errors.Join(srv.Close(), a.Close())
	if err != nil {
		log.Error().Err(err).Msg("stop")
		return 1
	}
	log.Info().Msg("edge agent stopped")
	return 0
}
