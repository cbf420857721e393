package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-edge/tributary/internal/cli"
)

const incrUsage = `Usage: edge-agent incr NAME DELTA [--listen ADDR]
        add DELTA (an integer, may be negative) to counter NAME of the agent
        whose local API listens on ADDR (default 127.0.0.1:7070, env TRIBUTARY_LISTEN),
        and print {"name", "node", "value"} where value is this node's contribution`

// runIncr is the incr subcommand. Flags may come before, between or after the
// two arguments, so that a negative DELTA is not taken for a flag.
func runIncr(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	listen := getenv(cli.EnvName("listen"))
	if listen == "" {
		listen = DefaultListen
	}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprintln(stderr, incrUsage)
			return 0
		case a == "--listen" || a == "-listen":
			if i+1 == len(args) {
				fmt.Fprintln(stderr, "edge-agent incr: --listen needs an address")
				return 2
			}
			listen = args[i+1]
			i++
		case strings.HasPrefix(a, "--listen=") || strings.HasPrefix(a, "-listen="):
			listen = a[strings.IndexByte(a, '=')+1:]
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "edge-agent incr: want NAME and DELTA, got %d arguments\n%s\n", len(pos), incrUsage)
		return 2
	}
	name := pos[0]
	delta, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent incr: DELTA %q is not a 64-bit integer\n", pos[1])
		return 2
	}
	out, err := incr(ctx, listen, name, delta)
	if err != nil {
		fmt.Fprintln(stderr, "edge-agent incr:", err)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

// incr posts the increment and returns the agent's answer, or an error with the
// agent's message.
func incr(ctx context.Context, listen, name string, delta int64) (string, error) {
	base := listen
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	body, _ := json.Marshal(map[string]int64{"delta": delta})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/api/v1/counters/"+url.PathEscape(name), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("is the agent running at %s? %w", listen, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
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
