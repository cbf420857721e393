package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/internal/sqlitex"
)

// stagesBench measures two stages of the pipeline alone, so that the
// bottleneck shows: the edge's ingest (HTTP, parse, fsync'd SQLite commit)
// with no hub to send to, and then its forwarder draining that backlog into
// a bare JetStream server with the hub's EDGE stream (sync always) and no
// materializer. The materializer alone is the index rebuild of the e2e part,
// the scan its scan rate.
func stagesBench(bin, dir string, n int, figs *figures) error {
	natsPort, edgeHTTP := freePort(), freePort()
	edge, err := startEdge(bin, "stages", filepath.Join(dir, "stages-edge"), edgeHTTP, natsPort)
	if err != nil {
		return err
	}
	defer edge.stop()
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgeHTTP)
	bodies := makeBodies(n, 2000, 99, benchStart, n)
	t0 := time.Now()
	if err := postAll(edgeURL, bodies); err != nil {
		return err
	}
	ingest := float64(n) / time.Since(t0).Seconds()
	figs.add("stage_edge_ingest_events_per_s", ingest)

	s, err := startPeerServer(filepath.Join(dir, "stages-js"), natsPort, true)
	if err != nil {
		return fmt.Errorf("stages: %w", err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), natsjs.StreamConfig(0, 1)); err != nil {
		return err
	}
	var st struct {
		HubConnected bool  `json:"hub_connected"`
		Buffered     int64 `json:"buffered"`
	}
	for !st.HubConnected {
		if err := getJSON(edgeURL+"/api/v1/status", &st); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	t0 = time.Now()
	for st.Buffered > 0 {
		if err := getJSON(edgeURL+"/api/v1/status", &st); err != nil {
			return err
		}
		if time.Since(t0) > 10*time.Minute {
			return fmt.Errorf("stages: %d events still buffered after 10 minutes", st.Buffered)
		}
		time.Sleep(5 * time.Millisecond)
	}
	forward := float64(n) / time.Since(t0).Seconds()
	figs.add("stage_forwarder_events_per_s", forward)
	fmt.Printf("\nstages alone: edge ingest (HTTP, parse, fsync'd commit) %.0f events/s; forwarder into JetStream (sync always) %.0f events/s\n", ingest, forward)
	if v, ok := figs.vals["rebuild_events_per_s"]; ok {
		fmt.Printf("              hub materializer (index rebuild) %.0f events/s; scan with a predicate %.0f events/s\n", v, figs.vals["scan_events_per_s"])
	}
	return nil
}

// postAll posts every body to the edge's ingest, four at a time.
func postAll(edgeURL string, bodies [][]byte) error {
	_, err := postBodies(edgeURL, bodies)
	return err
}

// sqliteJSONScan is the scan peer: the same kind of events in a plain SQLite
// table (ts, data) as a user would keep them, counted with json_extract in
// the WHERE clause, as the bench's own scan does. It returns the median
// events per second of three counts.
func sqliteJSONScan(path string, total int, start time.Time, spread int) (float64, error) {
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		return 0, err
	}
	defer func() { db.Close(); os.Remove(path); os.Remove(path + "-wal"); os.Remove(path + "-shm") }()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE events (ts INTEGER NOT NULL, data TEXT NOT NULL)"); err != nil {
		return 0, err
	}
	const per = 20_000
	for done := 0; done < total; done += per {
		k := min(per, total-done)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO events (ts, data) VALUES (?, ?)")
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		for _, body := range makeBodies(k, k, int64(done), start.Add(dayShare(done, spread)), spread) {
			for i, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
				if _, err := stmt.ExecContext(ctx, int64(done+i), line); err != nil {
					tx.Rollback()
					return 0, err
				}
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	var rates []float64
	for range 3 {
		t0 := time.Now()
		var n int64
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE json_extract(data, '$.temp') > 1000 AND json_extract(data, '$.site') = 'north'`).Scan(&n)
		if err != nil {
			return 0, err
		}
		rates = append(rates, float64(total)/time.Since(t0).Seconds())
	}
	return median(rates), nil
}

// duBytes is the space the files under dir take.
//
// The store guard's ballast (hub.BallastFile) is left out: it is a fixed
// reserve, not what the hub keeps per event.
func duBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && path != filepath.Join(dir, hub.BallastFile) {
			n += fi.Size()
		}
		return nil
	})
	return n
}
