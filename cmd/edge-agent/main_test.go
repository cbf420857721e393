package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/natstest"
	"github.com/tributary-edge/tributary/stream"
)

func TestParseFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{
		"TRIBUTARY_NODE":             "envnode",
		"TRIBUTARY_HUB":              "nats://a:4222, nats://b:4222",
		"TRIBUTARY_BUFFER_MAX_BYTES": "512MiB",
		"TRIBUTARY_BUFFER_MAX_AGE":   "36h",
		"TRIBUTARY_BUFFER_POLICY":    "reject",
		"TRIBUTARY_SOURCE":           "sim, host",
		"TRIBUTARY_LISTEN":           "127.0.0.1:9999",
		"TRIBUTARY_COMPRESS":         "none",
		"TRIBUTARY_UPLINK_MAX_RATE":  "64KiB",
	}
	c, err := parse([]string{"--node", "flagnode", "--listen", "127.0.0.1:7171"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Flags win over the environment; the environment fills the rest.
	if c.node != "flagnode" || c.listen != "127.0.0.1:7171" || c.hub != "nats://a:4222, nats://b:4222" ||
		c.bufferMaxBytes != 512<<20 || c.bufferMaxAge != 36*time.Hour || c.policy != "reject" ||
		strings.Join(c.specs, ",") != "sim,host" || c.data != "./edge-data" || c.codec != stream.CodecNone ||
		c.uplinkMaxRate != 64<<10 {
		t.Fatalf("config %+v", c)
	}
	c, err = parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.node != stream.CleanName(host) || c.bufferMaxBytes != 1<<30 || c.policy != "drop-oldest" ||
		c.hub != "nats://127.0.0.1:4222" || c.listen != "127.0.0.1:7070" || c.bufferMaxAge != 0 || c.codec != stream.CodecZstd || c.uplinkMaxRate != 0 {
		t.Fatalf("defaults %+v", c)
	}
}

func TestRunRefusesBadUsage(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{args: []string{"--buffer-policy", "keep-all"}, msg: `--buffer-policy: buffer policy "keep-all" is not one of`},
		{args: []string{"--buffer-max-bytes", "lots"}, msg: `size "lots"`},
		{args: []string{"--compress", "gzip"}, msg: `--compress: `},
		{args: []string{"--buffer-max-bytes", "1KiB"}, msg: "--buffer-max-bytes 1KiB: want 0 (no cap) or at least"},
		{args: []string{"--uplink-max-rate", "100"}, msg: "--uplink-max-rate 100: want 0 (no cap) or at least 1024 bytes per second"},
		{args: []string{"--uplink-max-rate", "fast"}, msg: `size "fast"`},
		{args: []string{"--buffer-max-age", "-1h"}, msg: "--buffer-max-age must not be negative"},
		{args: []string{"--node", "no spaces"}, msg: `--node: invalid name: node name "no spaces"`},
		{args: []string{"--source", "sim,mqtt"}, msg: `--source: source "mqtt": unknown kind`},
		{args: []string{"--hub", ","}, msg: "--hub: no hub URL"},
		{args: []string{"--log-format", "xml"}, msg: `--log-format "xml"`},
		{args: []string{"stray"}, msg: `unexpected argument "stray"`},
		{env: map[string]string{"TRIBUTARY_BUFFER_MAX_BYTES": "huge"}, msg: `TRIBUTARY_BUFFER_MAX_BYTES="huge"`},
		{args: []string{"--creds", "/nonexistent/a.creds"}, msg: "--creds: open /nonexistent/a.creds"},
		{args: []string{"--creds", "main_test.go"}, msg: "--creds main_test.go: not a NATS credentials file"},
		{args: []string{"--tls-ca", "main_test.go"}, msg: "--tls-ca main_test.go: no PEM certificate"},
		{args: []string{"--tls-cert", "c.pem"}, msg: "--tls-cert and --tls-key go together"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, nil, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tt.msg) {
			t.Errorf("run %q env %v: exit %d, stderr %q; want 2 and %q", tt.args, tt.env, code, errb.String(), tt.msg)
		}
	}
}

func TestRunVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, func(string) string { return "" }, nil, &out, &errb); code != 0 ||
		!strings.HasPrefix(out.String(), "edge-agent ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--help"}, func(string) string { return "" }, nil, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, flagName := range []string{"node", "hub", "data", "listen", "source", "buffer-max-bytes", "buffer-max-age", "buffer-policy", "compress", "uplink-max-rate", "log-format", "log-level", "version"} {
		env := "TRIBUTARY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
		if !strings.Contains(errb.String(), "--"+flagName) || !strings.Contains(errb.String(), "env "+env+"\n") {
			t.Errorf("--help does not list --%s with %s:\n%s", flagName, env, errb.String())
		}
	}
	if !strings.Contains(errb.String(), "edge-agent incr NAME DELTA") || !strings.Contains(errb.String(), "edge-agent set NAME VALUE --kind") {
		t.Errorf("--help does not show the incr and set subcommands")
	}
}

// syncBuffer is a bytes.Buffer a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentProc is a running edge-agent process.
type agentProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	summary string
	url     string
	stderr  *syncBuffer
	done    chan error
}

var summaryRE = regexp.MustCompile(`api (http://[^ ]+)/api/v1`)

// startAgent runs the binary and waits for its start-up summary, from which it
// takes the API's address.
func startAgent(t *testing.T, bin string, env []string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{t: t, cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("edge-agent stderr:\n%s", p.stderr.String())
		}
	})
	select {
	case line, ok := <-lines:
		m := summaryRE.FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("no start-up summary, got %q; stderr:\n%s", line, p.stderr.String())
		}
		p.summary, p.url = line, m[1]
	case <-time.After(60 * time.Second):
		t.Fatalf("no start-up summary within 60s; stderr:\n%s", p.stderr.String())
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// stop sends SIGTERM and returns the exit error.
func (p *agentProc) stop() error {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		p.t.Fatal("no exit within 20s of SIGTERM")
		return nil
	}
}

type status struct {
	Node         string `json:"node"`
	Epoch        string `json:"epoch"`
	HubConnected bool   `json:"hub_connected"`
	Buffered     int64  `json:"buffered"`
	LastSeq      uint64 `json:"last_seq"`
	AckedSeq     uint64 `json:"acked_seq"`
	Sent         uint64 `json:"sent"`
}

func (p *agentProc) status() status {
	p.t.Helper()
	resp, err := http.Get(p.url + "/api/v1/status")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		p.t.Fatalf("status: %d %v", resp.StatusCode, err)
	}
	return s
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runIncrProc runs "edge-agent incr ..." and returns its exit code and output.
func runIncrProc(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	return runSubcommand(t, bin, env, append([]string{"incr"}, args...)...)
}

// runSubcommand runs "edge-agent ARGS..." and returns its exit code and output.
func runSubcommand(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(out.String()), errb.String()
}

func TestEdgeAgentProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "edge-agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hub := natstest.Start(t, "")
	dir := t.TempDir()
	// The node comes from the environment; --data wins over its variable.
	env := []string{"TRIBUTARY_NODE=envnode", "TRIBUTARY_DATA=" + filepath.Join(t.TempDir(), "not-this")}
	p := startAgent(t, bin, env, "--data", dir, "--hub", hub.ClientURL(), "--listen", "127.0.0.1:0")
	for _, want := range []string{"node envnode", "data " + dir, "hub " + hub.ClientURL(), "epoch "} {
		if !strings.Contains(p.summary, want) {
			t.Errorf("summary %q lacks %q", p.summary, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "buffer.db")); err != nil {
		t.Fatalf("buffer not in --data: %v", err)
	}

	resp, err := http.Post(p.url+"/api/v1/events?stream=app", "application/x-ndjson", strings.NewReader("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || strings.TrimSpace(string(body)) != `{"accepted":3,"first_seq":1,"last_seq":3}` {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the events acknowledged by the hub", 30*time.Second, func() bool {
		s := p.status()
		return s.HubConnected && s.AckedSeq == 3 && s.Buffered == 0 && s.Sent == 3
	})
	st := p.status()
	if st.Node != "envnode" || st.Epoch == "" || !strings.Contains(p.summary, "epoch "+st.Epoch) {
		t.Fatalf("status %+v, summary %q", st, p.summary)
	}
	if got := natstest.ReadEdge(t, hub.ClientURL(), "envnode").Data; len(got) != 3 || got[1] != `{"n":1}` || got[3] != `{"n":3}` {
		t.Fatalf("events at the hub: %v", got)
	}

	// The incr subcommand talks to the running agent.
	addr := strings.TrimPrefix(p.url, "http://")
	if code, out, errs := runIncrProc(t, bin, nil, "visits", "5", "--listen", addr); code != 0 || out != `{"name":"visits","node":"envnode","kind":"sum","value":5}` {
		t.Fatalf("incr: %d %q %q", code, out, errs)
	}
	if code, out, errs := runIncrProc(t, bin, nil, "--listen="+addr, "visits", "-7"); code != 0 || out != `{"name":"visits","node":"envnode","kind":"sum","value":-2}` {
		t.Fatalf("incr with a negative delta: %d %q %q", code, out, errs)
	}
	if code, out, errs := runIncrProc(t, bin, []string{"TRIBUTARY_LISTEN=" + addr}, "visits", "1"); code != 0 || out != `{"name":"visits","node":"envnode","kind":"sum","value":-1}` {
		t.Fatalf("incr with the address from the environment: %d %q %q", code, out, errs)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bad.name", "1", "--listen", addr}, 1, `counter name "bad.name"`},
		{[]string{"big", "9223372036854775807", "--listen", addr}, 0, ""},
		{[]string{"big", "1", "--listen", addr}, 1, "overflow"},
		{[]string{"visits", "x", "--listen", addr}, 2, `DELTA "x" is not a 64-bit integer`},
		{[]string{"visits", "--listen", addr}, 2, "want NAME and DELTA"},
		{[]string{"visits", "1", "--listen", "127.0.0.1:1"}, 1, "is the agent running at 127.0.0.1:1?"},
	} {
		if code, _, errs := runIncrProc(t, bin, nil, tc.args...); code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("incr %q: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	checkSet(t, bin, addr)

	if err := p.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(p.stderr.String(), "edge agent stopped") {
		t.Fatalf("no clean stop logged:\n%s", p.stderr.String())
	}

	// Restarted on the same data with a source: same epoch, seqs go on.
	p2 := startAgent(t, bin, env, "--data", dir, "--hub", hub.ClientURL(), "--listen", "127.0.0.1:0", "--source", "sim:interval=20ms&seed=1")
	waitFor(t, "simulated readings forwarded", 30*time.Second, func() bool {
		s := p2.status()
		return s.LastSeq >= 10 && s.AckedSeq >= 10
	})
	if s := p2.status(); s.Epoch != st.Epoch {
		t.Fatalf("epoch changed across a restart: %s, was %s", s.Epoch, st.Epoch)
	}
	got := natstest.ReadEdge(t, hub.ClientURL(), "envnode").Data
	for seq := uint64(4); seq <= 10; seq++ {
		if !strings.Contains(got[seq], `"sensor"`) && !strings.Contains(got[seq], `"meter"`) {
			t.Fatalf("seq %d at the hub is %q, want a simulated reading", seq, got[seq])
		}
	}
	resp, err = http.Get(p2.url + "/api/v1/counters/visits")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != `{"name":"visits","node":"envnode","kind":"sum","value":-1}` {
		t.Fatalf("counter after restart: %s", body)
	}
}

// checkSet runs the set subcommand against the agent at addr: every kind, the
// flags anywhere and in both forms, the address from the environment, a
// negative value, and each way of getting it wrong.
func checkSet(t *testing.T, bin, addr string) {
	t.Helper()
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"set", "pressure", "4.5", "--kind", "max", "--listen", addr}, `{"name":"pressure","node":"envnode","kind":"max","value":4.5}`},
		{nil, []string{"set", "--kind=max", "pressure", "--listen=" + addr, "2"}, `{"name":"pressure","node":"envnode","kind":"max","value":4.5}`},
		{[]string{"TRIBUTARY_LISTEN=" + addr}, []string{"set", "battery", "-3.25", "-kind", "min"}, `{"name":"battery","node":"envnode","kind":"min","value":-3.25}`},
		{nil, []string{"set", "--listen", addr, "--kind", "min", "--", "battery", "-4"}, `{"name":"battery","node":"envnode","kind":"min","value":-4}`},
	} {
		if code, out, errs := runSubcommand(t, bin, tc.env, tc.args...); code != 0 || out != tc.want {
			t.Errorf("%q: exit %d, %q, stderr %q; want %s", tc.args, code, out, errs, tc.want)
		}
	}
	code, out, errs := runSubcommand(t, bin, nil, "set", "fw", "7", "--kind", "last", "--listen", addr)
	if code != 0 || !strings.HasPrefix(out, `{"name":"fw","node":"envnode","kind":"last","value":7,"updated":"`) {
		t.Errorf("set last: exit %d, %q, stderr %q", code, out, errs)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"pressure", "1", "--kind", "min"}, 1, `counter "pressure" is a max counter, not a min`},
		{[]string{"visits", "1", "--kind", "max"}, 1, `counter "visits" is a sum counter`},
		{[]string{"bad.name", "1", "--kind", "max"}, 1, `counter name "bad.name"`},
		{[]string{"pressure", "1"}, 2, "--kind is required: max, min or last"},
		{[]string{"pressure", "1", "--kind", "sum"}, 2, `--kind "sum": want max, min or last (a sum takes deltas: edge-agent incr)`},
		{[]string{"pressure", "1", "--kind", "avg"}, 2, `--kind "avg"`},
		{[]string{"pressure", "1", "--kind"}, 2, "--kind needs a value"},
		{[]string{"pressure", "NaN", "--kind", "max"}, 2, `VALUE "NaN" is not a finite number`},
		{[]string{"pressure", "1e400", "--kind", "max"}, 2, `VALUE "1e400" is not a finite number`},
		{[]string{"pressure", "x", "--kind", "max"}, 2, `VALUE "x" is not a finite number`},
		{[]string{"pressure", "--kind", "max"}, 2, "want NAME and VALUE, got 1 arguments"},
	} {
		args := append([]string{"set", "--listen", addr}, tc.args...)
		if code, out, errs := runSubcommand(t, bin, nil, args...); code != tc.code || out != "" || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", args, code, out, errs, tc.code, tc.msg)
		}
	}
	if code, _, errs := runSubcommand(t, bin, nil, "set", "--help"); code != 0 || !strings.Contains(errs, "Usage: edge-agent set NAME VALUE --kind KIND") {
		t.Errorf("set --help: exit %d, %q", code, errs)
	}
}
