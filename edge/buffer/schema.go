package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"
)

// dsnOptions are the buffer's settings on top of sqlitex's: a new file gets
// incremental vacuum, the exclusive locking mode keeps a second agent off
// the file, and the page cache is held to cacheKiB.
var dsnOptions = sqlitex.Options{Exclusive: true, IncrementalVacuum: true, CacheKiB: cacheKiB}

// cacheKiB bounds the buffer's SQLite page cache. The buffer reads and
// deletes in seq order, so pages are seldom read twice: docs/memory.md has
// what a smaller cache saved and cost.
const cacheKiB = 512

const schema = `
CREATE TABLE meta (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	epoch          TEXT    NOT NULL,
	created        INTEGER NOT NULL,
	last_seq       INTEGER NOT NULL,
	acked_seq      INTEGER NOT NULL,
	buffered       INTEGER NOT NULL,
	buffered_bytes INTEGER NOT NULL,
	dropped        INTEGER NOT NULL
);
CREATE TABLE events (
	seq    INTEGER PRIMARY KEY,
	stream TEXT    NOT NULL,
	ts     INTEGER NOT NULL,
	ingest INTEGER NOT NULL,
	data   BLOB    NOT NULL,
	crc    INTEGER
);
CREATE TABLE drops (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	epoch     TEXT    NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	reason    TEXT    NOT NULL,
	sent      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE counters (
	name         TEXT    PRIMARY KEY,
	p            INTEGER NOT NULL,
	n            INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	sent_version INTEGER NOT NULL,
	` + counterKindColumns + `
) WITHOUT ROWID;
CREATE TABLE offsets (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
`

// counterKindColumns are the columns that schema version 2 added to counters,
// in the order migrateV1 adds them, so that new and migrated files have one
// layout. kind is "sum", "max", "min" or "last"; value is a register's value,
// NULL for a sum or a register never set; wall and logical are a last
// register's HLC stamp, the last the node issued for the counter.
const counterKindColumns = `kind    TEXT    NOT NULL DEFAULT 'sum',
	value   REAL,
	wall    INTEGER NOT NULL DEFAULT 0,
	logical INTEGER NOT NULL DEFAULT 0`

// errCorrupt marks an Open failure that means the file is damaged or not a
// database at all, as opposed to one that is busy or cannot be reached.
var errCorrupt = errors.New("corrupt database")

// openDB opens path, checks it, creates the schema in a new file and loads the
// meta row. Errors that mean the file is damaged wrap errCorrupt; on every error
// nothing is left open.
func openDB(ctx context.Context, path string, newEpoch func() string) (*sql.DB, *sql.Conn, state, error) {
	db, err := sqlitex.Open(path, dsnOptions)
	if err != nil {
		return nil, nil, state{}, err
	}
	conn, st, err := prepareDB(ctx, db, newEpoch)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		_ = db.Close()
		return nil, nil, state{}, classify(err)
	}
	return db, conn, st, nil
}

func prepareDB(ctx context.Context, db *sql.DB, newEpoch func() string) (*sql.Conn, state, error) {
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, state{}, err
	}
	version, err := sqlitex.CheckVersion(ctx, conn, schemaVersion)
	if err != nil {
		return conn, state{}, err
	}
	if err := quickCheck(ctx, conn); err != nil {
		return conn, state{}, err
	}
	switch {
	case version == 0:
		var tables int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
			return conn, state{}, err
		}
		if tables > 0 {
			return conn, state{}, errors.New("the file is an SQLite database but not a buffer; move it away or choose another data directory")
		}
		if err := createSchema(ctx, conn, newEpoch()); err != nil {
			return conn, state{}, err
		}
	case version < schemaVersion:
		if err := migrate(ctx, conn, version); err != nil {
			return conn, state{}, fmt.Errorf("migrate the buffer from schema version %d: %w", version, err)
		}
	}
	st, err := loadState(ctx, conn)
	if err != nil {
		return conn, state{}, err
	}
	return conn, st, nil
}

// migrate brings a file of an older schema version to this one, in one
// transaction. Version 2 adds counter kinds (existing counters are sums) and
// each event's checksum (rows written before it have none and are checked for
// being a JSON object only).
func migrate(ctx context.Context, conn *sql.Conn, from int) error {
	return sqlitex.Tx(ctx, conn, func(tx *sql.Tx) error {
		if from < 2 {
			for _, col := range strings.Split(counterKindColumns, ",") {
				if _, err := tx.ExecContext(ctx, "ALTER TABLE counters ADD COLUMN "+strings.TrimSpace(col)); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "ALTER TABLE events ADD COLUMN crc INTEGER"); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, sqlitex.SetVersionSQL(schemaVersion))
		return err
	})
}

func quickCheck(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: quick_check: %s", errCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

func createSchema(ctx context.Context, conn *sql.Conn, epoch string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (id, epoch, created, last_seq, acked_seq, buffered, buffered_bytes, dropped)
		VALUES (1, ?, ?, 0, 0, 0, 0, 0)`, epoch, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqlitex.SetVersionSQL(schemaVersion)); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return tx.Commit()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadState(ctx context.Context, q querier) (state, error) {
	var st state
	var last, acked, dropped int64
	err := q.QueryRowContext(ctx, `SELECT epoch, last_seq, acked_seq, buffered, buffered_bytes, dropped FROM meta WHERE id = 1`).
		Scan(&st.epoch, &last, &acked, &st.buffered, &st.bufferedBytes, &dropped)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("%w: the meta row is missing", errCorrupt)
	}
	if err != nil {
		return st, fmt.Errorf("read meta: %w", err)
	}
	if last < 0 || acked < 0 || acked > last || dropped < 0 || st.buffered < 0 || st.epoch == "" {
		return st, fmt.Errorf("%w: meta row is inconsistent (last %d, acked %d, buffered %d)", errCorrupt, last, acked, st.buffered)
	}
	st.lastSeq, st.ackedSeq, st.dropped = uint64(last), uint64(acked), uint64(dropped)
	return st, nil
}

// saveState writes st to the meta row inside tx.
func saveState(ctx context.Context, tx *sql.Tx, st state) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET last_seq = ?, acked_seq = ?, buffered = ?, buffered_bytes = ?, dropped = ? WHERE id = 1`,
		int64(st.lastSeq), int64(st.ackedSeq), st.buffered, st.bufferedBytes, int64(st.dropped))
	return err
}

// classify wraps errors that mean the file is damaged with errCorrupt, and says
// what a busy file means.
func classify(err error) error {
	switch {
	case sqlitex.IsCorrupt(err):
		return fmt.Errorf("%w: %w", errCorrupt, err)
	case sqlitex.IsBusy(err):
		return fmt.Errorf("the file is in use by another process: %w", err)
	}
	return err
}

// mapFull turns SQLite's "database or disk is full" into edge.ErrDiskFull.
func mapFull(err error) error {
	if sqlitex.IsFull(err) && !errors.Is(err, edge.ErrDiskFull) {
		return fmt.Errorf("%w: %w", edge.ErrDiskFull, err)
	}
	return err
}

// writeTx runs fn in one write transaction on the buffer's connection and
// maps a full disk to edge.ErrDiskFull. The caller holds b.mu.
func (b *Buffer) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return mapFull(sqlitex.Tx(ctx, b.conn, fn))
}
