package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/internal/cli"
)

const nodeUsage = `Usage:
  hub node add NAME [--out FILE] [--data DIR]   make NAME's credentials file (default ./NAME.creds)
  hub node list [--data DIR]                    list the credentials: name, public key, created, revoked
  hub node revoke NAME [--data DIR]             revoke NAME's credentials; a running hub cuts it off within 5 s
`

// runNode runs "hub node …": it works on the credential store in the data
// directory whether a hub is running on it or not.
func runNode(args []string, getenv func(string) string, now time.Time, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, nodeUsage)
		return 2
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("hub node "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", hub.New().DataDir, "the hub's data `DIR`")
	out := ""
	if verb == "add" {
		fs.StringVar(&out, "out", "", "`FILE` to write the credentials to (default ./NAME.creds)")
	}
	// Flags may come before or after NAME.
	var names []string
	for {
		if err := cli.Parse(fs, args, getenv); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, nodeUsage)
				return 0
			}
			fmt.Fprintf(stderr, "hub node %s: %v\n", verb, err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names, args = append(names, fs.Arg(0)), fs.Args()[1:]
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "hub node %s: %v\n", verb, err)
		return 1
	}
	want := 1
	switch verb {
	case "add", "revoke":
	case "list":
		want = 0
	default:
		fmt.Fprintf(stderr, "hub node: unknown command %q\n%s", verb, nodeUsage)
		return 2
	}
	if len(names) != want {
		fmt.Fprintf(stderr, "hub node %s: want %d node name, got %d\n%s", verb, want, len(names), nodeUsage)
		return 2
	}
	store, err := auth.Open(filepath.Join(*data, "auth"))
	if err != nil {
		return fail(err)
	}
	switch verb {
	case "add":
		name := names[0]
		if out == "" {
			out = name + ".creds"
		}
		// Refuse to overwrite before making the credential, so that a
		// credential is never made and lost.
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(fmt.Errorf("--out: %w", err))
		}
		creds, _, err := store.AddNode(name, now)
		if err == nil {
			_, err = f.Write(creds)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
			return fail(err)
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintln(stdout, abs)
	case "list":
		nodes, err := store.Nodes()
		if err != nil {
			return fail(err)
		}
		w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		for _, n := range nodes {
			revoked := "-"
			if !n.Revoked.IsZero() {
				revoked = n.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Name, n.PublicKey, n.Created.Format(time.RFC3339), revoked)
		}
		w.Flush()
	case "revoke":
		revoked, err := store.Revoke(names[0], now)
		if err != nil {
			return fail(err)
		}
		for _, n := range revoked {
			fmt.Fprintf(stdout, "revoked %s %s\n", n.Name, n.PublicKey)
		}
	}
	return 0
}
