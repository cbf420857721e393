package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/internal/cli"
)

const incrUsage = `Usage: edge-agent incr NAME DELTA [--listen ADDR]
        add DELTA (an integer, may be negative) to the sum counter NAME of the agent
        whose local API listens on ADDR (default 127.0.0.1:7070, env TRIBUTARY_LISTEN),
        and print {"name", "node", "kind", "value"} where value is this node's contribution`

const setUsage = `Usage: edge-agent set NAME VALUE --kind KIND [--listen ADDR]
        set counter NAME of the agent whose local API listens on ADDR (default
        127.0.0.1:7070, env TRIBUTARY_LISTEN) to VALUE (a number, may be negative),
        as a register of KIND: max (keeps the largest value ever set), min (the
        smallest) or last (the newest write); a name's first write fixes its kind.
        It prints {"name", "node", "kind", "value"} where value is this node's
        register, and for last "updated", the time of the write`

// runIncr is the incr subcommand. Flags may come before, between or after the
// two arguments, so that a negative DELTA is not taken for a flag.
func runIncr(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a, code, ok := parseCounterArgs("incr", incrUsage, "NAME and DELTA", args, getenv, false, stderr)
	if !ok {
		return code
	}
	delta, err := strconv.ParseInt(a.pos[1], 10, 64)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent incr: DELTA %q is not a 64-bit integer\n", a.pos[1])
		return 2
	}
	return postAndPrint(ctx, "incr", a, map[string]any{"delta": delta}, stdout, stderr)
}

// runSet is the set subcommand, with the conventions of incr.
func runSet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a, code, ok := parseCounterArgs("set", setUsage, "NAME and VALUE", args, getenv, true, stderr)
	if !ok {
		return code
	}
	if a.kind == "" {
		fmt.Fprintf(stderr, "edge-agent set: --kind is required: max, min or last\n%s\n", setUsage)
		return 2
	}
	if k, err := counters.ParseKind(a.kind); err != nil || k == counters.KindSum {
		fmt.Fprintf(stderr, "edge-agent set: --kind %q: want max, min or last (a sum takes deltas: edge-agent incr)\n", a.kind)
		return 2
	}
	v, err := strconv.ParseFloat(a.pos[1], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		fmt.Fprintf(stderr, "edge-agent set: VALUE %q is not a finite number\n", a.pos[1])
		return 2
	}
	return postAndPrint(ctx, "set", a, map[string]any{"kind": a.kind, "value": v}, stdout, stderr)
}

// counterArgs are a counter subcommand's arguments.
type counterArgs struct {
	listen string
	kind   string
	pos    []string
}

// parseCounterArgs reads --listen (and --kind when withKind) anywhere among
// args, and exactly two positional arguments. ok is false when the command
// should exit with code: 0 after --help, 2 for bad usage, with the reason on
// stderr.
func parseCounterArgs(cmd, usage, want string, args []string, getenv func(string) string, withKind bool, stderr io.Writer) (a counterArgs, code int, ok bool) {
	a.listen = getenv(cli.EnvName("listen"))
	if a.listen == "" {
		a.listen = DefaultListen
	}
	flags := map[string]*string{"listen": &a.listen}
	if withKind {
		flags["kind"] = &a.kind
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" || arg == "-help" || arg == "--help" {
			fmt.Fprintln(stderr, usage)
			return a, 0, false
		}
		if arg == "--" {
			a.pos = append(a.pos, args[i+1:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		dst, isFlag := flags[name]
		if !strings.HasPrefix(arg, "-") || !isFlag {
			a.pos = append(a.pos, arg)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				fmt.Fprintf(stderr, "edge-agent %s: --%s needs a value\n", cmd, name)
				return a, 2, false
			}
			value = args[i+1]
			i++
		}
		*dst = value
	}
	if len(a.pos) != 2 {
		fmt.Fprintf(stderr, "edge-agent %s: want %s, got %d arguments\n%s\n", cmd, want, len(a.pos), usage)
		return a, 2, false
	}
	return a, 0, true
}

// postAndPrint posts body to the counter a.pos[0] and prints the agent's
// answer; it returns 1 with the agent's message when the write failed.
func postAndPrint(ctx context.Context, cmd string, a counterArgs, body map[string]any, stdout, stderr io.Writer) int {
	out, err := postCounter(ctx, a.listen, a.pos[0], body)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent %s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

// postCounter posts a counter write and returns the agent's answer, or an
// error with the agent's message.
func postCounter(ctx context.Context, listen, name string, body map[string]any) (string, error) {
	base := listen
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/api/v1/counters/"+url.PathEscape(name), bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("is the agent running at %s? %w", listen, err)
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return "", errors.New(e.Error.Message)
		}
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return string(bytes.TrimSpace(b)), nil
}
