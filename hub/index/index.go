// Package index is the hub's query index: a SQLite file that caches what the
// EDGE stream holds, in the shape queries read. Events are stored in chunks —
// runs of one node's events of one epoch and one stream, sorted by time and
// compressed — with an interval set of the seqs received per (node, epoch),
// which is what makes delivery exactly-once whatever JetStream redelivers. The
// per-epoch accounting (received, dropped, missing), the drop reports and the
// node registry's rows live beside them. The index implements pattern.Index:
// a query over any number of nodes is one read.
//
// One writer (the materializer, through Apply and the registry's flushes) and
// up to Readers concurrent reads.
package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/tributary-edge/tributary/internal/sqlitex"
)

// ErrIndex wraps every failure of the index.
var ErrIndex = errors.New("index")

// ErrFull is returned (wrapped, with ErrIndex) when a write fails because the
// disk is full. Nothing of the failed write is stored.
var ErrFull = errors.New("index: disk full")

// schemaVersion is the layout this build writes. The index is a cache of the
// stream: a file of another version is moved aside and rebuilt, never migrated.
const schemaVersion = 2

// Readers is the number of read connections: concurrent queries beyond it wait.
const Readers = 8

// Index is the hub's query index. Create it with New, then Open and Close.
type Index struct {
	// Path is the SQLite file; its directory is created if missing.
	Path string

	w       *sql.DB // one connection: the writer's transactions
	r       *sql.DB // readers
	made    bool    // the file was created by Open
	workers int
}

// New returns an index stored at path.
func New(path string) *Index { return &Index{Path: path, workers: max(runtime.GOMAXPROCS(0), 1)} }

// Open creates or opens the index file. A file written by another schema
// version is moved aside to <path>.old and a new one is made; Created then
// reports true, so that the caller rebuilds it from the stream.
func (x *Index) Open(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(x.Path), 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrIndex, err)
	}
	_, statErr := os.Stat(x.Path)
	x.made = errors.Is(statErr, os.ErrNotExist)
	if err := x.openFile(ctx); err != nil {
		return err
	}
	var v int
	if err := x.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		x.Close()
		return fmt.Errorf("%w: open %s: %v", ErrIndex, x.Path, err)
	}
	if v != schemaVersion && !x.made {
		x.Close()
		if err := moveAside(x.Path); err != nil {
			return fmt.Errorf("%w: move aside index of schema version %d: %v", ErrIndex, v, err)
		}
		x.made = true
		if err := x.openFile(ctx); err != nil {
			return err
		}
	}
	if _, err := x.w.ExecContext(ctx, schema+sqlitex.SetVersionSQL(schemaVersion)); err != nil {
		x.Close()
		return fmt.Errorf("%w: create schema: %v", ErrIndex, err)
	}
	return nil
}

func (x *Index) openFile(ctx context.Context) error {
	var err error
	if x.w, err = sqlitex.Open(x.Path, sqlitex.Options{}); err != nil {
		return fmt.Errorf("%w: %v", ErrIndex, err)
	}
	x.w.SetMaxOpenConns(1)
	if x.r, err = sqlitex.Open(x.Path, sqlitex.Options{ReadOnly: true}); err != nil {
		x.w.Close()
		return fmt.Errorf("%w: open readers: %v", ErrIndex, err)
	}
	x.r.SetMaxOpenConns(Readers)
	x.r.SetMaxIdleConns(Readers)
	return nil
}

// moveAside renames path and its -wal and -shm files to path.old*.
func moveAside(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, path+".old"+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Created reports whether Open made a new, empty index file, in which case the
// caller replays the stream from the start to fill it.
func (x *Index) Created() bool { return x.made }

// Close closes the index.
func (x *Index) Close() error {
	var errs []error
	if x.r != nil {
		errs = append(errs, x.r.Close())
		x.r = nil
	}
	if x.w != nil {
		errs = append(errs, x.w.Close())
		x.w = nil
	}
	return errors.Join(errs...)
}

// wrapWrite wraps a failed write, marking a full disk.
func wrapWrite(what string, err error) error {
	if sqlitex.IsFull(err) {
		return fmt.Errorf("%w: %s: %w: %v", ErrIndex, what, ErrFull, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrIndex, what, err)
}

// schema of the index. chunks hold the events (the columns before the data:
// reading a later column of a row walks the overflow pages of the earlier
// ones, and scans read the columns far more often than the data); seqs the intervals of seqs
// received per (node, epoch), disjoint and not adjacent; epochs and drops the
// per-epoch accounting behind the node list and the gaps; nodes the registry.
const schema = `
CREATE TABLE IF NOT EXISTS chunks (
	id        INTEGER PRIMARY KEY,
	node      TEXT    NOT NULL,
	epoch     TEXT    NOT NULL,
	stream    TEXT    NOT NULL,
	min_ts    INTEGER NOT NULL,
	max_ts    INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	received  INTEGER NOT NULL,
	codec     INTEGER NOT NULL,
	raw_bytes INTEGER NOT NULL,
	cols      BLOB,
	data      BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_time ON chunks (min_ts, max_ts, node, stream);
CREATE INDEX IF NOT EXISTS chunks_node ON chunks (node, min_ts, max_ts, stream);
CREATE INDEX IF NOT EXISTS chunks_received ON chunks (received);
CREATE TABLE IF NOT EXISTS seqs (
	node  TEXT    NOT NULL,
	epoch TEXT    NOT NULL,
	lo    INTEGER NOT NULL,
	hi    INTEGER NOT NULL,
	PRIMARY KEY (node, epoch, lo)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epochs (
	node       TEXT    NOT NULL,
	epoch      TEXT    NOT NULL,
	received   INTEGER NOT NULL DEFAULT 0,
	high_seq   INTEGER NOT NULL DEFAULT 0,
	dropped    INTEGER NOT NULL DEFAULT 0,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drops (
	node      TEXT    NOT NULL,
	epoch     TEXT    NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	reported  INTEGER NOT NULL,
	effective INTEGER NOT NULL,
	reason    TEXT    NOT NULL,
	PRIMARY KEY (node, epoch, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
	node        TEXT PRIMARY KEY,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	last_hb     INTEGER NOT NULL DEFAULT 0,
	epoch       TEXT    NOT NULL DEFAULT '',
	heartbeat   TEXT    NOT NULL DEFAULT '{}',
	bad_frames  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`
