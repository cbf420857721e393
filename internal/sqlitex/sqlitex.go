// Package sqlitex is the one place that knows how Tributary opens SQLite: the
// data source name with the settings every file needs (write-ahead log,
// synchronous=FULL, a busy timeout, immediate write transactions), the schema
// version check, the driver's error codes that mean "disk full", "busy" or
// "corrupt", and the skeleton of a write transaction. The edge's buffer and
// the hub's index both open their files through it.
package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Options say how a file is opened beyond the settings every file gets.
type Options struct {
	// ReadOnly opens connections that refuse writes (_query_only), for readers
	// next to one writer.
	ReadOnly bool
	// Exclusive keeps the file locked by this process for as long as it is
	// open, so a second process cannot use it; it needs no -shm file.
	Exclusive bool
	// IncrementalVacuum gives a new file auto_vacuum=incremental, so free pages
	// can be returned to the file system.
	IncrementalVacuum bool
	// AsIs opens the file without setting the journal mode or synchronous, to
	// read a file without changing it (salvaging a damaged one).
	AsIs bool
	// BusyTimeout is how long a statement waits for a lock; 0 means 5 s.
	BusyTimeout time.Duration
	// CacheKiB bounds each connection's page cache, in KiB; 0 leaves
	// SQLite's default (2,000 KiB).
	CacheKiB int
}

// DSN returns the go-sqlite3 data source name of path with o. The driver
// applies auto_vacuum before journal_mode, so a new file gets incremental
// vacuum before the write-ahead log is made.
func DSN(path string, o Options) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	params := []string{fmt.Sprintf("_busy_timeout=%d", busy.Milliseconds())}
	if !o.AsIs {
		params = append(params, "_journal_mode=WAL")
		if !o.ReadOnly {
			params = append(params, "_synchronous=FULL", "_txlock=immediate")
		}
	}
	if o.ReadOnly {
		params = append(params, "_query_only=true")
	}
	if o.IncrementalVacuum {
		params = append(params, "_auto_vacuum=incremental")
	}
	if o.Exclusive {
		params = append(params, "_locking_mode=EXCLUSIVE")
	}
	if o.CacheKiB > 0 {
		params = append(params, fmt.Sprintf("_cache_size=-%d", o.CacheKiB))
	}
	return "file:" + esc + "?" + strings.Join(params, "&")
}

// Open opens path with o. Like sql.Open it does not touch the file; the first
// statement does.
func Open(path string, o Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", DSN(path, o))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// ErrNewerSchema is returned (wrapped) by CheckVersion for a file written by a
// newer build.
var ErrNewerSchema = errors.New("schema is newer than this build")

// Querier is what reads need: *sql.DB, *sql.Conn and *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CheckVersion reads the file's user_version and returns it; a version above
// known is an error wrapping ErrNewerSchema that names both.
func CheckVersion(ctx context.Context, q Querier, known int) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v > known {
		return v, fmt.Errorf("%w: the file has schema version %d, this build knows %d", ErrNewerSchema, v, known)
	}
	return v, nil
}

// SetVersionSQL is the statement that records schema version v.
func SetVersionSQL(v int) string { return fmt.Sprintf("PRAGMA user_version = %d", v) }

// IsFull reports whether err is SQLite's "database or disk is full".
func IsFull(err error) bool { return hasCode(err, sqlite3.ErrFull) }

// IsBusy reports whether err means another connection or process holds the
// file's lock.
func IsBusy(err error) bool { return hasCode(err, sqlite3.ErrBusy, sqlite3.ErrLocked) }

// IsCorrupt reports whether err means the file is damaged or not a database.
func IsCorrupt(err error) bool { return hasCode(err, sqlite3.ErrCorrupt, sqlite3.ErrNotADB) }

func hasCode(err error, codes ...sqlite3.ErrNo) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code == c {
			return true
		}
	}
	return false
}

// Beginner starts transactions: *sql.DB and *sql.Conn.
type Beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Tx runs fn in a transaction and commits it when fn returns nil; otherwise,
// or when the commit fails, it rolls back and returns the error.
func Tx(ctx context.Context, b Beginner, fn func(*sql.Tx) error) error {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// EachRow runs query and calls fn for every row, stopping at its first error.
func EachRow(ctx context.Context, q Querier, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
