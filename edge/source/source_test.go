package source

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/edge/buffer"
	"github.com/tributary-edge/tributary/internal/proctest"

	"github.com/rs/zerolog"
)

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rowsOf returns every buffered row of stream name, in seq order.
func rowsOf(t testing.TB, b *buffer.Buffer, name string) []edge.Row {
	t.Helper()
	rows, err := b.Read(context.Background(), 0, 1<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []edge.Row
	for _, r := range rows {
		if r.Stream == name {
			out = append(out, r)
		}
	}
	return out
}

func dataOf(rows []edge.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r.Data)
	}
	return out
}

func TestSourceSpecs(t *testing.T) {
	tests := []struct {
		list string
		want []string
		err  string
	}{
		{list: "", want: nil},
		{list: "sim, host ,stdin,file:/tmp/a.ndjson", want: []string{"sim", "host", "stdin", "file:/tmp/a.ndjson"}},
		{list: "sim:seed=3,,host", want: []string{"sim:seed=3", "host"}},
		{list: "bogus", err: `unknown kind "bogus"`},
		{list: "file:", err: "want file:PATH"},
		{list: "sim,sim", err: "listed twice"},
	}
	for _, tt := range tests {
		got, err := Specs(tt.list)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Specs(%q) error %v, want %q", tt.list, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Specs(%q) = %q, %v; want %q", tt.list, got, err, tt.want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	s, err := New("sim:seed=7&interval=50ms", Env{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if sim := s.(*SimSource); sim.Seed != 7 || sim.Interval != 50*time.Millisecond {
		t.Fatalf("sim options not applied: %+v", sim)
	}
	h, err := New("host:interval=2s", Env{DataDir: "/data"})
	if err != nil {
		t.Fatal(err)
	}
	if host := h.(*HostSource); host.Interval != 2*time.Second || host.DiskPath != "/data" {
		t.Fatalf("host options not applied: %+v", host)
	}
	f, err := New("file:rel/app.ndjson", Env{})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.(*FileSource).Path; !filepath.IsAbs(p) || !strings.HasSuffix(p, "rel/app.ndjson") {
		t.Fatalf("file path %q is not made absolute", p)
	}
	for spec, msg := range map[string]string{
		"sim:rate=5":           `option "rate=5" is not one of`,
		"sim:seed=x":           "option seed",
		"host:interval=-1s":    "is not positive",
		"stdin:x":              "takes no options",
		"file:":                "want file:PATH",
		"mqtt:broker":          "unknown kind",
		"sim:interval=forever": "option interval",
	} {
		if _, err := New(spec, Env{}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("New(%q) error %v, want %q", spec, err, msg)
		}
	}
}

func TestSimGeneratorIsDeterministic(t *testing.T) {
	a, b, c := NewSimGenerator(42), NewSimGenerator(42), NewSimGenerator(43)
	differ := false
	for tick := 0; tick < 30; tick++ {
		ba, bb, bc := a.Tick(int64(tick)), b.Tick(int64(tick)), c.Tick(int64(tick))
		if len(ba) != 2 || ba[0].Stream != SimSensorsStream || ba[1].Stream != SimPowerStream {
			t.Fatalf("tick %d streams: %+v", tick, ba)
		}
		for i := range ba {
			if strings.Join(dataOfInputs(ba[i].Events), "\n") != strings.Join(dataOfInputs(bb[i].Events), "\n") {
				t.Fatalf("tick %d: same seed, different readings", tick)
			}
			if strings.Join(dataOfInputs(ba[i].Events), "\n") != strings.Join(dataOfInputs(bc[i].Events), "\n") {
				differ = true
			}
		}
		for _, in := range ba[0].Events {
			if in.TS != int64(tick) {
				t.Fatalf("event time %d, want %d", in.TS, tick)
			}
			var r struct {
				Sensor      string   `json:"sensor"`
				Site        string   `json:"site"`
				Temperature *float64 `json:"temperature"`
				Humidity    *float64 `json:"humidity"`
				GPS         *struct {
					Lat, Lon float64
				} `json:"gps"`
			}
			if err := json.Unmarshal(in.Data, &r); err != nil {
				t.Fatal(err)
			}
			if r.Sensor == "" || !strings.Contains("north south east west", r.Site) || r.Site == "" ||
				r.Temperature == nil || r.Humidity == nil || *r.Humidity < 5 || *r.Humidity > 100 ||
				r.GPS == nil || r.GPS.Lat < 40 || r.GPS.Lat > 60 {
				t.Fatalf("sensor reading out of shape: %s", in.Data)
			}
		}
	}
	if !differ {
		t.Fatal("seeds 42 and 43 gave the same readings")
	}
}

func dataOfInputs(in []edge.Input) []string {
	out := make([]string, len(in))
	for i, e := range in {
		out[i] = string(e.Data)
	}
	return out
}

func TestSimSourceWritesReadings(t *testing.T) {
	b := openTestBuffer(t, t.TempDir())
	s := NewSimSource(b, "n1")
	s.Seed, s.Interval = 9, 5*time.Millisecond
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	proctest.WaitFor(t, "three ticks of readings", 10*time.Second, func() bool { return len(rowsOf(t, b, SimPowerStream)) >= 3 })
	s.Close()
	sensors, power := rowsOf(t, b, SimSensorsStream), rowsOf(t, b, SimPowerStream)
	if len(sensors) != 3*len(power) {
		t.Fatalf("%d sensor readings for %d ticks, want 3 a tick", len(sensors), len(power))
	}
	// The same seed reproduces the data.
	g := NewSimGenerator(9)
	for i := range power {
		tick := g.Tick(0)
		if got, want := dataOf(sensors[3*i:3*i+3]), dataOfInputs(tick[0].Events); strings.Join(got, "") != strings.Join(want, "") {
			t.Fatalf("tick %d: %q, want %q", i, got, want)
		}
	}
}

func TestHostSourceReadsTheMachine(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	dir := t.TempDir()
	b := openTestBuffer(t, dir)
	s := NewHostSource(b)
	s.Interval, s.DiskPath = 20*time.Millisecond, dir
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proctest.WaitFor(t, "two host readings", 10*time.Second, func() bool { return len(rowsOf(t, b, HostStream)) >= 2 })
	var r map[string]any
	if err := json.Unmarshal(rowsOf(t, b, HostStream)[1].Data, &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cpu_pct", "load1", "mem_total_bytes", "mem_available_bytes", "mem_used_pct", "disk_total_bytes", "disk_free_bytes", "disk_used_pct"} {
		v, ok := r[k].(float64)
		if !ok || v < 0 {
			t.Errorf("%s = %v in %v", k, r[k], r)
		}
	}
	if r["disk_path"] != dir {
		t.Errorf("disk_path %v, want %s", r["disk_path"], dir)
	}
	if pct, _ := r["cpu_pct"].(float64); pct > 100 {
		t.Errorf("cpu_pct %v over 100", pct)
	}
}

func TestStdinSourceSkipsBadLines(t *testing.T) {
	b := openTestBuffer(t, t.TempDir())
	pr, pw := io.Pipe()
	var logs logBuffer
	s := NewStdinSource(b, pr)
	s.MaxEventBytes, s.Logger = 64, zerolog.New(&logs)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := `{"pad":"` + strings.Repeat("x", 100) + `"}`
	io.WriteString(pw, "{\"a\":1}\nnot json\n\n"+long+"\r\n{\"a\": 2}\r\n[3]\n{\"a\":3,\"ts\":1000}")
	proctest.WaitFor(t, "two events", 10*time.Second, func() bool { return len(rowsOf(t, b, edge.DefaultStream)) == 2 })
	// The last line has no newline yet: it waits until the input ends.
	pw.Close()
	proctest.WaitFor(t, "the last line at the end of the input", 10*time.Second, func() bool { return len(rowsOf(t, b, edge.DefaultStream)) == 3 })
	rows := rowsOf(t, b, edge.DefaultStream)
	if got := strings.Join(dataOf(rows), " "); got != `{"a":1} {"a":2} {"a":3,"ts":1000}` {
		t.Fatalf("events %s", got)
	}
	if rows[2].TS != int64(time.Second) {
		t.Fatalf("ts field not used: %d", rows[2].TS)
	}
	proctest.WaitFor(t, "the end of input logged", 10*time.Second, func() bool { return strings.Contains(logs.String(), "end of input") })
	for _, want := range []string{`"line":2`, `"line":4`, `"line":6`, "not a JSON object", "byte limit"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not mention %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), `"line":3`) {
		t.Errorf("blank line 3 was reported:\n%s", logs.String())
	}
}
