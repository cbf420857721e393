// The aggregate figure: avg(temp) per node per minute over 1,000,000 events
// of four edges spread over a day, answered by the hub's
// GET /api/v1/aggregate, beside the same aggregate by hand in SQLite — a
// plain table (node, ts, data) and GROUP BY node, ts / 60e9 with
// avg(json_extract(data, '$.temp')) — in the same run, alternating rounds.

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/internal/sqlitex"
)

// aggNodes is how many edges the aggregate figure's events come from.
const aggNodes = 4

// aggregateBench fills a fresh hub with events from aggNodes edges, and
// times the aggregate over them against SQLite, rounds times each, in
// alternating rounds; it adds agg_events_per_s, peer_sqlite_agg_events_per_s
// and agg_ratio (medians) to figs.
func aggregateBench(bin, dir string, events, rounds int, figs *figures) error {
	dir = filepath.Join(dir, "aggregate")
	hubHTTP, hubNATS := freePort(), freePort()
	hub, err := startHub(bin, filepath.Join(dir, "hub"), hubHTTP, hubNATS)
	if err != nil {
		return err
	}
	defer hub.stop()
	hubURL := fmt.Sprintf("http://127.0.0.1:%d", hubHTTP)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	per := events / aggNodes
	total := per * aggNodes
	fmt.Printf("aggregate: avg(temp) by node per minute over %d events from %d edges over a day\n", total, aggNodes)
	peer, err := newSQLitePeer(filepath.Join(dir, "peer.db"))
	if err != nil {
		return err
	}
	defer peer.Close()
	var wg sync.WaitGroup
	errs := make(chan error, aggNodes)
	for n := range aggNodes {
		node := fmt.Sprintf("agg-%d", n)
		port := freePort()
		edge, err := startEdge(bin, node, filepath.Join(dir, node), port, hubNATS)
		if err != nil {
			return err
		}
		defer edge.stop()
		edgeURL := fmt.Sprintf("http://127.0.0.1:%d", port)
		// The edges' events interleave in time: node n takes every
		// aggNodes-th moment of the day.
		bodies := makeBodies(per, 2000, int64(n), start.Add(time.Duration(n)*24*time.Hour/time.Duration(total)), per)
		if err := peer.insert(node, bodies); err != nil {
			return fmt.Errorf("peer insert: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := postBodies(edgeURL, bodies); err != nil {
				errs <- fmt.Errorf("ingest at %s: %w", node, err)
				return
			}
			if err := waitEvents(hubURL, node, per, 10*time.Minute); err != nil {
				errs <- fmt.Errorf("node %s: %w", node, err)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	from, to := start, start.Add(24*time.Hour)
	q := url.Values{"pattern": {"all"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "window": {"1m"},
		"group_by": {"node"}, "aggregates": {"avg(temp)"}}
	var ours, peers []float64
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		var res struct {
			Windows []struct {
				Groups []json.RawMessage `json:"groups"`
			} `json:"windows"`
			Scanned int64 `json:"scanned"`
		}
		if err := getJSON(hubURL+"/api/v1/aggregate?"+q.Encode(), &res); err != nil {
			return err
		}
		rate := float64(total) / time.Since(t0).Seconds()
		if len(res.Windows) != 1440 || res.Scanned < int64(total) || len(res.Windows[0].Groups) != aggNodes {
			return fmt.Errorf("aggregate: %d windows, %d scanned, %d groups in the first", len(res.Windows), res.Scanned, len(res.Windows[0].Groups))
		}
		t0 = time.Now()
		groups, err := peer.aggregate(from, to)
		if err != nil {
			return fmt.Errorf("peer aggregate: %w", err)
		}
		prate := float64(total) / time.Since(t0).Seconds()
		if groups != 1440*aggNodes {
			return fmt.Errorf("peer aggregate: %d groups, want %d", groups, 1440*aggNodes)
		}
		ours, peers = append(ours, rate), append(peers, prate)
		fmt.Printf("  round %d: aggregate %9.0f events/s   sqlite GROUP BY with json_extract %9.0f events/s   ratio %.2f\n", r+1, rate, prate, rate/prate)
	}
	mo, mp := median(ours), median(peers)
	fmt.Printf("median: aggregate avg(temp) by node per minute: %.0f events/s; the same by hand in SQLite: %.0f events/s; ratio %.2f\n\n", mo, mp, mo/mp)
	figs.add("agg_events_per_s", mo)
	figs.add("peer_sqlite_agg_events_per_s", mp)
	figs.add("agg_ratio", mo/mp)
	return nil
}

// sqlitePeer is the aggregate by hand: one table of the events as JSON text.
type sqlitePeer struct{ db *sql.DB }

func newSQLitePeer(path string) (*sqlitePeer, error) {
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE events (node TEXT NOT NULL, ts INTEGER NOT NULL, data TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, err
	}
	return &sqlitePeer{db: db}, nil
}

func (p *sqlitePeer) Close() error { return p.db.Close() }

// insert stores the events of NDJSON bodies, with ts (Unix ns) taken from
// their ts field (Unix ms), as the edge takes it.
func (p *sqlitePeer) insert(node string, bodies [][]byte) error {
	tx, err := p.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO events (node, ts, data) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
			var ev struct {
				TS int64 `json:"ts"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return err
			}
			if _, err := st.Exec(node, ev.TS*int64(time.Millisecond), string(line)); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// aggregate runs the aggregate and reads every row; it returns the number of
// groups.
func (p *sqlitePeer) aggregate(from, to time.Time) (int, error) {
	rows, err := p.db.QueryContext(context.Background(), `SELECT node, ts / 60000000000 AS minute, avg(json_extract(data, '$.temp'))
		FROM events WHERE ts >= ? AND ts < ? GROUP BY node, minute`, from.UnixNano(), to.UnixNano())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var node string
		var minute int64
		var avg sql.NullFloat64
		if err := rows.Scan(&node, &minute, &avg); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}
