package buffer

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/sqlitex"
	"github.com/tributary-edge/tributary/stream"
)

// testClock is a wall clock a test sets by hand, forwards or backwards.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(ms int64) *testClock { return &testClock{t: time.UnixMilli(ms)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(ms int64) {
	c.mu.Lock()
	c.t = time.UnixMilli(ms)
	c.mu.Unlock()
}

func withClock(c *testClock) func(*Buffer) { return func(b *Buffer) { b.Now = c.Now } }

func TestBufferCounterKinds(t *testing.T) {
	type step struct {
		v    float64
		want counters.Register
	}
	reg := func(k counters.Kind, v float64) counters.Register {
		return counters.Register{Kind: k, Value: v, Set: true}
	}
	tests := []struct {
		name  string
		kind  counters.Kind
		steps []step
	}{
		{"max", counters.KindMax, []step{{3, reg(counters.KindMax, 3)}, {1, reg(counters.KindMax, 3)}, {7.5, reg(counters.KindMax, 7.5)}, {-1e300, reg(counters.KindMax, 7.5)}}},
		{"min", counters.KindMin, []step{{3, reg(counters.KindMin, 3)}, {5, reg(counters.KindMin, 3)}, {-2.25, reg(counters.KindMin, -2.25)}, {math.Copysign(0, -1), reg(counters.KindMin, -2.25)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openBuffer(t, dir)
			for _, s := range tt.steps {
				before, _ := b.PendingCounters(t.Context())
				if err := b.MarkCountersSent(t.Context(), before); err != nil {
					t.Fatal(err)
				}
				prev, _, _ := b.Counter(t.Context(), "c")
				got, err := b.Set(t.Context(), "c", tt.kind, s.v)
				if err != nil || got != s.want {
					t.Fatalf("Set(%v) = %+v, %v; want %+v", s.v, got, err, s.want)
				}
				// Only a write that changes the state is sent again.
				pending, _ := b.PendingCounters(t.Context())
				if changed := got != prev; changed != (len(pending) == 1) {
					t.Fatalf("after Set(%v) from %+v: pending %+v", s.v, prev, pending)
				}
			}
			last := tt.steps[len(tt.steps)-1].want
			b.Close()
			b = openBuffer(t, dir)
			if r, ok, err := b.Counter(t.Context(), "c"); err != nil || !ok || r != last {
				t.Fatalf("after reopen: %+v %v %v; want %+v", r, ok, err, last)
			}
		})
	}

	t.Run("last", func(t *testing.T) {
		clock := newTestClock(1_700_000_000_000)
		b := openBuffer(t, t.TempDir(), withClock(clock))
		for i, want := range []counters.HLC{{Wall: 1_700_000_000_000}, {Wall: 1_700_000_000_000, Logical: 1}} {
			got, err := b.Set(t.Context(), "fw", counters.KindLast, float64(10+i))
			if err != nil || got != (counters.Register{Kind: counters.KindLast, Value: float64(10 + i), Set: true, Stamp: want}) {
				t.Fatalf("write %d = %+v, %v; want value %d at %v", i, got, err, 10+i, want)
			}
		}
		// The same value again is a new write with a new stamp, and is sent.
		b.MarkCountersSent(t.Context(), mustPending(t, b, 1))
		clock.Set(1_700_000_000_005)
		if got, _ := b.Set(t.Context(), "fw", counters.KindLast, 11); got.Stamp != (counters.HLC{Wall: 1_700_000_000_005}) {
			t.Fatalf("a repeated value at a later time: stamp %v", got.Stamp)
		}
		if p := mustPending(t, b, 1); p[0].State.Kind != counters.KindLast || p[0].State.Wire("fw").Wall != 1_700_000_000_005 {
			t.Fatalf("pending %+v", p)
		}
	})
}

func mustPending(t *testing.T, b *Buffer, n int) []edge.CounterRow {
	t.Helper()
	p, err := b.PendingCounters(t.Context())
	if err != nil || len(p) != n {
		t.Fatalf("pending counters = %+v, %v; want %d", p, err, n)
	}
	return p
}

// TestBufferCounterKindFixedByFirstWrite checks that a write of another kind is
// refused with edge.ErrKindConflict and changes nothing, and that bad values and
// kinds are refused before anything is read.
func TestBufferCounterKindFixedByFirstWrite(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	ctx := t.Context()
	if _, err := b.Incr(ctx, "doors", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Set(ctx, "temp", counters.KindMax, 20); err != nil {
		t.Fatal(err)
	}
	b.MarkCountersSent(ctx, mustPending(t, b, 2))
	conflicts := []struct {
		name string
		do   func() error
	}{
		{"max on a sum", func() error { _, err := b.Set(ctx, "doors", counters.KindMax, 1); return err }},
		{"last on a sum", func() error { _, err := b.Set(ctx, "doors", counters.KindLast, 1); return err }},
		{"delta on a max", func() error { _, err := b.Incr(ctx, "temp", 1); return err }},
		{"zero delta on a max", func() error { _, err := b.Incr(ctx, "temp", 0); return err }},
		{"min on a max", func() error { _, err := b.Set(ctx, "temp", counters.KindMin, 1); return err }},
	}
	for _, c := range conflicts {
		if err := c.do(); !errors.Is(err, edge.ErrKindConflict) {
			t.Errorf("%s: %v, want edge.ErrKindConflict", c.name, err)
		}
	}
	if err := conflicts[0].do(); err.Error() != `set counter doors: edge: counter kind conflict: counter "doors" is a sum counter, not a max; a counter's kind is fixed by its first write` {
		t.Errorf("conflict message %q", err)
	}
	for _, bad := range []struct {
		name string
		err  error
		do   func() error
	}{
		{"NaN", counters.ErrNotFinite, func() error { _, err := b.Set(ctx, "temp", counters.KindMax, math.NaN()); return err }},
		{"infinity", counters.ErrNotFinite, func() error { _, err := b.Set(ctx, "new", counters.KindLast, math.Inf(-1)); return err }},
		{"set a sum", counters.ErrUnknownKind, func() error { _, err := b.Set(ctx, "doors", counters.KindSum, 1); return err }},
		{"unknown kind", counters.ErrUnknownKind, func() error { _, err := b.Set(ctx, "new", counters.Kind(9), 1); return err }},
		{"bad name", stream.ErrInvalidName, func() error { _, err := b.Set(ctx, "a.b", counters.KindMax, 1); return err }},
	} {
		if err := bad.do(); !errors.Is(err, bad.err) {
			t.Errorf("%s: %v, want %v", bad.name, err, bad.err)
		}
	}
	if r, _, _ := b.Counter(ctx, "doors"); r != (counters.Register{PN: counters.PN{P: 2}}) {
		t.Errorf("doors after refused writes: %+v", r)
	}
	if r, _, _ := b.Counter(ctx, "temp"); r != (counters.Register{Kind: counters.KindMax, Value: 20, Set: true}) {
		t.Errorf("temp after refused writes: %+v", r)
	}
	if _, ok, _ := b.Counter(ctx, "new"); ok {
		t.Error("a refused first write made the counter known")
	}
	if p, _ := b.PendingCounters(ctx); len(p) != 0 {
		t.Errorf("refused writes made %+v pending", p)
	}
}

// TestBufferLastStampNeverGoesBack writes a last register, closes the buffer,
// sets the clock back by minutes (an RTC reset, an NTP step) and opens it
// again: the next write is still stamped after every earlier one, and once the
// clock passes the old stamps the stamps follow it again.
func TestBufferLastStampNeverGoesBack(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock(1_700_000_600_000)
	b := openBuffer(t, dir, withClock(clock))
	var stamps []counters.HLC
	write := func(v float64) {
		t.Helper()
		r, err := b.Set(t.Context(), "mode", counters.KindLast, v)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(stamps); n > 0 && !stamps[n-1].Less(r.Stamp) {
			t.Fatalf("write %v stamped %v, not after the previous %v", v, r.Stamp, stamps[n-1])
		}
		stamps = append(stamps, r.Stamp)
	}
	write(1)
	write(2)
	b.Close()

	clock.Set(1_700_000_000_000) // ten minutes back
	b = openBuffer(t, dir, withClock(clock))
	write(3)
	write(4)
	if got := stamps[len(stamps)-1]; got != (counters.HLC{Wall: 1_700_000_600_000, Logical: 3}) {
		t.Fatalf("after the clock went back the stamp is %v, want the old wall with logical 3", got)
	}
	b.Close()

	clock.Set(1_700_000_000_001) // and back again, across a second restart
	b = openBuffer(t, dir, withClock(clock))
	write(5)
	clock.Set(1_700_000_700_000)
	write(6)
	if got := stamps[len(stamps)-1]; got != (counters.HLC{Wall: 1_700_000_700_000}) {
		t.Fatalf("once the clock passed the old stamps the stamp is %v, want the clock's", got)
	}
	if r, _, _ := b.Counter(t.Context(), "mode"); r.Value != 6 || r.Stamp != stamps[len(stamps)-1] {
		t.Fatalf("stored %+v, want the last write", r)
	}
}

// schemaV1 is the buffer's layout before counter kinds, as version 1 files have
// it.
const schemaV1 = `
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL, created INTEGER NOT NULL,
	last_seq INTEGER NOT NULL, acked_seq INTEGER NOT NULL, buffered INTEGER NOT NULL, buffered_bytes INTEGER NOT NULL,
	dropped INTEGER NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, ts INTEGER NOT NULL, ingest INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE drops (id INTEGER PRIMARY KEY AUTOINCREMENT, epoch TEXT NOT NULL, first_seq INTEGER NOT NULL,
	last_seq INTEGER NOT NULL, count INTEGER NOT NULL, reason TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE counters (name TEXT PRIMARY KEY, p INTEGER NOT NULL, n INTEGER NOT NULL, version INTEGER NOT NULL,
	sent_version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE offsets (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES (1, 'oldepoch', 0, 3, 1, 2, 20, 0);
INSERT INTO events VALUES (2, 's', 1, 1, '{"a":2}'), (3, 's', 1, 1, '{"a":3}');
INSERT INTO counters VALUES ('doors', 5, 2, 3, 3), ('gates', 1, 4, 2, 1);
PRAGMA user_version = 1;
`

// counterLayout returns the counters table's columns as PRAGMA table_info
// lists them.
func counterLayout(t *testing.T, path string) []string {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols []string
	err = sqlitex.EachRow(t.Context(), db, "SELECT name, type, \"notnull\", coalesce(dflt_value, ''), pk FROM pragma_table_info('counters')", func(rows *sql.Rows) error {
		var name, typ, dflt string
		var notNull, pk int
		if err := rows.Scan(&name, &typ, &notNull, &dflt, &pk); err != nil {
			return err
		}
		cols = append(cols, fmt.Sprintf("%s %s notnull=%d default=%s pk=%d", name, typ, notNull, dflt, pk))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// TestBufferMigratesSchemaV1 opens a file written before counter kinds: its
// counters are sums with their versions, its events are still there, it gets
// the layout a new file has, and counters of every kind work on it.
func TestBufferMigratesSchemaV1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buf.db")
	db, err := sqlitex.Open(path, dsnOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), schemaV1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b := openBuffer(t, dir)
	if b.Epoch() != "oldepoch" || b.Stats().Buffered != 2 || len(readAll(t, b)) != 2 {
		t.Fatalf("after migration: epoch %q, stats %+v", b.Epoch(), b.Stats())
	}
	if r, ok, err := b.Counter(t.Context(), "doors"); err != nil || !ok || r != (counters.Register{PN: counters.PN{P: 5, N: 2}}) {
		t.Fatalf("doors after migration = %+v %v %v; want the sum {5 2}", r, ok, err)
	}
	if p := mustPending(t, b, 1); p[0] != (edge.CounterRow{Name: "gates", State: counters.Register{PN: counters.PN{P: 1, N: 4}}, Version: 2}) {
		t.Fatalf("pending after migration = %+v; want gates unsent at version 2", p)
	}
	if _, err := b.Set(t.Context(), "doors", counters.KindMax, 1); !errors.Is(err, edge.ErrKindConflict) {
		t.Fatalf("a max write to a migrated sum: %v, want edge.ErrKindConflict", err)
	}
	if pn, err := b.Incr(t.Context(), "doors", 1); err != nil || pn != (counters.PN{P: 6, N: 2}) {
		t.Fatalf("Incr after migration = %+v, %v", pn, err)
	}
	if r, err := b.Set(t.Context(), "temp", counters.KindMin, -3); err != nil || r.Value != -3 {
		t.Fatalf("Set after migration = %+v, %v", r, err)
	}
	b.Close()

	fresh := t.TempDir()
	openBuffer(t, fresh).Close()
	if got, want := counterLayout(t, path), counterLayout(t, filepath.Join(fresh, "buf.db")); !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated layout\n%v\nnew file's\n%v", got, want)
	}
	db, err = sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := sqlitex.CheckVersion(t.Context(), db, schemaVersion); err != nil || v != 2 {
		t.Fatalf("schema version after migration %d, %v", v, err)
	}
}
