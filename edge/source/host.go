package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// HostStream is the stream of the host source.
const HostStream = "host"

// HostSource writes this machine's CPU use, memory and disk on stream "host"
// every Interval, read from /proc and statfs. A figure that cannot be read is
// left out of the event; an event with no figure at all is not written.
type HostSource struct {
	// Sink receives the events.
	Sink Sink
	// Interval is the time between readings.
	Interval time.Duration
	// DiskPath is a path on the file system to report (the data directory).
	DiskPath string
	// ProcDir is where /proc is mounted.
	ProcDir string
	// Now is the clock of event times.
	Now func() time.Time
	// Logger receives failed readings and appends.
	Logger zerolog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewHostSource returns a host source reading every 10 seconds and reporting
// the root file system.
func NewHostSource(sink Sink) *HostSource {
	return &HostSource{Sink: sink, Interval: 10 * time.Second, DiskPath: "/", ProcDir: "/proc", Now: time.Now, Logger: zerolog.Nop()}
}

// Open takes a first CPU sample and starts reading.
func (s *HostSource) Open(ctx context.Context) error {
	if s.Sink == nil || s.Interval <= 0 {
		return errors.New("open host source: needs a sink and a positive interval")
	}
	log := s.Logger.With().Str("component", "source").Str("source", "host").Logger()
	prev, _ := readCPU(s.ProcDir)
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		loop(s.stop, s.Interval, func() {
			var data map[string]any
			data, prev = s.reading(prev)
			if len(data) <= 1 {
				log.Warn().Msg("no host figure could be read")
				return
			}
			b, err := json.Marshal(data)
			if err != nil {
				log.Error().Err(err).Msg("encode host reading")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := s.Sink.Append(ctx, HostStream, []edge.Input{{TS: s.Now().UnixNano(), Data: b}}); err != nil {
				log.Warn().Err(err).Msg("host reading not stored")
			}
		})
	}()
	log.Info().Dur("interval", s.Interval).Str("disk", s.DiskPath).Msg("source started")
	return nil
}

// Close stops reading and waits.
func (s *HostSource) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
	return nil
}

// reading gathers the figures; it returns the CPU sample to diff against next.
func (s *HostSource) reading(prev cpuSample) (map[string]any, cpuSample) {
	data := map[string]any{}
	if host, err := os.Hostname(); err == nil {
		data["hostname"] = host
	}
	cur, err := readCPU(s.ProcDir)
	if err == nil {
		if d := cur.total - prev.total; prev.total > 0 && d > 0 {
			busy := float64(d-(cur.idle-prev.idle)) / float64(d)
			data["cpu_pct"] = round(100*clamp(busy, 0, 1), 2)
		}
	} else {
		cur = prev
	}
	if load, err := readLoad(s.ProcDir); err == nil {
		data["load1"] = load
	}
	if total, avail, err := readMem(s.ProcDir); err == nil && total > 0 {
		data["mem_total_bytes"] = total
		data["mem_available_bytes"] = avail
		data["mem_used_pct"] = round(100*float64(total-avail)/float64(total), 2)
	}
	if total, free, err := diskUsage(s.DiskPath); err == nil && total > 0 {
		data["disk_path"] = s.DiskPath
		data["disk_total_bytes"] = total
		data["disk_free_bytes"] = free
		data["disk_used_pct"] = round(100*float64(total-free)/float64(total), 2)
	}
	return data, cur
}

type cpuSample struct{ total, idle uint64 }

// readCPU reads the aggregate "cpu" line of /proc/stat.
func readCPU(proc string) (cpuSample, error) {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return cpuSample{}, err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}, fmt.Errorf("%s/stat: unexpected first line %q", proc, line)
	}
	var s cpuSample
	// user nice system idle iowait irq softirq steal; guest time is already in user.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuSample{}, fmt.Errorf("%s/stat: field %d: %w", proc, i+1, err)
		}
		s.total += n
		if i == 3 || i == 4 {
			s.idle += n
		}
	}
	return s, nil
}

func readLoad(proc string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(proc, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s/loadavg is empty", proc)
	}
	return strconv.ParseFloat(f[0], 64)
}

// readMem returns MemTotal and MemAvailable of /proc/meminfo in bytes.
func readMem(proc string) (total, avail int64, err error) {
	f, err := os.Open(filepath.Join(proc, "meminfo"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() && found < 2 {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s/meminfo: %s: %w", proc, k, err)
		}
		if k == "MemTotal" {
			total = n << 10
		} else {
			avail = n << 10
		}
		found++
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("%s/meminfo: MemTotal or MemAvailable missing", proc)
	}
	return total, avail, sc.Err()
}
