// Command edge-agent runs a Tributary edge: it takes events in (the local HTTP
// API and the built-in sources), keeps them in a SQLite buffer that survives
// crashes and hub outages, and forwards them to the hub's JetStream. See
// DESIGN.md for the flags and the API.
//
//	edge-agent [flags]                                      run the agent
//	edge-agent incr NAME DELTA [--listen ADDR]              add DELTA to a sum counter of a running agent
//	edge-agent set NAME VALUE --kind KIND [--listen ADDR]   set a max, min or last counter of a running agent
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/edge/agent"
	"github.com/tributary-edge/tributary/edge/buffer"
	"github.com/tributary-edge/tributary/edge/forward"
	"github.com/tributary-edge/tributary/edge/source"
	"github.com/tributary-edge/tributary/internal/cli"
	"github.com/tributary-edge/tributary/internal/tlsconf"
	"github.com/tributary-edge/tributary/internal/version"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneRuntime = true
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// tuneRuntime lets run apply the memory settings to the Go runtime. Only main
// sets it: tests that call run share their process with other work.
var tuneRuntime = false

// DefaultMemoryLimit is the default of --memory-limit: docs/memory.md has
// what it buys.
const DefaultMemoryLimit = 24 << 20

// DefaultListen is the default address of the local API.
const DefaultListen = "127.0.0.1:7070"

// config is everything the flags and environment set.
type config struct {
	node, hub, data, listen, sources string
	bufferMaxBytes                   cli.Size
	bufferMaxAge                     time.Duration
	bufferPolicy                     string
	compress                         string
	creds, tlsCA, tlsCert, tlsKey    string
	clockSkew                        time.Duration
	uplinkMaxRate                    cli.Size
	memoryLimit                      cli.Size
	memoryLimitSet                   bool
	cli.Common

	specs    []string
	policy   buffer.Policy
	codec    stream.Codec
	natsOpts []nats.Option
}

// defaultNode is the host name, cleaned into a valid node ID.
func defaultNode() string {
	host, _ := os.Hostname()
	return stream.CleanName(host)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{bufferMaxBytes: buffer.DefaultMaxBytes, memoryLimit: DefaultMemoryLimit}
	fs := flag.NewFlagSet("edge-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.node, "node", defaultNode(), "this edge's node `ID` (letters, digits, _ and -)")
	fs.StringVar(&c.hub, "hub", forward.DefaultHubURL, "the hub's NATS `URL`; several may be given, separated by commas")
	fs.StringVar(&c.data, "data", "./edge-data", "`DIR` of the SQLite buffer")
	fs.StringVar(&c.listen, "listen", DefaultListen, "`ADDR` of the local API, /metrics and /healthz")
	fs.StringVar(&c.sources, "source", "", "built-in sources, comma-separated `LIST`: sim (synthetic sensor readings), host (this machine's\nCPU, memory, disk), stdin (NDJSON), file:PATH (follow an NDJSON file)")
	fs.Var(&c.bufferMaxBytes, "buffer-max-bytes", "cap on the buffer's size on disk (`BYTES`, units: KiB, MiB, GiB, …; 0: no cap)")
	fs.DurationVar(&c.bufferMaxAge, "buffer-max-age", 0, "drop unsent events older than this (`DURATION`; 0: never)")
	fs.StringVar(&c.bufferPolicy, "buffer-policy", string(buffer.DropOldest), "what a full buffer does with new events: drop-oldest or reject (`POLICY`)")
	fs.StringVar(&c.compress, "compress", stream.CodecZstd.String(), "batch compression on the uplink: zstd or none (`ALGO`)")
	fs.StringVar(&c.creds, "creds", "", "the NATS credentials `FILE` that \"hub node add\" wrote for this node")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA `FILE` (PEM) that the hub's certificate must chain to (default: the system's roots)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "this edge's client certificate `FILE` (PEM), for a hub that requires mTLS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key `FILE` (PEM) of --tls-cert")
	fs.DurationVar(&c.clockSkew, "clock-skew", 0, "for tests: run as if this device's clock were off by `DURATION` (the hub's offset measurement corrects it)")
	fs.Var(&c.uplinkMaxRate, "uplink-max-rate", "cap on the bytes per second sent to the hub, heartbeats and protocol included (`BYTES`, units: KiB, MiB, …;\n0: no cap); ingest goes on into the buffer at full speed")
	fs.Var(&c.memoryLimit, "memory-limit", "soft limit on the Go runtime's memory, which collects garbage sooner as it nears it (`BYTES`; 0: none);\nwhen this flag is not given, GOMEMLIMIT wins over its default")
	c.Common.Register(fs)
	if err := cli.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { c.memoryLimitSet = c.memoryLimitSet || f.Name == "memory-limit" })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the subcommands are incr NAME DELTA and set NAME VALUE --kind KIND)", fs.Arg(0))
	}
	if c.Version {
		return c, nil
	}
	if err := stream.ValidateName("node", c.node); err != nil {
		return nil, fmt.Errorf("--node: %v", err)
	}
	if _, err := forward.HubURLs(c.hub); err != nil {
		return nil, fmt.Errorf("--hub: %v", err)
	}
	if c.bufferMaxBytes < 0 || (c.bufferMaxBytes > 0 && c.bufferMaxBytes < buffer.MinMaxBytes) {
		return nil, fmt.Errorf("--buffer-max-bytes %s: want 0 (no cap) or at least %d", c.bufferMaxBytes.String(), buffer.MinMaxBytes)
	}
	if c.bufferMaxAge < 0 {
		return nil, errors.New("--buffer-max-age must not be negative")
	}
	p, err := buffer.ParsePolicy(c.bufferPolicy)
	if err != nil {
		return nil, fmt.Errorf("--buffer-policy: %v", err)
	}
	c.policy = p
	if c.codec, err = stream.ParseCodec(c.compress); err != nil {
		return nil, fmt.Errorf("--compress: %v", err)
	}
	if c.memoryLimit < 0 {
		return nil, errors.New("--memory-limit must not be negative")
	}
	if c.uplinkMaxRate < 0 || (c.uplinkMaxRate > 0 && c.uplinkMaxRate < forward.MinMaxRate) {
		return nil, fmt.Errorf("--uplink-max-rate %s: want 0 (no cap) or at least %d bytes per second", c.uplinkMaxRate.String(), forward.MinMaxRate)
	}
	if c.specs, err = source.Specs(c.sources); err != nil {
		return nil, fmt.Errorf("--source: %v", err)
	}
	if c.natsOpts, err = natsOptions(c.creds, c.tlsCA, c.tlsCert, c.tlsKey); err != nil {
		return nil, err
	}
	return c, nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit from
// --memory-limit, unless the flag was not given and GOMEMLIMIT is set (the
// runtime has applied that one itself).
func applyMemoryLimit(c *config, getenv func(string) string) {
	if !c.memoryLimitSet && getenv("GOMEMLIMIT") != "" {
		return
	}
	if c.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.memoryLimit))
	}
}

// run is the whole program: it returns the exit status (0 after a clean stop, 1
// when the agent cannot start, 2 for bad usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "incr" {
		return runIncr(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "set" {
		return runSet(ctx, args[1:], getenv, stdout, stderr)
	}
	c, err := parse(args, getenv, stderr)
	if c == nil {
		c = &config{}
	}
	log, code, ok := cli.Start("edge-agent", err, &c.Common, func(w io.Writer) {
		fmt.Fprintln(w, "\nSubcommands:\n  edge-agent incr NAME DELTA [--listen ADDR]\n        add DELTA to the sum counter NAME of the agent running at ADDR"+
			"\n  edge-agent set NAME VALUE --kind max|min|last [--listen ADDR]\n        set the register NAME of the agent running at ADDR to VALUE")
	}, stdout, stderr)
	if !ok {
		return code
	}

	if tuneRuntime {
		applyMemoryLimit(c, getenv)
	}
	a := agent.New(c.node, c.data, c.hub)
	a.Buffer.MaxBytes, a.Buffer.MaxAge, a.Buffer.Policy = int64(c.bufferMaxBytes), c.bufferMaxAge, c.policy
	a.Sources, a.Stdin, a.Logger = c.specs, stdin, log
	a.Forwarder.Compress, a.Forwarder.MaxRate = c.codec, int64(c.uplinkMaxRate)
	a.Forwarder.NATSOptions = c.natsOpts
	if skew := c.clockSkew; skew != 0 {
		a.Now = func() time.Time { return time.Now().Add(skew) }
		log.Warn().Dur("clock_skew", skew).Msg("--clock-skew: this agent's clock is shifted on purpose")
	}
	// A drained backlog leaves the heap it was read and encoded with: give
	// it back to the system now, not when the scavenger gets to it.
	a.Forwarder.Drained = debug.FreeOSMemory

	// The API listens first, so that /healthz answers 503 while the buffer
	// opens (a recovery can take a while).
	if err := cli.CheckListen("listen", c.listen); err != nil {
		log.Error().Err(err).Msg("start the local API")
		return 1
	}
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

// natsOptions are the connection's credentials and TLS. A credentials file is
// read now, so that a wrong path or a file that is not one says so at start
// rather than as a refused connection later.
func natsOptions(creds, ca, cert, key string) ([]nats.Option, error) {
	var opts []nats.Option
	if creds != "" {
		b, err := os.ReadFile(creds)
		if err != nil {
			return nil, fmt.Errorf("--creds: %w", err)
		}
		if _, err := jwt.ParseDecoratedJWT(b); err != nil {
			return nil, fmt.Errorf("--creds %s: not a NATS credentials file: %v", creds, err)
		}
		if _, err := jwt.ParseDecoratedNKey(b); err != nil {
			return nil, fmt.Errorf("--creds %s: not a NATS credentials file: %v", creds, err)
		}
		opts = append(opts, nats.UserCredentials(creds))
	}
	tc, err := tlsconf.Client(ca, cert, key)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}
