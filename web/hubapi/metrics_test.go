package hubapi

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/web"
)

// TestCounterSamples checks each kind's series: the info gauge with the kind,
// the value under the name as before kinds, only when there is one, and the
// time of a last counter's newest write.
func TestCounterSamples(t *testing.T) {
	view := func(k counters.Kind, nodes map[string]counters.Register) counters.View {
		v, err := counters.Fleet(k, nodes)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	info := func(name, kind string) web.Sample {
		return web.Sample{Name: "tributary_counter_info", Type: prometheus.GaugeValue, Labels: [][2]string{{"name", name}, {"kind", kind}}, Value: 1}
	}
	value := func(name string, v float64) web.Sample {
		return web.Sample{Name: "tributary_counter_value", Type: prometheus.GaugeValue, Labels: [][2]string{{"name", name}}, Value: v}
	}
	tests := []struct {
		name string
		c    counters.Counter
		want []web.Sample
	}{
		{"sum", counters.Counter{Name: "doors", View: view(counters.KindSum, map[string]counters.Register{"a": {PN: counters.PN{P: 5, N: 7}}})},
			[]web.Sample{info("doors", "sum"), value("doors", -2)}},
		{"max", counters.Counter{Name: "p", View: view(counters.KindMax, map[string]counters.Register{"a": {Kind: counters.KindMax, Value: 8.5, Set: true}})},
			[]web.Sample{info("p", "max"), value("p", 8.5)}},
		{"min never set", counters.Counter{Name: "b", View: view(counters.KindMin, map[string]counters.Register{"a": {Kind: counters.KindMin}})},
			[]web.Sample{info("b", "min")}},
		{"last", counters.Counter{Name: "fw", View: view(counters.KindLast, map[string]counters.Register{"a": {Kind: counters.KindLast, Value: 3, Set: true, Stamp: counters.HLC{Wall: 1_700_000_000_500}}})},
			[]web.Sample{info("fw", "last"), value("fw", 3), {Name: "tributary_counter_updated_timestamp_seconds", Type: prometheus.GaugeValue, Labels: [][2]string{{"name", "fw"}}, Value: 1_700_000_000.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := counterSamples(tt.c)
			for i := range got {
				got[i].Help = ""
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("samples\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
