package buffer

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/edge"
)

// BenchmarkBufferAppend measures appended events per second, for appends of 1000
// events, of one event, and of one event from 64 goroutines at once (where group
// commit shares each fsync). Beside each it measures the peer figure in the same
// run: the plain way, one transaction per append on the same SQLite settings
// with nothing else (no cap, no stats, no grouping), and reports the ratio
// ours/plain.
//
//	go test ./edge/ -run '^$' -bench BufferAppend -benchtime 2s
func BenchmarkBufferAppend(b *testing.B) {
	cases := []struct {
		name           string
		batch, workers int
	}{
		{"1000-events", 1000, 1},
		{"1-event", 1, 1},
		{"1-event-64-concurrent", 1, 64},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := inputs("bench", c.batch, 100)
			buf := New(filepath.Join(b.TempDir(), "buf.db"))
			if err := buf.Open(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			ours := runAppends(b, b.N, c.workers, func() error {
				_, _, err := buf.Append(context.Background(), "bench", in)
				return err
			})
			b.StopTimer()
			plain, err := newPlainStore(filepath.Join(b.TempDir(), "plain.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer plain.db.Close()
			theirs := runAppends(b, b.N, c.workers, func() error { return plain.append(in) })
			perAppend := float64(c.batch)
			b.ReportMetric(perAppend*float64(b.N)/ours.Seconds(), "events/s")
			b.ReportMetric(perAppend*float64(b.N)/theirs.Seconds(), "plain-events/s")
			b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-plain")
		})
	}
}

// runAppends calls fn n times from workers goroutines and returns the time taken.
func runAppends(b *testing.B, n, workers int, fn func() error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// plainStore is the peer: an events table written one transaction per append.
type plainStore struct {
	db  *sql.DB
	mu  sync.Mutex
	seq int64
}

func newPlainStore(path string) (*plainStore, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, ts INTEGER NOT NULL, data BLOB NOT NULL)"); err != nil {
		return nil, err
	}
	return &plainStore{db: db}, nil
}

func (p *plainStore) append(in []edge.Input) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	tx, err := p.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare("INSERT INTO events (seq, stream, ts, data) VALUES (?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range in {
		p.seq++
		if _, err := stmt.Exec(p.seq, "bench", e.TS, []byte(e.Data)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
