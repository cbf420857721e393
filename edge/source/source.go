// Package source holds the edge agent's built-in sources — sim, host, stdin
// and file — which put events into a Sink.
package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// Sink is where sources put their events. The Agent implements it over its
// Buffer and wakes the forwarder after every commit; a *Buffer implements it too.
type Sink interface {
	// Append commits events of one stream, all or nothing.
	Append(ctx context.Context, streamName string, in []edge.Input) (first, last uint64, err error)
	// AppendWithOffset commits events together with a source's read offset, in
	// one transaction.
	AppendWithOffset(ctx context.Context, streamName string, in []edge.Input, offsetKey string, offset []byte) (first, last uint64, err error)
	// Offset returns the offset saved under key, or nil when there is none.
	Offset(ctx context.Context, key string) ([]byte, error)
}

// Source produces events into a Sink from Open until Close. Close stops it and
// waits for its goroutines (except a read blocked on a process's standard
// input, which cannot be interrupted).
type Source interface {
	Open(ctx context.Context) error
	Close() error
}

// Env is what New gives the sources it makes.
type Env struct {
	// Sink receives the events.
	Sink Sink
	// Node seeds the simulator when the spec gives no seed.
	Node string
	// DataDir is the disk the host source reports on.
	DataDir string
	// Stdin is the stdin source's input (os.Stdin when nil).
	Stdin io.Reader
	// MaxEventBytes limits one event of the line sources.
	MaxEventBytes int
	// Now is the clock of event times.
	Now func() time.Time
	// Logger receives the sources' logs.
	Logger zerolog.Logger
}

// Specs splits a --source value ("sim,host,file:/var/log/app.ndjson")
// into specs and checks each one's kind; it returns nil for an empty list.
func Specs(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		kind, _, _ := strings.Cut(s, ":")
		switch kind {
		case "sim", "host", "stdin":
		case "file":
			if strings.TrimPrefix(s, "file:") == "" || !strings.HasPrefix(s, "file:") {
				return nil, fmt.Errorf("source %q: want file:PATH", s)
			}
		default:
			return nil, fmt.Errorf("source %q: unknown kind %q; the sources are sim, host, stdin and file:PATH", s, kind)
		}
		if seen[s] {
			return nil, fmt.Errorf("source %q is listed twice", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// New returns the source that spec names:
//
//	sim[:seed=N&interval=DURATION]  synthetic sensor readings
//	host[:interval=DURATION]        this machine's CPU, memory and disk
//	stdin                           NDJSON lines from standard input
//	file:PATH                       follow an NDJSON file
//
// It returns an error for an unknown kind or option.
func New(spec string, env Env) (Source, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "sim":
		s := NewSimSource(env.Sink, env.Node)
		s.Now, s.Logger = env.Now, env.Logger
		if err := parseOptions(spec, arg, map[string]func(string) error{
			"seed": func(v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				s.Seed = n
				return err
			},
			"interval": durationOption(&s.Interval),
		}); err != nil {
			return nil, err
		}
		return s, nil
	case "host":
		s := NewHostSource(env.Sink)
		s.Now, s.Logger = env.Now, env.Logger
		if env.DataDir != "" {
			s.DiskPath = env.DataDir
		}
		if err := parseOptions(spec, arg, map[string]func(string) error{
			"interval": durationOption(&s.Interval),
		}); err != nil {
			return nil, err
		}
		return s, nil
	case "stdin":
		if arg != "" {
			return nil, fmt.Errorf("source %q: stdin takes no options", spec)
		}
		in := env.Stdin
		if in == nil {
			in = os.Stdin
		}
		s := NewStdinSource(env.Sink, in)
		s.Now, s.Logger, s.MaxEventBytes = env.Now, env.Logger, env.MaxEventBytes
		return s, nil
	case "file":
		if arg == "" {
			return nil, fmt.Errorf("source %q: want file:PATH", spec)
		}
		path, err := filepath.Abs(arg)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", spec, err)
		}
		s := NewFileSource(env.Sink, path)
		s.Now, s.Logger, s.MaxEventBytes = env.Now, env.Logger, env.MaxEventBytes
		return s, nil
	}
	return nil, fmt.Errorf("source %q: unknown kind %q; the sources are sim, host, stdin and file:PATH", spec, kind)
}

// parseOptions applies "k=v&k=v" options to setters, refusing unknown keys.
func parseOptions(spec, arg string, set map[string]func(string) error) error {
	if arg == "" {
		return nil
	}
	for _, kv := range strings.Split(arg, "&") {
		k, v, ok := strings.Cut(kv, "=")
		f := set[k]
		if !ok || f == nil {
			keys := make([]string, 0, len(set))
			for k := range set {
				keys = append(keys, k)
			}
			return fmt.Errorf("source %q: option %q is not one of %s (as key=value, joined by &)", spec, kv, strings.Join(keys, ", "))
		}
		if err := f(v); err != nil {
			return fmt.Errorf("source %q: option %s: %v", spec, k, err)
		}
	}
	return nil
}

func durationOption(d *time.Duration) func(string) error {
	return func(v string) error {
		x, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if x <= 0 {
			return fmt.Errorf("%v is not positive", x)
		}
		*d = x
		return nil
	}
}

// loop runs fn every interval until stop closes; it is the ticking part of the
// sim and host sources.
func loop(stop <-chan struct{}, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// appendRetry appends until it succeeds or stop closes, pausing between tries
// (a full buffer under the reject policy frees up as the forwarder drains it).
// It reports whether the events were committed.
func appendRetry(stop <-chan struct{}, log zerolog.Logger, what string, fn func(ctx context.Context) error) bool {
	pause := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return true
		}
		log.Warn().Err(err).Dur("retry_in", pause).Msgf("%s not stored", what)
		select {
		case <-stop:
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}
