package pattern

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"single(a)", "multiple(a,b,a)", "all", "any", " ANY ", "single(", "multiple(a,,b)",
		"single(_x)", "all()", "single(é)", "multiple( a , b )", "single(\xff)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, nodes, err := parsePattern(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "pattern: ") {
				t.Fatalf("%q: error %v is not ErrInvalid with the field name", s, err)
			}
			return
		}
		switch kind {
		case Single:
			if len(nodes) != 1 {
				t.Fatalf("%q: single with %d nodes", s, len(nodes))
			}
		case Multiple:
			if len(nodes) == 0 || len(nodes) > MaxNamedNodes {
				t.Fatalf("%q: multiple with %d nodes", s, len(nodes))
			}
		case All, Any:
			if nodes != nil {
				t.Fatalf("%q: %v with nodes %q", s, kind, nodes)
			}
		default:
			t.Fatalf("%q: kind %v", s, kind)
		}
		seen := map[string]bool{}
		for _, n := range nodes {
			if err := stream.ValidateName("node", n); err != nil || seen[n] {
				t.Fatalf("%q: node %q: %v, repeated %v", s, n, err, seen[n])
			}
			seen[n] = true
		}
		k2, n2, err := parsePattern(canonical(kind, nodes))
		if err != nil || k2 != kind || !slices.Equal(n2, nodes) {
			t.Fatalf("%q: canonical form %q parses to %v %q %v", s, canonical(kind, nodes), k2, n2, err)
		}
	})
}

var fuzzEvents = []stream.Event{
	sampleEvent,
	{Node: "n", Epoch: "e", Seq: 1, Stream: "s"},
	{Node: "n", Epoch: "e", Seq: 2, Stream: "s", Data: json.RawMessage(`{"a":[1,{"b":null}],"temp":"x","gps":null}`)},
	{Node: "n", Epoch: "e", Seq: 3, Stream: "s", Data: json.RawMessage(`not json`)},
}

func FuzzCompileWhere(f *testing.F) {
	for _, s := range []string{"temp > 30", `site == "north" && gps.lat > 1`, "gps?.lat ?? 1 > 0", "(temp ?? 0) > 1",
		"let x = temp; x > 1", `any(tags, # == "a")`, `ts > date("2024-01-01T00:00:00Z")`, "seq % 2 == 0",
		"$env.temp > 1", `$env["a"] == nil`, "count > 1", "foo(1)", "now() > ts", "temp >", "1", "a.b.c?.d.e == nil",
		`filter(a, .b > 1) == []`, `deep["a"].b["c"] == 1`, "x[1:2] == nil", "len(1..1000) > 0", "nil",
		"count(a) > 1", "sum(a) > 0", `reduce(1..9, #acc + #, 0) > 1`, `sortBy(a, .t, "desc") == []`, `all(1..9, any(a, # == 1))`,
		`repeat("a", 3) == "aaa"`, `map(a, # * 2) == []`, `x in 1..5`, `groupBy(a, .k) == {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, where string) {
		q, err := Prepare(Request{Pattern: "all", Where: where})
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "where: ") {
				t.Fatalf("%q: error %v is not ErrInvalid with the field name", where, err)
			}
			return
		}
		for i := range fuzzEvents {
			ev := fuzzEvents[i]
			q.Matches(&ev)
		}
	})
}
