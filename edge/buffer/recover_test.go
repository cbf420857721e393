package buffer

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// asideFiles returns the files the buffer moved aside in dir.
func asideFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "buf.db.corrupt-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBufferCorruptPagesMovedAside(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	for i := 0; i < 40; i++ {
		mustAppend(t, b, "s", inputs("a", 10, 300))
	}
	mustAppend(t, b, "t", inputs("t", 5, 0)) // 401..405
	// The forwarder has sent s up to 150 and t's 402.
	if err := b.Delete(t.Context(), "s", 1, 150); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(t.Context(), "t", 402, 402); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Incr(t.Context(), "doors", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Incr(t.Context(), "doors", -2); err != nil {
		t.Fatal(err)
	}
	mode, err := b.Set(t.Context(), "mode", counters.KindLast, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.AppendWithOffset(t.Context(), "s", nil, "file:x", []byte("42")); err != nil {
		t.Fatal(err)
	}
	oldEpoch, old := b.Epoch(), b.Stats()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Overwrite a page in use, three quarters into the file, with garbage.
	path := filepath.Join(dir, "buf.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := int64(4096)
	mid := (int64(len(data)) * 3 / 4 / page) * page
	garbage := make([]byte, page)
	rand.Read(garbage)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(garbage, mid); err != nil {
		t.Fatal(err)
	}
	f.Close()

	b = openBuffer(t, dir)
	if b.Epoch() == oldEpoch || b.Epoch() == "" {
		t.Fatalf("epoch after recovery %q, old %q: want a new one", b.Epoch(), oldEpoch)
	}
	aside := asideFiles(t, dir)
	if len(aside) != 1 || !strings.HasPrefix(filepath.Base(aside[0]), "buf.db.corrupt-") {
		t.Fatalf("files moved aside: %v", aside)
	}
	moved, err := os.ReadFile(aside[0])
	if err != nil || !bytes.Equal(moved[mid:mid+page], garbage) {
		t.Fatalf("the moved file is not the corrupt one (err %v)", err)
	}
	drops, err := b.PendingDrops(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := stream.Drop{Epoch: oldEpoch, FirstSeq: old.AckedSeq + 1, LastSeq: 405, Count: uint64(old.Buffered), Reason: stream.ReasonCorruptBuffer}
	if old.AckedSeq != 150 || old.Buffered != 254 {
		t.Fatalf("setup: old stats %+v", old)
	}
	if len(drops) != 1 || drops[0].Drop != want {
		t.Fatalf("drops after recovery = %+v, want %+v", drops, want)
	}
	if st := b.Stats(); st.Buffered != 0 || st.LastSeq != 0 || st.Dropped != 254 {
		t.Fatalf("stats after recovery = %+v", st)
	}
	// Counter states and offsets carry over; the counter is pending again.
	if r, ok, err := b.Counter(t.Context(), "doors"); err != nil || !ok || r.PN != (counters.PN{P: 7, N: 2}) {
		t.Fatalf("counter after recovery = %+v %v %v", r, ok, err)
	}
	// A last register keeps its kind and stamp, so its next write is still
	// stamped after the one the hub may hold.
	if r, ok, err := b.Counter(t.Context(), "mode"); err != nil || !ok || r != mode {
		t.Fatalf("last register after recovery = %+v %v %v, want %+v", r, ok, err, mode)
	}
	if pending, err := b.PendingCounters(t.Context()); err != nil || len(pending) != 2 {
		t.Fatalf("pending counters after recovery = %+v %v", pending, err)
	}
	if off, err := b.Offset(t.Context(), "file:x"); err != nil || string(off) != "42" {
		t.Fatalf("offset after recovery = %q %v", off, err)
	}
	// The new epoch starts at seq 1 and the buffer works.
	if f, _ := mustAppend(t, b, "s", inputs("new", 1, 0)); f != 1 {
		t.Fatalf("first seq of the new epoch = %d", f)
	}
	b.Close()
	b = openBuffer(t, dir)
	if len(asideFiles(t, dir)) != 1 {
		t.Fatal("a healthy reopen moved the file aside again")
	}
}

func TestBufferGarbageFileMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buf.db")
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	b := openBuffer(t, dir)
	if f, l := mustAppend(t, b, "s", inputs("a", 2, 0)); f != 1 || l != 2 {
		t.Fatalf("seqs in the new file: %d..%d", f, l)
	}
	aside := asideFiles(t, dir)
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v, want the file", aside)
	}
	moved, _ := os.ReadFile(aside[0])
	if !bytes.Equal(moved, garbage) {
		t.Fatal("the garbage file was not moved aside unchanged")
	}
	if drops, _ := b.PendingDrops(t.Context()); len(drops) != 0 {
		t.Fatalf("drops recorded for an unreadable epoch: %+v", drops)
	}
}

// TestBufferForeignDatabaseRefused leaves an SQLite file that is not a buffer
// alone.
func TestBufferForeignDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buf.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE photos (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b := New(path)
	if err := b.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "not a buffer") {
		b.Close()
		t.Fatalf("Open of a foreign database = %v", err)
	}
	if len(asideFiles(t, dir)) != 0 {
		t.Fatal("a foreign database was moved aside")
	}
}

func TestBufferMoveAsideTakesLogAndIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buf.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.WriteFile(path+suffix, []byte(suffix), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	first, err := moveAside(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if first != path+".corrupt-20250304T050607Z" {
		t.Fatalf("moved to %s", first)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if got, err := os.ReadFile(first + suffix); err != nil || string(got) != suffix {
			t.Fatalf("%s: %q %v", first+suffix, got, err)
		}
		if exists(path + suffix) {
			t.Fatalf("%s is still there", path+suffix)
		}
	}
	// A second corrupt file in the same second gets its own name.
	os.WriteFile(path, []byte("again"), 0o644)
	second, err := moveAside(path, now)
	if err != nil || second == first || !exists(second) {
		t.Fatalf("second move to %s: %v", second, err)
	}
}
