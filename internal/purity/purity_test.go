// Package purity checks the promise of the design's pure cores: they import
// no NATS, SQLite or HTTP framework, directly or through another package, so
// they can be tested and reasoned about without I/O.
package purity

import (
	"os/exec"
	"strings"
	"testing"
)

// pure are the packages that must stay free of adapters.
var pure = []string{
	"github.com/tributary-edge/tributary/stream",
	"github.com/tributary-edge/tributary/pattern",
	"github.com/tributary-edge/tributary/counters",
	"github.com/tributary-edge/tributary/edge",
	"github.com/tributary-edge/tributary/aggregate",
}

// adapters are the dependencies that only adapter packages may import.
var adapters = []string{"github.com/nats-io/", "github.com/mattn/go-sqlite3", "github.com/labstack/echo", "database/sql", "net/http"}

func TestPureCoresImportNoAdapter(t *testing.T) {
	for _, pkg := range pure {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed only %q; the check would prove nothing", pkg, deps)
		}
		for _, d := range deps {
			for _, a := range adapters {
				if d == a || strings.HasPrefix(d, a) {
					t.Errorf("%s is a pure core but depends on %s", pkg, d)
				}
			}
		}
	}
}

// TestEdgeAgentLinksNothingOfTheHub: the agent runs on small boards, and
// every package it links costs it resident memory (nearly all of a Go
// binary's pages are touched at start) and download size. Linking the hub's
// web API once took the agent from 12.9 to 18.0 MiB; pattern and expr alone,
// for three error values, were 4.3 MiB of it.
func TestEdgeAgentLinksNothingOfTheHub(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tributary-edge/tributary/cmd/edge-agent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps listed only %q; the check would prove nothing", deps)
	}
	hubSide := []string{"github.com/tributary-edge/tributary/hub", "github.com/tributary-edge/tributary/pattern",
		"github.com/tributary-edge/tributary/aggregate", "github.com/tributary-edge/tributary/web/hubapi",
		"github.com/nats-io/nats-server/", "github.com/expr-lang/", "github.com/DataDog/sketches-go"}
	for _, d := range deps {
		for _, h := range hubSide {
			if d == h || strings.HasPrefix(d, h+"/") || (strings.HasSuffix(h, "/") && strings.HasPrefix(d, h)) {
				t.Errorf("the edge agent links %s", d)
			}
		}
	}
}
