package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/internal/version"
)

// NewLogger returns a zerolog logger at level writing JSON, or, with format
// "console", text for people. Errors name the flag at fault.
func NewLogger(format, level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: %v", level, err)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// Common are the flags every binary has: --log-format, --log-level and
// --version.
type Common struct {
	LogFormat, LogLevel string
	Version             bool
}

// Register adds the common flags to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.LogFormat, "log-format", "json", "log `FORMAT`: json or console")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
}

// Start does what a binary's run does once its flags are parsed: after --help
// (parseErr is flag.ErrHelp) it calls help, when not nil, and exits 0; after a
// usage error it prints it and exits 2; with --version it prints the version
// and exits 0; otherwise it makes the logger. When ok is false the caller
// returns code.
func Start(name string, parseErr error, c *Common, help func(io.Writer), stdout, stderr io.Writer) (log zerolog.Logger, code int, ok bool) {
	switch {
	case errors.Is(parseErr, flag.ErrHelp):
		if help != nil {
			help(stderr)
		}
		return zerolog.Nop(), 0, false
	case parseErr != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, parseErr)
		return zerolog.Nop(), 2, false
	case c.Version:
		fmt.Fprintln(stdout, version.String(name))
		return zerolog.Nop(), 0, false
	}
	log, err := NewLogger(c.LogFormat, c.LogLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return zerolog.Nop(), 2, false
	}
	return log, 0, true
}
