// Package buffer is the edge agent's store-and-forward buffer: one SQLite file
// that keeps events through crashes, power loss and hub outages until the hub
// has acknowledged them. It owns every buffer policy: the cap on its size on
// disk, drop-oldest and reject, max age, the leases that keep in-flight rows
// from being dropped and the budget of bytes in flight, and the drop and
// counter records that the forwarder reports.
package buffer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// Policy says what the buffer does when an append does not fit under MaxBytes.
type Policy string

// Buffer policies.
const (
	// DropOldest deletes the oldest events that are not in flight to make room,
	// and records each dropped range as a drop with reason buffer-full.
	DropOldest Policy = "drop-oldest"
	// Reject refuses the append with edge.ErrBufferFull and stores nothing.
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
// Open refuses files with a higher version and migrates the lower ones in
// prepareDB: version 2 added counter kinds to the counters table and a
// checksum to each event.
const schemaVersion = 2

// Buffer is the edge agent's store-and-forward buffer: one SQLite file (in WAL
// mode, committed with synchronous=FULL) holding the events not yet acknowledged
// by the hub, the drops not yet reported, the node's counter states and the read
// offsets of file sources. Every event gets the identity (epoch, seq): the epoch
// is made when the file is created and seq grows by one per event, across
// restarts, and is never reused.
//
// Create it with New, adjust the fields, then Open it; the fields must not
// change after Open. All methods are safe for concurrent use. The buffer relies on nothing being done at Close: a crash
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
	// CommitSeconds, when set, is told how long each successful append took
	// from its call to its commit (queueing and group commit included).
	CommitSeconds edge.Observer

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
	stats    edge.BufferStats
	epochStr atomic.Value // string

	// mu guards everything below: the one SQLite connection and the state that
	// mirrors the database.
	mu     sync.Mutex
	db     *sql.DB
	conn   *sql.Conn
	st     state
	lim    limits
	handed int64 // highest drop id PendingDrops has returned
	// leasedBytes is the data of the rows ReadLeased handed out and Delete has
	// not yet removed: the bytes in flight.
	leasedBytes int64
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

// New returns a buffer for the SQLite file at path with the defaults:
// MaxBytes DefaultMaxBytes, no MaxAge, DropOldest, the system clock and no logging.
func New(path string) *Buffer {
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
	b.db, b.conn, b.st, b.handed, b.leasedBytes = db, conn, st, 0, 0
	b.lease.Store(0)
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
// nil; other methods return edge.ErrBufferClosed.
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
	b.checkpoint(context.Background())
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

// edge.BufferStats returns the buffer's counts. It reads memory only and never waits on
// the database.
func (b *Buffer) Stats() edge.BufferStats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// publishStats copies the state into the edge.BufferStats snapshot and measures the files.
// The caller holds b.mu.
func (b *Buffer) publishStats() {
	var size int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(b.Path + suffix); err == nil {
			size += fi.Size()
		}
	}
	b.statsMu.Lock()
	b.stats = edge.BufferStats{
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
	_, _ = rand.Read(r[:]) // never fails: it crashes the program first
	return hex.EncodeToString(r[:])
}

// usable reports whether the buffer is open; the caller holds b.mu.
func (b *Buffer) usable() error {
	if b.conn == nil {
		return edge.ErrBufferClosed
	}
	return nil
}
