package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sample is one figure a component reports at scrape time: a counter or a
// gauge, with optional labels. The components keep their own figures (atomic
// counts, snapshots); a collector turns them into Prometheus metrics when
// /metrics is read.
type Sample struct {
	Name   string
	Help   string
	Type   prometheus.ValueType
	Labels [][2]string
	Value  float64
}

// sampleCollector is a prometheus.Collector over a function that returns the
// current samples. It is unchecked (it describes nothing up front) because the
// label values — nodes, counters, statuses — are only known at scrape time.
type sampleCollector func() []Sample

func (sampleCollector) Describe(chan<- *prometheus.Desc) {}

func (f sampleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range f() {
		names := make([]string, len(s.Labels))
		values := make([]string, len(s.Labels))
		for i, l := range s.Labels {
			names[i], values[i] = l[0], l[1]
		}
		desc := prometheus.NewDesc(s.Name, s.Help, names, nil)
		m, err := prometheus.NewConstMetric(desc, s.Type, s.Value, values...)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
}

// newRegistry returns a registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// LatencyBuckets are the histograms' buckets in seconds: 100 µs to about 100 s.
var LatencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 16)

// NewHistogram registers a latency histogram in seconds on reg.
func NewHistogram(reg *prometheus.Registry, name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: LatencyBuckets})
	reg.MustRegister(h)
	return h
}

// Collect has /metrics report what f returns at every scrape.
func (s *Server) Collect(f func() []Sample) { s.reg.MustRegister(sampleCollector(f)) }

// Registry returns the registry /metrics serves, for components to register
// their own collectors on.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second})
}
