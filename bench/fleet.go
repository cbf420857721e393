package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/fleetsim"
)

// fleetBench runs a hub process with a simulated fleet of nodes × perNode
// events (internal/fleetsim publishes what that many edges would) and times
// what a user of such a fleet does: the first page of all, a counted scan of
// all with a predicate, any, the node list with its totals, and how fast the
// hub takes in a heartbeat from every node. It adds its figures to figs.
func fleetBench(bin, dir string, nodes, perNode, queries int, figs *figures) error {
	hubHTTP, hubNATS := freePort(), freePort()
	hub, err := startHub(bin, filepath.Join(dir, "fleet-hub"), hubHTTP, hubNATS)
	if err != nil {
		return err
	}
	defer hub.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", hubHTTP)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", hubNATS))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	sim := fleetsim.Default(nodes)
	sim.Events, sim.Batch = perNode, min(perNode, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	total := nodes * perNode
	t0 := time.Now()
	last := time.Now()
	err = fleetsim.Publish(ctx, js, sim, func(n int) {
		if time.Since(last) > 5*time.Second {
			fmt.Printf("  fleet: %d of %d events published\n", n, total)
			last = time.Now()
		}
	})
	if err != nil {
		return err
	}
	if _, err := fleetsim.Heartbeats(nc, sim, time.Now(), nil, nil); err != nil {
		return err
	}
	var tot struct {
		Totals struct {
			Nodes    int   `json:"nodes"`
			Online   int   `json:"online"`
			Events   int64 `json:"events"`
			Buffered int64 `json:"buffered"`
		} `json:"totals"`
	}
	for {
		if err := getJSON(base+"/api/v1/nodes?limit=1", &tot); err != nil {
			return err
		}
		if tot.Totals.Events >= int64(total) && tot.Totals.Online == nodes {
			break
		}
		if time.Since(t0) > 30*time.Minute {
			return fmt.Errorf("fleet: the hub holds %d of %d events", tot.Totals.Events, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("fleet of %d nodes × %d events published and indexed in %.1f s\n", nodes, perNode, time.Since(t0).Seconds())
	figs.add("fleet_nodes", float64(nodes))

	timed := func(what string, q url.Values, check func([]byte) error) (float64, error) {
		var lat []float64
		for range queries {
			t := time.Now()
			b, err := getBody(base + "/api/v1/" + what + "?" + q.Encode())
			if err != nil {
				return 0, err
			}
			lat = append(lat, float64(time.Since(t).Microseconds())/1000)
			if check != nil {
				if err := check(b); err != nil {
					return 0, err
				}
			}
		}
		return median(lat), nil
	}
	holds := func(b []byte) error {
		if !strings.Contains(string(b), `"holds":true`) {
			return fmt.Errorf("fleet query did not hold: %.200s", b)
		}
		return nil
	}
	first, err := timed("query", url.Values{"pattern": {"all"}}, holds)
	if err != nil {
		return err
	}
	figs.add("fleet_all_first_page_p50_ms", first)
	anyP50, err := timed("query", url.Values{"pattern": {"any"}, "where": {"temp > 30"}}, holds)
	if err != nil {
		return err
	}
	figs.add("fleet_any_p50_ms", anyP50)
	list, err := timed("nodes", url.Values{"limit": {"50"}}, nil)
	if err != nil {
		return err
	}
	figs.add("fleet_nodes_list_ms", list)
	var scans []float64
	for range 3 {
		var res struct {
			Scanned int64 `json:"scanned"`
		}
		t := time.Now()
		q := url.Values{"pattern": {"all"}, "where": {`temp > 1000 && site == "north"`}, "count": {"true"}}
		if err := getJSON(base+"/api/v1/query?"+q.Encode(), &res); err != nil {
			return err
		}
		scans = append(scans, float64(res.Scanned)/time.Since(t).Seconds())
	}
	figs.add("fleet_all_scan_events_per_s", median(scans))

	// A heartbeat from every node at once, each with a backlog of 7: the rate
	// until the totals show all of them, against the arrival rate of a fleet
	// whose nodes send one every 5 s.
	t1 := time.Now()
	if _, err := fleetsim.Heartbeats(nc, sim, time.Now(), nil, func(int) int64 { return 7 }); err != nil {
		return err
	}
	for {
		if err := getJSON(base+"/api/v1/nodes?limit=1", &tot); err != nil {
			return err
		}
		if tot.Totals.Buffered == int64(7*nodes) {
			break
		}
		if time.Since(t1) > 5*time.Minute {
			return fmt.Errorf("heartbeats: totals show a backlog of %d, want %d", tot.Totals.Buffered, 7*nodes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hbRate := float64(nodes) / time.Since(t1).Seconds()
	figs.add("fleet_heartbeats_per_s", hbRate)
	fmt.Printf("fleet: all, first page p50 %.1f ms; any p50 %.1f ms; node list and totals p50 %.1f ms; all with a predicate, count: %.0f events/s scanned\n",
		first, anyP50, list, median(scans))
	fmt.Printf("fleet: heartbeats of %d nodes taken in at %.0f/s, %.0f× their arrival rate (one per node every 5 s)\n", nodes, hbRate, hbRate/(float64(nodes)/5))
	return nil
}
