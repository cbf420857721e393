package buffer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/internal/sqlitex"
	"github.com/tributary-edge/tributary/stream"
)

// damage runs stmt on the buffer file of a closed buffer, as a bit flip on the
// disk would change a row.
func damage(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestDamagedRowsAreDroppedOneByOne damages single rows in the ways a disk
// does — a changed data byte, bytes that are no longer UTF-8, a changed time,
// a changed checksum, a broken stream name — and reads the buffer: each
// damaged event alone is dropped and reported as corrupt-buffer, every other
// event is read as written.
func TestDamagedRowsAreDroppedOneByOne(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("a", 100, 40))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "buf.db")
	damage(t, path,
		`UPDATE events SET data = CAST(replace(CAST(data AS TEXT), '"i":9', '"i":8') AS BLOB) WHERE seq = 10`,
		`UPDATE events SET data = CAST(x'7b2261223a22ff227d' AS BLOB) WHERE seq = 20`, // {"a":"\xff"}
		`UPDATE events SET ts = ts + 1 WHERE seq = 30`,
		`UPDATE events SET crc = crc + 1 WHERE seq = 40`,
		`UPDATE events SET stream = 's s', crc = NULL WHERE seq = 50`,
		`UPDATE events SET data = CAST('{"not json' AS BLOB), crc = NULL WHERE seq = 60`,
	)
	b = openBuffer(t, dir)
	rows := readAll(t, b)
	bad := []uint64{10, 20, 30, 40, 50, 60}
	if len(rows) != 100-len(bad) {
		t.Fatalf("read %d rows, want %d", len(rows), 100-len(bad))
	}
	for _, r := range rows {
		if slices.Contains(bad, r.Seq) {
			t.Fatalf("damaged seq %d was read", r.Seq)
		}
		if !utf8.Valid(r.Data) || !stream.IsObject(r.Data) || r.TS != int64(1000+r.Seq-1) {
			t.Fatalf("row %+v is not as written", r)
		}
	}
	st := b.Stats()
	if st.Dropped != uint64(len(bad)) || st.Buffered != int64(100-len(bad)) {
		t.Fatalf("stats %+v: want %d dropped", st, len(bad))
	}
	drops, err := b.PendingDrops(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var dropped []uint64
	for _, d := range drops {
		if d.Reason != stream.ReasonCorruptBuffer || d.Count != d.LastSeq-d.FirstSeq+1 {
			t.Fatalf("drop %+v", d)
		}
		for s := d.FirstSeq; s <= d.LastSeq; s++ {
			dropped = append(dropped, s)
		}
	}
	if !slices.Equal(dropped, bad) {
		t.Fatalf("corrupt-buffer drops cover %v, want exactly %v", dropped, bad)
	}
}

// TestDamagedFileIsReadWithoutBadRows flips bytes all over the middle of a
// stopped buffer's file, as the report that led to checksums did: whatever
// SQLite still reads, the buffer hands out only rows that are as they were
// written, and accounts for every seq as read or dropped.
func TestDamagedFileIsReadWithoutBadRows(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	for range 40 {
		mustAppend(t, b, "s", inputs("a", 100, 200))
	}
	want := map[uint64]string{}
	for _, r := range readAll(t, b) {
		want[r.Seq] = string(r.Data)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "buf.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 64 bytes flipped every 32 KiB over the middle third, on page
	// payloads rather than headers, so that SQLite keeps reading.
	flipped := 0
	for off := len(raw) / 3; off < 2*len(raw)/3; off += 32 << 10 {
		for i := off + 2048; i < off+2048+64 && i < len(raw); i++ {
			raw[i] ^= 0x5a
			flipped++
		}
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if flipped == 0 {
		t.Fatal("the file is too small to damage")
	}
	b2 := New(path)
	if err := b2.Open(t.Context()); err != nil {
		// SQLite found the damage structural: the whole file is moved aside
		// and its events reported lost, which another test covers.
		t.Skipf("the damage made the file unreadable (%v)", err)
	}
	defer b2.Close()
	rows, err := b2.Read(t.Context(), 0, 1<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if want[r.Seq] != string(r.Data) {
			t.Fatalf("seq %d was read altered: %.80q", r.Seq, r.Data)
		}
	}
	st := b2.Stats()
	if st.Dropped == 0 {
		t.Fatal("no row was found damaged")
	}
	if int64(len(rows))+int64(st.Dropped) != 4000 || st.Buffered != int64(len(rows)) {
		t.Fatalf("%d read + %d dropped, want 4000 (stats %+v)", len(rows), st.Dropped, st)
	}
}

// TestSchemaOneFilesAreMigrated opens a buffer made before checksums: its
// rows are read (checked as JSON), new rows get checksums.
func TestSchemaOneFilesAreMigrated(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("old", 5, 0))
	b.Close()
	path := filepath.Join(dir, "buf.db")
	damage(t, path, "ALTER TABLE events DROP COLUMN crc", "ALTER TABLE counters DROP COLUMN kind", "ALTER TABLE counters DROP COLUMN value",
		"ALTER TABLE counters DROP COLUMN wall", "ALTER TABLE counters DROP COLUMN logical", sqlitex.SetVersionSQL(1))
	b = openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("new", 5, 0))
	if rows := readAll(t, b); len(rows) != 10 {
		t.Fatalf("read %d rows after migration, want 10", len(rows))
	}
	b.Close()
	db, _ := sqlitex.Open(path, sqlitex.Options{})
	defer db.Close()
	var version int
	var withCRC int
	db.QueryRow("PRAGMA user_version").Scan(&version)
	db.QueryRow("SELECT count(*) FROM events WHERE crc IS NOT NULL").Scan(&withCRC)
	if version != schemaVersion || withCRC != 5 {
		t.Fatalf("version %d, %d rows with a checksum; want %d and 5", version, withCRC, schemaVersion)
	}
}

// FuzzCheckRow feeds arbitrary rows to the check: it never panics, and what it
// accepts with a checksum matches that checksum and is a JSON object.
func FuzzCheckRow(f *testing.F) {
	data := []byte(`{"a":1}`)
	f.Add(uint64(1), "s", int64(5), data, int64(rowCRC(1, "s", 5, data)), true)
	f.Add(uint64(2), "s", int64(5), []byte("{\"a\":\"\xff\"}"), int64(0), false)
	f.Fuzz(func(t *testing.T, seq uint64, streamName string, ts int64, data []byte, crc int64, hasCRC bool) {
		var p *int64
		if hasCRC {
			p = &crc
		}
		if checkRow(seq, streamName, ts, data, p) != nil {
			return
		}
		if hasCRC && uint32(crc) != rowCRC(seq, streamName, ts, data) {
			t.Fatal("accepted a row whose checksum does not match")
		}
		if !stream.IsObject(data) || stream.ValidateName("stream", streamName) != nil {
			t.Fatal("accepted a row that is not a valid event")
		}
	})
}
