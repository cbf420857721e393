package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The edge's memory as the kernel sees it, for the uplink figures.

// watch samples pid's resident set every step for up to d, or until done
// returns true, and returns the peak with the parts of the last reading.
func watch(pid int, d, step time.Duration, done func() bool) memFigure {
	var m memFigure
	end := time.Now().Add(d)
	for {
		rss, _, anon, file := procStatus(pid)
		if rss > m.RSS {
			m.RSS = rss
		}
		m.Anon, m.File = anon, file
		if (done != nil && done()) || time.Now().After(end) {
			return m
		}
		time.Sleep(step)
	}
}

// procStatus returns VmRSS, VmHWM, RssAnon and RssFile of pid in MiB.
func procStatus(pid int) (rss, hwm, anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return rss, hwm, anon, file
}

// qemuParts splits the resident set of an emulated agent by owner, from
// /proc/<pid>/smaps: the guest binary's pages, the emulator's binary, its code
// cache (the one writable and executable mapping), its malloc heap, and the
// other anonymous memory, most of it the guest's own (Go heap, stacks).
func qemuParts(pid int, guest string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err.Error()
	}
	abs, _ := filepath.Abs(guest)
	parts := map[string]float64{}
	kind := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			name := ""
			if len(f) >= 6 {
				name = f[5]
			}
			switch {
			case name == abs:
				kind = "guest binary"
			case strings.Contains(name, "qemu"):
				kind = "qemu binary"
			case name == "[heap]":
				kind = "qemu heap"
			case name == "" && f[1] == "rwxp":
				kind = "qemu code cache"
			case name == "" || name == "[stack]":
				kind = "guest and other anonymous"
			default:
				kind = "other files"
			}
			continue
		}
		if len(f) >= 2 && f[0] == "Rss:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			parts[kind] += kb / 1024
		}
	}
	var out []string
	for _, k := range []string{"guest binary", "guest and other anonymous", "qemu binary", "qemu heap", "qemu code cache", "other files"} {
		out = append(out, fmt.Sprintf("%s %.1f", k, parts[k]))
	}
	return strings.Join(out, ", ") + " MiB"
}

// resetPeak resets the kernel's peak resident set (VmHWM) of pid.
func resetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// parseBytes reads a byte count with an optional KiB, MiB or GiB suffix.
func parseBytes(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * u.n, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
