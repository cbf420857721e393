package web

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one Prometheus sample. Type is "counter" or "gauge"; Labels are
// name/value pairs.
type Sample struct {
	Name   string
	Help   string
	Type   string
	Labels [][2]string
	Value  float64
}

// Collector returns the current samples of one component. It is called on every
// scrape and must be safe for concurrent use.
type Collector func() []Sample

// WriteMetrics writes the samples of every collector in the Prometheus text
// exposition format, grouping samples by name with one HELP and TYPE line each.
func WriteMetrics(w io.Writer, collectors []Collector) error {
	var all []Sample
	for _, c := range collectors {
		all = append(all, c()...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	bw := bufio.NewWriter(w)
	prev := ""
	for _, s := range all {
		if s.Name != prev {
			if s.Help != "" {
				fmt.Fprintf(bw, "# HELP %s %s\n", s.Name, strings.ReplaceAll(s.Help, "\n", " "))
			}
			if s.Type != "" {
				fmt.Fprintf(bw, "# TYPE %s %s\n", s.Name, s.Type)
			}
			prev = s.Name
		}
		bw.WriteString(s.Name)
		if len(s.Labels) > 0 {
			bw.WriteByte('{')
			for i, l := range s.Labels {
				if i > 0 {
					bw.WriteByte(',')
				}
				fmt.Fprintf(bw, "%s=%s", l[0], strconv.Quote(l[1]))
			}
			bw.WriteByte('}')
		}
		bw.WriteByte(' ')
		bw.WriteString(formatValue(s.Value))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
