// Package edge is the edge agent: the SQLite store-and-forward Buffer that keeps
// events through crashes, power loss and hub outages, the Forwarder that
// publishes buffered batches to the hub's JetStream, the sources that take
// events in, and the glue that runs them together.
package edge

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
)

// ErrBufferFull is returned when an append does not fit in the buffer: under the
// reject policy when there is no room, and under either policy when the append
// alone is larger than the buffer may hold. Nothing of the append is stored.
var ErrBufferFull = errors.New("edge: buffer full")

// ErrDiskFull is returned when SQLite cannot grow its files (SQLITE_FULL: the
// disk is full). Nothing of the failed write is stored; the buffer keeps working
// and writes succeed again once space frees.
var ErrDiskFull = errors.New("edge: disk full")

// ErrClosed is returned by every method of a Buffer that is not open.
var ErrClosed = errors.New("edge: buffer closed")

// ErrInvalidData is returned (wrapped) by Append when an event's data is not a
// JSON object. Nothing of the append is stored.
var ErrInvalidData = errors.New("edge: event data is not a JSON object")

// Policy says what the buffer does when an append does not fit under MaxBytes.
type Policy string

// Buffer policies.
const (
	// DropOldest deletes the oldest events that are not in flight to make room,
	// and records each dropped range as a drop with reason buffer-full.
	DropOldest Policy = "drop-oldest"
	// Reject refuses the append with ErrBufferFull and stores nothing.
	Reject Policy = "reject"
)

// ParsePolicy returns the policy named s ("drop-oldest" or "reject"), or an
// error saying which names are valid.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case DropOldest, Reject:
		return p, nil
	}
	return "", fmt.Errorf("buffer policy %q is not one of %q, %q", s, DropOldest, Reject)
}

// DefaultMaxBytes is the default cap on the buffer's size on disk: 1 GiB.
const DefaultMaxBytes = 1 << 30

// MinMaxBytes is the smallest non-zero MaxBytes that Open accepts.
const MinMaxBytes = 1 << 20

// schemaVersion is the user_version of the database layout this build writes.
// Open refuses files with a higher version, and migrates lower ones.
const schemaVersion = 1

// Buffer is the edge agent's store-and-forward buffer: one SQLite file (in WAL
// mode, committed with synchronous=FULL) holding the events not yet acknowledged
// by the hub, the drops not yet reported, the node's counter states and the read
// offsets of file sources. Every event gets the identity (epoch, seq): the epoch
// is made when the file is created and seq grows by one per event, across
// restarts, and is never reused.
//
// Create it with NewBuffer, adjust the fields, then Open it. All methods are safe
// for concurrent use. The buffer relies on nothing being done at Close: a crash
// at any point loses no committed write.
type Buffer struct {
	// Path is the SQLite file; its directory is created if missing.
	Path string
	// MaxBytes caps the size on disk of the file and its write-ahead log; 0 means
	// no cap. When set it must be at least MinMaxBytes. Up to an eighth of it (at
	// most 64 MiB) is kept for the write-ahead log, and one append may not need
	// more than that.
	MaxBytes int64
	// MaxAge drops unsent events whose ingest time is older than this, recording
	// them as a drop with reason max-age; 0 means never. Events are expired in
	// seq order: one event with a later ingest time (after the clock was set back)
	// holds the ones behind it until it expires too.
	MaxAge time.Duration
	// Policy says what an append that does not fit does; the default is DropOldest.
	Policy Policy
	// Now is the clock for ingest times and MaxAge.
	Now func() time.Time
	// Logger receives drops, recoveries and maintenance at their levels.
	Logger zerolog.Logger

	// maxPageCount, when positive, limits the file to that many pages as if the
	// disk were full beyond it (tests).
	maxPageCount int64
	// tick is the period of the maintenance loop (tests may shorten it).
	tick time.Duration

	log      zerolog.Logger
	lease    atomic.Uint64
	queue    appendQueue
	stop     chan struct{}
	loops    sync.WaitGroup
	statsMu  sync.Mutex
	stats    Stats
	epochStr atomic.Value // string

	// mu guards everything below: the one SQLite connection and the state that
	// mirrors the database.
	mu     sync.Mutex
	db     *sql.DB
	conn   *sql.Conn
	st     state
	lim    limits
	handed int64 // highest drop id PendingDrops has returned
}

// state is the buffer's meta row, kept in memory and written back in every
// transaction that changes it.
type state struct {
	epoch         string
	lastSeq       uint64
	ackedSeq      uint64
	buffered      int64
	bufferedBytes int64
	dropped       uint64
}

// Stats is a snapshot of the buffer's counts.
type Stats struct {
	// Buffered is the number of events held (not yet acknowledged or dropped).
	Buffered int64
	// BufferedBytes is the sum of the held events' data sizes.
	BufferedBytes int64
	// FileBytes is the size on disk of the database and its write-ahead log.
	FileBytes int64
	// LastSeq is the seq of the newest event ever appended in this epoch.
	LastSeq uint64
	// AckedSeq is the highest seq at and below which every seq is acknowledged
	// (deleted) or dropped.
	AckedSeq uint64
	// Dropped counts every event this buffer ever dropped, under any reason.
	Dropped uint64
}

// NewBuffer returns a buffer for the SQLite file at path with the defaults:
// MaxBytes DefaultMaxBytes, no MaxAge, DropOldest, the system clock and no logging.
func NewBuffer(path string) *Buffer {
	return &Buffer{
		Path:     path,
		MaxBytes: DefaultMaxBytes,
		Policy:   DropOldest,
		Now:      time.Now,
		Logger:   zerolog.Nop(),
	}
}

// Open validates the fields, opens or creates the database (moving a corrupt or
// unreadable one aside, see recover), applies MaxBytes and MaxAge, and starts
// the writer and maintenance goroutines. It returns an error when the file is in
// use by another process, belongs to a newer version, or cannot be opened.
func (b *Buffer) Open(ctx context.Context) error {
	if err := b.validate(); err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	b.log = b.Logger.With().Str("component", "buffer").Logger()
	if err := os.MkdirAll(filepath.Dir(b.Path), 0o755); err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	start := time.Now()
	db, conn, st, err := openDB(ctx, b.Path, b.newEpoch)
	if errors.Is(err, errCorrupt) {
		db, conn, st, err = b.recover(ctx, err)
	}
	if err != nil {
		return fmt.Errorf("open buffer %s: %w", b.Path, err)
	}
	b.mu.Lock()
	b.db, b.conn, b.st, b.handed = db, conn, st, 0
	b.epochStr.Store(st.epoch)
	err = b.applyLimits(ctx)
	if err == nil {
		err = b.shrinkToCap(ctx)
	}
	if err != nil {
		b.closeDB()
		b.mu.Unlock()
		return fmt.Errorf("open buffer %s: %w", b.Path, err)
	}
	b.publishStats()
	b.mu.Unlock()
	b.log.Info().Str("path", b.Path).Str("epoch", st.epoch).Uint64("last_seq", st.lastSeq).
		Int64("buffered", st.buffered).Dur("took", time.Since(start)).Msg("buffer open")

	if b.MaxAge > 0 {
		if err := b.expire(ctx); err != nil {
			b.log.Error().Err(err).Msg("expire old events")
		}
	}
	b.stop = make(chan struct{})
	b.queue.open(b.lim.groupBytes)
	b.loops.Add(2)
	go b.writeLoop()
	go b.maintainLoop()
	return nil
}

func (b *Buffer) validate() error {
	if b.Path == "" {
		return errors.New("path is empty")
	}
	if b.MaxBytes < 0 || (b.MaxBytes > 0 && b.MaxBytes < MinMaxBytes) {
		return fmt.Errorf("max bytes %d: want 0 (no cap) or at least %d", b.MaxBytes, MinMaxBytes)
	}
	if b.MaxAge < 0 {
		return fmt.Errorf("max age %v is negative", b.MaxAge)
	}
	if b.Policy == "" {
		b.Policy = DropOldest
	}
	if _, err := ParsePolicy(string(b.Policy)); err != nil {
		return err
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.tick <= 0 {
		b.tick = maintainPeriod(b.MaxAge)
	}
	if b.db != nil {
		return errors.New("already open")
	}
	return nil
}

// Close stops the goroutines, finishes the appends already queued, checkpoints
// the write-ahead log into the database file and closes it. Later calls return
// nil; other methods return ErrClosed.
func (b *Buffer) Close() error {
	if !b.queue.close() {
		return nil
	}
	close(b.stop)
	b.loops.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	if _, err := b.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.log.Warn().Err(err).Msg("checkpoint at close")
	}
	err := b.closeDB()
	b.log.Info().Msg("buffer closed")
	return err
}

func (b *Buffer) closeDB() error {
	var err error
	if b.conn != nil {
		err = b.conn.Close()
	}
	if b.db != nil {
		err = errors.Join(err, b.db.Close())
	}
	b.conn, b.db = nil, nil
	if err != nil {
		return fmt.Errorf("close buffer: %w", err)
	}
	return nil
}

// Epoch returns the random ID made when the database was created; it is empty
// before Open.
func (b *Buffer) Epoch() string {
	s, _ := b.epochStr.Load().(string)
	return s
}

// Stats returns the buffer's counts. It reads memory only and never waits on
// the database.
func (b *Buffer) Stats() Stats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// publishStats copies the state into the Stats snapshot and measures the files.
// The caller holds b.mu.
func (b *Buffer) publishStats() {
	var size int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(b.Path + suffix); err == nil {
			size += fi.Size()
		}
	}
	b.statsMu.Lock()
	b.stats = Stats{
		Buffered:      b.st.buffered,
		BufferedBytes: b.st.bufferedBytes,
		FileBytes:     size,
		LastSeq:       b.st.lastSeq,
		AckedSeq:      b.st.ackedSeq,
		Dropped:       b.st.dropped,
	}
	b.statsMu.Unlock()
}

func (b *Buffer) newEpoch() string {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never on supported systems
	}
	return hex.EncodeToString(r[:])
}

// dsn returns the go-sqlite3 data source name of path. auto_vacuum comes before
// journal_mode in the driver's order, so a new file gets incremental vacuum; the
// exclusive locking mode keeps a second agent off the file and needs no -shm file.
func dsn(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate" +
		"&_auto_vacuum=incremental&_locking_mode=EXCLUSIVE"
}

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
	data   BLOB    NOT NULL
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
	sent_version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE offsets (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
`

// errCorrupt marks an Open failure that means the file is damaged or not a
// database at all, as opposed to one that is busy or cannot be reached.
var errCorrupt = errors.New("corrupt database")

// openDB opens path, checks it, creates the schema in a new file and loads the
// meta row. Errors that mean the file is damaged wrap errCorrupt; on every error
// nothing is left open.
func openDB(ctx context.Context, path string, newEpoch func() string) (*sql.DB, *sql.Conn, state, error) {
	db, err := sql.Open("sqlite3", dsn(path))
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
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
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
	case version > schemaVersion:
		return conn, state{}, fmt.Errorf("the buffer has schema version %d, newer than this build's %d", version, schemaVersion)
	}
	st, err := loadState(ctx, conn)
	if err != nil {
		return conn, state{}, err
	}
	return conn, st, nil
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
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
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
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			return fmt.Errorf("%w: %w", errCorrupt, err)
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("the file is in use by another process: %w", err)
		}
	}
	return err
}

// mapFull turns SQLite's "database or disk is full" into ErrDiskFull.
func mapFull(err error) error {
	if isFull(err) && !errors.Is(err, ErrDiskFull) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

func isFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

// usable reports whether the buffer is open; the caller holds b.mu.
func (b *Buffer) usable() error {
	if b.conn == nil {
		return ErrClosed
	}
	return nil
}
