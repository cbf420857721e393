// Package cli gives both binaries the same command-line conventions: every flag
// can also be set by the environment variable TRIBUTARY_ + the flag in upper snake
// case, flags win over the environment, and --help lists both.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// EnvPrefix starts every environment variable name.
const EnvPrefix = "TRIBUTARY_"

// EnvName returns the environment variable for a flag: buffer-max-bytes →
// TRIBUTARY_BUFFER_MAX_BYTES.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs and then sets every flag that args did not set from
// its environment variable, read with getenv. An environment value that does not
// parse is an error naming the variable.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.Usage = func() { Usage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Usage writes every flag with its default, its environment variable and its
// help text.
func Usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n        %s", strings.ReplaceAll(usage, "\n", "\n        "))
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "\n        env %s\n", EnvName(f.Name))
	})
}

// Size is a byte count flag that accepts plain numbers and KB/MB/GB/TB (powers of
// 1000) or KiB/MiB/GiB/TiB (powers of 1024) suffixes.
type Size int64

// String formats the size in the largest binary unit that divides it.
func (s *Size) String() string {
	v := int64(*s)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set parses a size such as 1GiB, 512MiB, 100MB or 1048576.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// ParseSize parses a byte count with an optional unit suffix.
func ParseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	units := []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", v)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", v)
	}
	return n * mult, nil
}

// CheckListen tries to listen on addr and stops again, so that a binary whose
// port is taken fails at once, before any slow start-up work, with an error
// that names the flag: "--http 127.0.0.1:8080: address in use (another process
// listens there); stop it or choose another address".
func CheckListen(flagName, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s: address in use (another process listens there); stop it or choose another address", flagName, addr)
	}
	if err != nil {
		return fmt.Errorf("--%s %s: %v", flagName, addr, err)
	}
	return ln.Close()
}
