package e2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads a process's /metrics and parses it as Prometheus does.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d", base, code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s/metrics does not parse: %v\n%s", base, err, tail(string(body), 2000))
	}
	return fams
}

// histogramCount returns a histogram's sample count summed over its series.
func histogramCount(t *testing.T, fams map[string]*dto.MetricFamily, name string) uint64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no histogram %s", name)
	}
	var n uint64
	for _, m := range f.Metric {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// TestMetricsOfRealProcesses scrapes a running hub and edge agent: both serve
// the Go runtime and process collectors, their own figures under the names
// they had, and the histograms of edge commits, hub queries and delivery.
func TestMetricsOfRealProcesses(t *testing.T) {
	hub := startHub(t, t.TempDir())
	edge := startEdge(t, "metrics-a", t.TempDir(), hub.natsURL())
	for i := 0; i < 3; i++ {
		if _, ok := edge.ingest("m", []map[string]any{{"i": i}, {"i": i + 100}}); !ok {
			t.Fatalf("ingest %d was not acknowledged", i)
		}
	}
	waitFor(t, "six events at the hub", 30*time.Second, func() bool {
		return hub.count(t, map[string]string{"pattern": "single(metrics-a)"}) == 6
	})
	for _, p := range []string{"single(metrics-a)", "all", "any"} {
		hub.query(t, map[string]string{"pattern": p})
	}

	ef := scrape(t, edge.url())
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tributary_edge_buffered_events", "tributary_edge_sent_events_total"} {
		if ef[name] == nil {
			t.Errorf("edge metrics lack %s", name)
		}
	}
	if n := histogramCount(t, ef, "tributary_edge_commit_seconds"); n != 3 {
		t.Errorf("edge commit histogram counted %d commits, want the 3 ingests", n)
	}

	hf := scrape(t, hub.url())
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tributary_hub_events_total", "tributary_node_events"} {
		if hf[name] == nil {
			t.Errorf("hub metrics lack %s", name)
		}
	}
	if got := hf["tributary_hub_events_total"].Metric[0].GetCounter().GetValue(); got != 6 {
		t.Errorf("tributary_hub_events_total %v, want 6", got)
	}
	// The count polls above are queries too; three kinds were asked at least once.
	if n := histogramCount(t, hf, "tributary_hub_query_seconds"); n < 4 {
		t.Errorf("query histogram counted %d queries, want at least 4", n)
	}
	kinds := map[string]bool{}
	for _, m := range hf["tributary_hub_query_seconds"].Metric {
		for _, l := range m.Label {
			kinds[l.GetName()+"="+l.GetValue()] = true
		}
	}
	for _, k := range []string{"single", "all", "any"} {
		if !kinds["pattern="+k] {
			t.Errorf("query histogram has no series for pattern %s: %v", k, kinds)
		}
	}
	if n := histogramCount(t, hf, "tributary_hub_delivery_seconds"); n != 6 {
		t.Errorf("delivery histogram counted %d events, want 6", n)
	}
}
