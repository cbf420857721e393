package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSample is one reading of the agent's (and the hub's) memory.
type memSample struct {
	at            time.Duration
	phase         string
	rss, hwm      int64 // edge VmRSS and VmHWM, bytes
	cpu           time.Duration
	hubRSS        int64
	bufferedBytes int64
	buffered      int64
}

// memSampler reads /proc/<pid>/status of the edge (and the hub, once set) and
// the edge's status every second.
type memSampler struct {
	mu      sync.Mutex
	phase   string
	hubPID  int
	samples []memSample
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// procCPU returns the user plus system CPU time pid has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces, start at state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procMem returns VmRSS and VmHWM of pid in bytes.
func procMem(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}

// procRSSParts returns the resident set's anonymous, file and shared parts of
// pid, as /proc/<pid>/status names them.
func procRSSParts(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Rss") || strings.HasPrefix(line, "VmHWM") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", ")
}

func startMemSampler(e *edgeProc) *memSampler {
	m := &memSampler{phase: "start", stop: make(chan struct{}), done: make(chan struct{})}
	pid := e.cmd.Process.Pid
	client := &http.Client{Timeout: 900 * time.Millisecond}
	begin := time.Now()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s := memSample{at: time.Since(begin)}
			s.rss, s.hwm = procMem(pid)
			s.cpu = procCPU(pid)
			if resp, err := client.Get(e.url() + "/api/v1/status"); err == nil {
				var st edgeStatus
				if json.NewDecoder(resp.Body).Decode(&st) == nil {
					s.buffered, s.bufferedBytes = st.Buffered, st.BufferedBytes
				}
				resp.Body.Close()
			}
			m.mu.Lock()
			s.phase = m.phase
			if m.hubPID != 0 {
				s.hubRSS, _ = procMem(m.hubPID)
			}
			m.samples = append(m.samples, s)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memSampler) set(phase string, hubPID int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = phase
	if hubPID != 0 {
		m.hubPID = hubPID
	}
}

func (m *memSampler) finish() []memSample {
	m.once.Do(func() { close(m.stop) })
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}

const mib = 1 << 20

// TestEdgeMemoryWhileBacklogDrains measures the edge agent's resident memory
// while it takes in a large backlog (1 GiB of event data by default) with the
// hub down, while the backlog drains to the hub, and at rest afterwards, and
// the drain throughput. It is a measurement, run only with
// TRIBUTARY_MEMORY_TEST=1 (TRIBUTARY_MEMORY_BACKLOG sets the size in bytes);
// docs/memory.md has the method and the figures. Every phase has a deadline,
// and the hub must end up holding every event.
func TestEdgeMemoryWhileBacklogDrains(t *testing.T) {
	if os.Getenv("TRIBUTARY_MEMORY_TEST") != "1" {
		t.Skip("memory measurement: set TRIBUTARY_MEMORY_TEST=1 (takes tens of minutes)")
	}
	target := int64(1 << 30)
	if v := os.Getenv("TRIBUTARY_MEMORY_BACKLOG"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("TRIBUTARY_MEMORY_BACKLOG=%q: want a positive number of bytes", v)
		}
		target = n
	}
	rest := 30 * time.Second
	if v := os.Getenv("TRIBUTARY_MEMORY_REST"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			t.Fatalf("TRIBUTARY_MEMORY_REST=%q: want a duration up to 1h", v)
		}
		rest = d
	}
	const node = "mem-1"
	h := limDownHub(t)
	e := startEdge(t, node, t.TempDir(), h.natsURL(), "--buffer-max-bytes", "4GiB")
	m := startMemSampler(e)
	defer m.finish()

	// Ingest: 8 MiB NDJSON bodies of 1 KiB events, one request at a time.
	const perReq = 8000
	m.set("ingest", 0)
	ingestStart := time.Now()
	deadline := ingestStart.Add(60 * time.Minute)
	var st edgeStatus
	id := 0
	for st = limEdgeStatus(t, e); st.BufferedBytes < target; st = limEdgeStatus(t, e) {
		if time.Now().After(deadline) {
			t.Fatalf("ingest of %d bytes did not finish in an hour: %+v", target, st)
		}
		code, reply := limPost(t, e, "mem", limBody(id, perReq))
		if code != http.StatusAccepted {
			t.Fatalf("ingest request at %d events: %d %s", id, code, reply)
		}
		id += perReq
	}
	ingestTook := time.Since(ingestStart)
	backlog := st
	dataDir, _ := limDiskUse(e.dir)
	t.Logf("backlog: %d events, %d data bytes, %d bytes on disk, ingested in %v (%.1f MiB/s)",
		backlog.Buffered, backlog.BufferedBytes, dataDir, ingestTook.Round(time.Second), float64(backlog.BufferedBytes)/mib/ingestTook.Seconds())

	// The agent idles with its backlog: time itself is the subject here.
	m.set("idle-backlog", 0)
	time.Sleep(15 * time.Second)

	limBringUp(t, h, "8GiB")
	m.set("drain", h.cmd.Process.Pid)
	drainStart := time.Now()
	limSettle(t, "the backlog to drain", 60*time.Minute, func() (bool, string) {
		s := limEdgeStatus(t, e)
		return s.Buffered == 0, fmt.Sprintf("%+v", s)
	})
	drainTook := time.Since(drainStart)
	m.set("hub-indexing", 0)
	limSettle(t, "the hub to index the backlog", 60*time.Minute, func() (bool, string) {
		n, _ := limHubNode(t, h, node)
		return n.Events == int64(backlog.LastSeq), fmt.Sprintf("%+v", n)
	})
	indexTook := time.Since(drainStart)
	m.set("rest", 0)
	time.Sleep(rest)
	samples := m.finish()
	for _, p := range []*proc{e.proc, h.proc} {
		t.Logf("%s at rest: %s", p.name, procRSSParts(p.cmd.Process.Pid))
	}

	ni, _ := limHubNode(t, h, node)
	if ni.Events != int64(backlog.LastSeq) || ni.HighSeq != int64(backlog.LastSeq) || ni.Dropped != 0 || ni.Missing != 0 {
		t.Fatalf("hub's record after the drain: %+v, want %d events", ni, backlog.LastSeq)
	}

	type agg struct {
		peakRSS, lastRSS, peakHub int64
		hwm                       int64
		cpu0, cpu1                time.Duration
		t0, t1                    time.Duration
	}
	phases := map[string]*agg{}
	var order []string
	for _, s := range samples {
		a := phases[s.phase]
		if a == nil {
			a = &agg{cpu0: s.cpu, t0: s.at}
			phases[s.phase] = a
			order = append(order, s.phase)
		}
		a.peakRSS, a.lastRSS, a.peakHub = max(a.peakRSS, s.rss), s.rss, max(a.peakHub, s.hubRSS)
		a.cpu1, a.t1, a.hwm = s.cpu, s.at, s.hwm
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| phase | length | edge peak VmRSS | edge VmRSS at end | edge VmHWM at end | edge CPU | hub peak VmRSS |\n|---|---|---|---|---|---|---|\n")
	for _, p := range order {
		a := phases[p]
		fmt.Fprintf(&table, "| %s | %v | %.1f MiB | %.1f MiB | %.1f MiB | %v | %.1f MiB |\n", p, (a.t1 - a.t0).Round(time.Second),
			float64(a.peakRSS)/mib, float64(a.lastRSS)/mib, float64(a.hwm)/mib, (a.cpu1 - a.cpu0).Round(10*time.Millisecond), float64(a.peakHub)/mib)
	}
	last := samples[len(samples)-1]
	fmt.Fprintf(&table, "\nedge VmHWM at the end: %.1f MiB\n", float64(last.hwm)/mib)
	fmt.Fprintf(&table, "drain: %d events, %.1f MiB of data in %v: %.0f events/s, %.1f MiB/s (hub indexed all after %v)\n",
		backlog.Buffered, float64(backlog.BufferedBytes)/mib, drainTook.Round(time.Second),
		float64(backlog.Buffered)/drainTook.Seconds(), float64(backlog.BufferedBytes)/mib/drainTook.Seconds(), indexTook.Round(time.Second))
	t.Log(table.String())

	// The series, every 10 s, to see whether memory follows the backlog.
	var series strings.Builder
	series.WriteString("\n   t  phase          edge RSS  edge HWM   hub RSS  buffered MiB\n")
	for i, s := range samples {
		if i%10 == 0 || i == len(samples)-1 {
			fmt.Fprintf(&series, "%4.0fs %-13s %7.1f  %8.1f  %8.1f  %8.1f\n", s.at.Seconds(), s.phase,
				float64(s.rss)/mib, float64(s.hwm)/mib, float64(s.hubRSS)/mib, float64(s.bufferedBytes)/mib)
		}
	}
	t.Log(series.String())

	// The longest the backlog stood still while draining, and what the
	// processes said about it.
	var stall, run time.Duration
	for i := 1; i < len(samples); i++ {
		s, prev := samples[i], samples[i-1]
		if s.phase == "drain" && prev.phase == "drain" && s.bufferedBytes == prev.bufferedBytes && s.bufferedBytes > 0 {
			run += s.at - prev.at
			stall = max(stall, run)
		} else {
			run = 0
		}
	}
	t.Logf("longest pause of the drain: %v", stall.Round(time.Second))
	for _, p := range []*proc{e.proc, h.proc} {
		var lines []string
		for _, l := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
				lines = append(lines, l)
			}
		}
		t.Logf("%s: %d warnings and errors; the last ones:\n%s", p.name, len(lines), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}
