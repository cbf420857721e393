package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// ErrIndex wraps every failure of the hub's SQLite index.
var ErrIndex = errors.New("hub: index")

// ErrUnknownNode is returned for a node the hub has never heard of.
var ErrUnknownNode = pattern.ErrUnknownNode

const indexSchemaVersion = 1

// schema of the index. events is unique on (node, epoch, seq): that is what makes
// delivery exactly-once whatever JetStream redelivers. epochs and drops hold the
// per-epoch accounting behind /nodes and /gaps; nodes holds the registry.
const indexSchema = `
CREATE TABLE IF NOT EXISTS events (
	node     TEXT    NOT NULL,
	epoch    TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	stream   TEXT    NOT NULL,
	ts       INTEGER NOT NULL,
	received INTEGER NOT NULL,
	data     BLOB    NOT NULL,
	PRIMARY KEY (node, epoch, seq)
);
CREATE INDEX IF NOT EXISTS events_node_ts ON events (node, ts, epoch, seq);
CREATE INDEX IF NOT EXISTS events_node_stream_ts ON events (node, stream, ts, epoch, seq);
CREATE INDEX IF NOT EXISTS events_received ON events (received);
CREATE TABLE IF NOT EXISTS epochs (
	node       TEXT    NOT NULL,
	epoch      TEXT    NOT NULL,
	received   INTEGER NOT NULL DEFAULT 0,
	high_seq   INTEGER NOT NULL DEFAULT 0,
	dropped    INTEGER NOT NULL DEFAULT 0,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	PRIMARY KEY (node, epoch)
);
CREATE TABLE IF NOT EXISTS drops (
	node      TEXT    NOT NULL,
	epoch     TEXT    NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	reported  INTEGER NOT NULL,
	effective INTEGER NOT NULL,
	reason    TEXT    NOT NULL,
	PRIMARY KEY (node, epoch, first_seq)
);
CREATE TABLE IF NOT EXISTS nodes (
	node        TEXT PRIMARY KEY,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	last_hb     INTEGER NOT NULL DEFAULT 0,
	epoch       TEXT    NOT NULL DEFAULT '',
	heartbeat   TEXT    NOT NULL DEFAULT '{}',
	bad_frames  INTEGER NOT NULL DEFAULT 0
);
`

// Index is the hub's query index: a SQLite file that caches what JetStream holds.
// It implements pattern.Index. One writer (the materializer) and many readers.
type Index struct {
	Path string

	w    *sql.DB // one connection: the materializer's transactions
	r    *sql.DB // readers
	made bool    // the file was created by Open
}

// NewIndex returns an index stored at path.
func NewIndex(path string) *Index { return &Index{Path: path} }

// Open creates or opens the index file.
func (x *Index) Open(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(x.Path), 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrIndex, err)
	}
	_, statErr := os.Stat(x.Path)
	x.made = errors.Is(statErr, os.ErrNotExist)
	dsn := "file:" + url.PathEscape(x.Path) + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate"
	var err error
	if x.w, err = sql.Open("sqlite3", dsn); err != nil {
		return fmt.Errorf("%w: open: %v", ErrIndex, err)
	}
	x.w.SetMaxOpenConns(1)
	var version int
	if err := x.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		x.w.Close()
		return fmt.Errorf("%w: open %s: %v", ErrIndex, x.Path, err)
	}
	if version > indexSchemaVersion {
		x.w.Close()
		return fmt.Errorf("%w: %s has schema version %d, this build knows %d", ErrIndex, x.Path, version, indexSchemaVersion)
	}
	if _, err := x.w.ExecContext(ctx, indexSchema+fmt.Sprintf("PRAGMA user_version = %d;", indexSchemaVersion)); err != nil {
		x.w.Close()
		return fmt.Errorf("%w: create schema: %v", ErrIndex, err)
	}
	rdsn := "file:" + url.PathEscape(x.Path) + "?_journal_mode=WAL&_busy_timeout=5000&_query_only=true"
	if x.r, err = sql.Open("sqlite3", rdsn); err != nil {
		x.w.Close()
		return fmt.Errorf("%w: open readers: %v", ErrIndex, err)
	}
	x.r.SetMaxOpenConns(8)
	return nil
}

// Created reports whether Open made a new, empty index file, in which case the
// caller replays JetStream from the start to fill it.
func (x *Index) Created() bool { return x.made }

// Close closes the index.
func (x *Index) Close() error {
	var errs []error
	if x.r != nil {
		errs = append(errs, x.r.Close())
	}
	if x.w != nil {
		errs = append(errs, x.w.Close())
	}
	return errors.Join(errs...)
}

// Nodes returns every known node, sorted. It implements pattern.Index.
func (x *Index) Nodes(ctx context.Context) ([]string, error) {
	rows, err := x.r.QueryContext(ctx, "SELECT node FROM nodes ORDER BY node")
	if err != nil {
		return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%w: list nodes: %v", ErrIndex, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// HasNode reports whether the hub has heard of node. It implements pattern.Index.
func (x *Index) HasNode(ctx context.Context, node string) (bool, error) {
	var one int
	err := x.r.QueryRowContext(ctx, "SELECT 1 FROM nodes WHERE node = ?", node).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: look up node: %v", ErrIndex, err)
	}
	return true, nil
}

// Scan returns node's events in (ts, epoch, seq) order within the scan's range.
// It implements pattern.Index.
func (x *Index) Scan(ctx context.Context, s pattern.Scan) (pattern.Iterator, error) {
	var q strings.Builder
	args := []any{s.Node}
	q.WriteString("SELECT epoch, seq, stream, ts, received, data FROM events")
	if s.Stream != "" {
		q.WriteString(" INDEXED BY events_node_stream_ts WHERE node = ? AND stream = ?")
		args = append(args, s.Stream)
	} else {
		q.WriteString(" INDEXED BY events_node_ts WHERE node = ?")
	}
	if s.HasFrom {
		q.WriteString(" AND ts >= ?")
		args = append(args, s.From)
	}
	if s.HasTo {
		q.WriteString(" AND ts < ?")
		args = append(args, s.To)
	}
	if s.After != nil {
		// pattern.Execute passes only a cursor of this node (see pattern.Index).
		q.WriteString(" AND (ts, epoch, seq) > (?, ?, ?)")
		args = append(args, s.After.TS, s.After.Epoch, int64(s.After.Seq))
	}
	q.WriteString(" ORDER BY ts, epoch, seq")
	rows, err := x.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("%w: scan %s: %v", ErrIndex, s.Node, err)
	}
	return &scanIter{rows: rows, node: s.Node}, nil
}

type scanIter struct {
	rows *sql.Rows
	node string
	ev   stream.Event
	err  error
}

func (it *scanIter) Next() bool {
	if it.err != nil || !it.rows.Next() {
		return false
	}
	var seq int64
	var data []byte
	it.ev = stream.Event{Node: it.node}
	if err := it.rows.Scan(&it.ev.Epoch, &seq, &it.ev.Stream, &it.ev.TS, &it.ev.Received, &data); err != nil {
		it.err = fmt.Errorf("%w: scan row: %v", ErrIndex, err)
		return false
	}
	it.ev.Seq = uint64(seq)
	it.ev.Data = json.RawMessage(data)
	return true
}

func (it *scanIter) Event() *stream.Event { return &it.ev }

func (it *scanIter) Err() error {
	if it.err != nil {
		return it.err
	}
	if err := it.rows.Err(); err != nil {
		return fmt.Errorf("%w: scan: %v", ErrIndex, err)
	}
	return nil
}

func (it *scanIter) Close() error { return it.rows.Close() }

// isFull reports whether err is SQLite's disk-full error.
func isFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

// Prune deletes events received before cut (Unix ns) and returns how many. The
// per-epoch accounting keeps counting them as received.
func (x *Index) Prune(ctx context.Context, cut int64) (int64, error) {
	res, err := x.w.ExecContext(ctx, "DELETE FROM events WHERE received < ?", cut)
	if err != nil {
		return 0, x.wrapWrite("prune", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
