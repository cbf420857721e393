package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// armTarget is one ARM release architecture and how to recognise and run it.
type armTarget struct {
	name     string      // release name: dist/…_linux_<name>.tar.gz, bin/smoke/<name>/
	qemu     string      // qemu-user binary suffix
	machine  elf.Machine // ELF e_machine
	class    elf.Class   // ELF class
	file     string      // what file(1) says about the architecture
	platform string      // what --version prints
}

var armTargets = []armTarget{
	{"arm64", "aarch64", elf.EM_AARCH64, elf.ELFCLASS64, "ELF 64-bit LSB executable, ARM aarch64", "linux/arm64"},
	{"armv7", "arm", elf.EM_ARM, elf.ELFCLASS32, "ELF 32-bit LSB executable, ARM, EABI5", "linux/arm/v7"},
}

const (
	// smokeEvents go in while no hub runs, so they must wait in the buffer;
	// liveEvents go in once the hub is up.
	smokeEvents = 300
	liveEvents  = 50
	// Emulated binaries start slowly; these bound the waits of the test, and
	// archTimeout bounds all of one architecture's run.
	startTimeout   = 90 * time.Second
	deliverTimeout = 2 * time.Minute
	archTimeout    = 4 * time.Minute
)

// TestARMSmoke checks the cross-built binaries that `make arm-smoke` puts in
// $TRIBUTARY_SMOKE_BIN (arm64/edge-agent, armv7/edge-agent, amd64/hub): each is a
// static executable for its architecture, stamped with the version, and each ARM
// agent, run under qemu-user, buffers events while the hub is down and then
// delivers every one of them to the hub exactly once.
func TestARMSmoke(t *testing.T) {
	dir := os.Getenv("TRIBUTARY_SMOKE_BIN")
	if dir == "" {
		t.Skip("TRIBUTARY_SMOKE_BIN is not set; `make arm-smoke` builds the binaries and runs this test")
	}
	version := os.Getenv("TRIBUTARY_SMOKE_VERSION")
	if version == "" {
		version = "dev"
	}
	hub := filepath.Join(dir, "amd64", "hub")
	checkStatic(t, hub, elf.EM_X86_64, elf.ELFCLASS64, "ELF 64-bit LSB executable, x86-64")
	checkVersion(t, exec.Command(hub, "--version"), "hub", version, "linux/amd64")

	for _, tg := range armTargets {
		t.Run(tg.name, func(t *testing.T) {
			agent := filepath.Join(dir, tg.name, "edge-agent")
			checkStatic(t, agent, tg.machine, tg.class, tg.file)
			emu := newEmulator(t, findQEMU(t, tg.qemu), agent)
			checkVersion(t, emu.command("--version"), "edge-agent", version, tg.platform)
			s := &smoke{t: t, deadline: time.Now().Add(archTimeout)}
			s.deliverThroughHub(emu, hub, "smoke-"+tg.name)
		})
	}
}

// checkStatic fails unless path is a static executable for machine, both as
// file(1) sees it and as its ELF headers say: no interpreter, no shared libraries.
func checkStatic(t *testing.T, path string, machine elf.Machine, class elf.Class, fileDesc string) {
	t.Helper()
	out, err := exec.Command("file", "-b", path).Output()
	if err != nil {
		t.Fatalf("file %s: %v (run `make arm-setup`)", path, err)
	}
	desc := strings.TrimSpace(string(out))
	if !strings.HasPrefix(desc, fileDesc) {
		t.Errorf("file %s = %q, want it to start with %q", path, desc, fileDesc)
	}
	if !strings.Contains(desc, "statically linked") {
		t.Errorf("file %s = %q, want a statically linked executable", path, desc)
	}

	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("read ELF %s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != class || f.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF %v %v %v, want %v %v %v", path, f.Class, f.Machine, f.Type, class, machine, elf.ET_EXEC)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has a %v program header; a static binary has none", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: needs shared libraries %v", path, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: has a symbol table; release binaries are stripped", path)
	}
}

// checkVersion runs cmd (a binary's --version) and checks its one line:
// "<binary> <version> (commit <commit>, <go version>, <platform>)".
func checkVersion(t *testing.T, cmd *exec.Cmd, binary, version, platform string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	line := strings.TrimSpace(string(out))
	t.Logf("%s", line)
	prefix := fmt.Sprintf("%s %s (commit ", binary, version)
	suffix := ", " + platform + ")"
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, suffix) {
		t.Errorf("%v printed %q, want %q…%q", cmd.Args, line, prefix, suffix)
	}
	// The release script stamps the commit whenever it builds from a git checkout.
	if strings.Contains(line, "(commit unknown,") && exec.Command("git", "rev-parse", "HEAD").Run() == nil {
		t.Errorf("%v printed %q: the commit is not stamped", cmd.Args, line)
	}
}

// findQEMU returns the qemu-user emulator for arch, static build first.
func findQEMU(t *testing.T, arch string) string {
	t.Helper()
	for _, name := range []string{"qemu-" + arch + "-static", "qemu-" + arch} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no qemu-%s-static or qemu-%s in PATH (run `make arm-setup`)", arch, arch)
	return ""
}

// smoke is one architecture's run: its processes and its overall deadline.
type smoke struct {
	t        *testing.T
	deadline time.Time
	procs    []*process
}

// emulator runs an ARM binary under qemu-user. As root, with a static qemu, it
// runs both inside an otherwise empty root directory: no /lib, no /etc, no
// /usr, which proves that the binary needs nothing from the distribution.
type emulator struct {
	qemu, binary string // paths as the process sees them
	root         string // the chroot, or "" when not confined
	dataDir      string // a writable directory as the process sees it
}

// newEmulator prepares to run binary under qemu, confined when it can be.
func newEmulator(t *testing.T, qemu, binary string) *emulator {
	t.Helper()
	if os.Geteuid() != 0 || !isStatic(qemu) {
		t.Logf("running under %s without a chroot (needs root and a static qemu)", qemu)
		return &emulator{qemu: qemu, binary: binary, dataDir: filepath.Join(t.TempDir(), "edge")}
	}
	root := t.TempDir()
	copyFile(t, qemu, filepath.Join(root, "qemu"))
	copyFile(t, binary, filepath.Join(root, filepath.Base(binary)))
	// SQLite may want a temporary directory.
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	t.Logf("running under %s in an empty root directory holding only it and %s", filepath.Base(qemu), filepath.Base(binary))
	return &emulator{qemu: "/qemu", binary: "/" + filepath.Base(binary), root: root, dataDir: "/data"}
}

// command returns the command that runs the binary with args under qemu.
func (e *emulator) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.qemu, append([]string{e.binary}, args...)...)
	if e.root != "" {
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: e.root}
	}
	return cmd
}

// isStatic reports whether path is an ELF executable without an interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// deliverThroughHub runs the emulated agent with no hub listening, ingests
// events, starts the hub, and checks that the hub ends up with each event
// exactly once; then checks that events ingested while connected arrive too.
func (s *smoke) deliverThroughHub(emu *emulator, hub, node string) {
	t := s.t
	tmp := t.TempDir()
	agentAddr, httpAddr, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	agentURL, hubURL := "http://"+agentAddr, "http://"+httpAddr

	s.start("edge-agent", emu.command(
		"--node", node,
		"--hub", "nats://"+natsAddr,
		"--data", emu.dataDir,
		"--listen", agentAddr))
	s.waitFor(startTimeout, "the emulated agent to become healthy", func() (bool, string) {
		code, body, err := get(agentURL + "/healthz")
		return err == nil && code == http.StatusOK, describe(code, body, err)
	})

	ingest(t, agentURL, 1, smokeEvents)
	var st agentStatus
	getJSON(t, agentURL+"/api/v1/status", &st)
	if st.Node != node || st.HubConnected || st.Buffered != smokeEvents || st.LastSeq != smokeEvents {
		t.Fatalf("agent status with no hub = %+v, want node %s, not connected, %d buffered, last_seq %d",
			st, node, smokeEvents, smokeEvents)
	}

	s.start("hub", exec.Command(hub,
		"--http", httpAddr,
		"--nats", natsAddr,
		"--data", filepath.Join(tmp, "hub")))
	s.waitFor(startTimeout, "the hub to become healthy", func() (bool, string) {
		code, body, err := get(hubURL + "/healthz")
		return err == nil && code == http.StatusOK, describe(code, body, err)
	})

	started := time.Now()
	s.waitDelivered(agentURL, hubURL, node, smokeEvents)
	t.Logf("%d events buffered while the hub was down: all at the hub, once each, %v after it started",
		smokeEvents, time.Since(started).Round(time.Millisecond))
	started = time.Now()
	ingest(t, agentURL, smokeEvents+1, liveEvents)
	s.waitDelivered(agentURL, hubURL, node, smokeEvents+liveEvents)
	t.Logf("%d more events sent while connected: at the hub, once each, within %v",
		liveEvents, time.Since(started).Round(time.Millisecond))
}

// agentStatus is the edge agent's GET /api/v1/status.
type agentStatus struct {
	Node         string          `json:"node"`
	Epoch        json.RawMessage `json:"epoch"`
	HubConnected bool            `json:"hub_connected"`
	Buffered     int64           `json:"buffered"`
	LastSeq      int64           `json:"last_seq"`
	AckedSeq     int64           `json:"acked_seq"`
}

// queryResult is the part of the hub's query response the test reads.
type queryResult struct {
	Count   *int64 `json:"count"`
	Next    string `json:"next"`
	Matches []struct {
		Node   string          `json:"node"`
		Epoch  json.RawMessage `json:"epoch"`
		Seq    int64           `json:"seq"`
		Stream string          `json:"stream"`
		Data   struct {
			I      int64  `json:"i"`
			SentBy string `json:"sent_by"`
		} `json:"data"`
	} `json:"matches"`
}

// ingest posts n NDJSON events to the agent in one request and checks that it
// accepted all of them as seqs first..first+n-1. Event data carries i = its
// expected seq, so the hub's copy can be checked against it.
func ingest(t *testing.T, agentURL string, first, n int) {
	t.Helper()
	var body bytes.Buffer
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&body, `{"i":%d,"sent_by":"smoke","temp":%d.5}`+"\n", i, 15+i%20)
	}
	resp, err := httpClient.Post(agentURL+"/api/v1/events?stream=smoke", "application/x-ndjson", &body)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var got struct {
		Accepted int   `json:"accepted"`
		FirstSeq int64 `json:"first_seq"`
		LastSeq  int64 `json:"last_seq"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &got) != nil ||
		got.Accepted != n || got.FirstSeq != int64(first) || got.LastSeq != int64(first+n-1) {
		t.Fatalf("ingest of %d events = %d %s, want 202 with accepted %d, seqs %d..%d",
			n, resp.StatusCode, raw, n, first, first+n-1)
	}
}

// waitDelivered waits until the hub counts want events for node and the agent
// has every one acknowledged, then checks that the hub holds seqs 1..want each
// exactly once, from one epoch, with their data intact.
func (s *smoke) waitDelivered(agentURL, hubURL, node string, want int) {
	t := s.t
	t.Helper()
	q := url.Values{
		"pattern": {"single(" + node + ")"},
		"count":   {"true"},
		"limit":   {"10000"},
	}
	queryURL := hubURL + "/api/v1/query?" + q.Encode()
	s.waitFor(deliverTimeout, fmt.Sprintf("the hub to hold %d events of %s", want, node), func() (bool, string) {
		code, body, err := get(queryURL)
		switch {
		case err != nil || code == http.StatusNotFound || code == http.StatusServiceUnavailable:
			// The hub is not ready, or has not heard of the node yet.
			return false, describe(code, body, err)
		case code != http.StatusOK:
			t.Fatalf("GET %s = %s", queryURL, describe(code, body, err))
		}
		var res queryResult
		if err := json.Unmarshal(body, &res); err != nil || res.Count == nil {
			t.Fatalf("GET %s = %s: want a JSON body with count (%v)", queryURL, describe(code, body, nil), err)
		}
		return *res.Count >= int64(want), fmt.Sprintf("count %d", *res.Count)
	})
	s.waitFor(deliverTimeout, "the agent to have every event acknowledged", func() (bool, string) {
		var st agentStatus
		getJSON(t, agentURL+"/api/v1/status", &st)
		return st.Buffered == 0 && st.AckedSeq == int64(want), fmt.Sprintf("%+v", st)
	})

	// Everything is acknowledged, so nothing more can arrive: the hub's view
	// is final and must be exact.
	var res queryResult
	getJSON(t, queryURL, &res)
	if res.Count == nil || *res.Count != int64(want) || len(res.Matches) != want || res.Next != "" {
		t.Fatalf("hub query for %s: count %v, %d matches, next %q; want exactly %d events on one page",
			node, res.Count, len(res.Matches), res.Next, want)
	}
	seen := make(map[int64]int, want)
	epoch := string(res.Matches[0].Epoch)
	for _, m := range res.Matches {
		seen[m.Seq]++
		if m.Node != node || string(m.Epoch) != epoch || m.Stream != "smoke" || m.Data.I != m.Seq || m.Data.SentBy != "smoke" {
			t.Errorf("hub has event %+v; want node %s, epoch %s, stream smoke, data.i = seq", m, node, epoch)
		}
	}
	for seq := int64(1); seq <= int64(want); seq++ {
		if seen[seq] != 1 {
			t.Errorf("hub holds seq %d of %s %d times, want exactly once", seq, node, seen[seq])
		}
	}
}

// waitFor polls cond every 200ms until it holds. It fails the test, saying
// what was awaited and cond's last report, after timeout or at the run's
// deadline, whichever comes first, or as soon as one of the processes exits.
func (s *smoke) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	if s.deadline.Before(deadline) {
		deadline = s.deadline
	}
	for {
		for _, p := range s.procs {
			select {
			case <-p.done:
				t.Fatalf("%s exited (%v) while waiting for %s; output:\n%s", p.name, p.err, what, p.out.tail(6000))
			default:
			}
		}
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up at %s waiting for %s; last: %s", deadline.Format(time.TimeOnly), what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// process is a started binary and what it has printed.
type process struct {
	name string
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited; err is set then
	err  error
}

// start starts cmd and registers its end: SIGTERM, then SIGKILL if it has not
// exited within 10s. The kernel kills it too if the test binary dies
// (Pdeathsig), so no emulated agent outlives a timed-out test. When the test
// has failed, the cleanup logs the end of the process's output.
func (s *smoke) start(name string, cmd *exec.Cmd) {
	t := s.t
	t.Helper()
	p := &process{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.tail(6000))
		}
	})
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// get fetches u and returns its status and body.
func get(u string) (int, []byte, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// getJSON fetches u, which must answer 200, into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	code, body, err := get(u)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %s", u, describe(code, body, err))
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %s: %v", u, body, err)
	}
}

// describe renders an HTTP outcome for a failure message.
func describe(code int, body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(body) > 300 {
		body = append(body[:300:300], "…"...)
	}
	return strconv.Itoa(code) + " " + string(body)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output for failure reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes written.
func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
