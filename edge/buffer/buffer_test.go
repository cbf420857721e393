package buffer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/tributary-edge/tributary/stream"
)

// openBuffer opens a buffer at dir/buf.db with the given changes to its fields
// and closes it at the end of the test.
func openBuffer(t *testing.T, dir string, opts ...func(*Buffer)) *Buffer {
	t.Helper()
	b := New(filepath.Join(dir, "buf.db"))
	for _, o := range opts {
		o(b)
	}
	if err := b.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// inputs returns n events whose data name their tag and index, padded to about
// pad bytes.
func inputs(tag string, n, pad int) []edge.Input {
	out := make([]edge.Input, n)
	for i := range out {
		out[i] = edge.Input{TS: int64(1000 + i), Data: json.RawMessage(fmt.Sprintf(`{"tag":%q,"i":%d,"pad":%q}`, tag, i, strings.Repeat("x", pad)))}
	}
	return out
}

func mustAppend(t *testing.T, b *Buffer, streamName string, in []edge.Input) (uint64, uint64) {
	t.Helper()
	first, last, err := b.Append(t.Context(), streamName, in)
	if err != nil {
		t.Fatalf("Append(%s, %d events): %v", streamName, len(in), err)
	}
	return first, last
}

// readAll returns every held row.
func readAll(t *testing.T, b *Buffer) []edge.Row {
	t.Helper()
	rows, err := b.Read(t.Context(), 0, 1<<30, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rows
}

func seqsOf(rows []edge.Row) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}

func TestBufferCommitThenReopen(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, filepath.Join(dir, "sub", "dir")) // the directory is created
	epoch := b.Epoch()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(epoch) {
		t.Fatalf("epoch %q is not 16 hex characters", epoch)
	}
	if f, l := mustAppend(t, b, "temps", inputs("a", 3, 10)); f != 1 || l != 3 {
		t.Fatalf("first append got seqs %d..%d, want 1..3", f, l)
	}
	if f, l := mustAppend(t, b, "doors", inputs("b", 2, 10)); f != 4 || l != 5 {
		t.Fatalf("second append got seqs %d..%d, want 4..5", f, l)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(t.Context(), "temps", inputs("c", 1, 0)); !errors.Is(err, edge.ErrBufferClosed) {
		t.Fatalf("Append after Close = %v, want edge.ErrBufferClosed", err)
	}

	b2 := openBuffer(t, filepath.Join(dir, "sub", "dir"))
	if b2.Epoch() != epoch {
		t.Fatalf("epoch after reopen %q, want %q", b2.Epoch(), epoch)
	}
	rows := readAll(t, b2)
	want := []edge.Row{
		{Seq: 1, Stream: "temps", TS: 1000, Data: inputs("a", 3, 10)[0].Data},
		{Seq: 2, Stream: "temps", TS: 1001, Data: inputs("a", 3, 10)[1].Data},
		{Seq: 3, Stream: "temps", TS: 1002, Data: inputs("a", 3, 10)[2].Data},
		{Seq: 4, Stream: "doors", TS: 1000, Data: inputs("b", 2, 10)[0].Data},
		{Seq: 5, Stream: "doors", TS: 1001, Data: inputs("b", 2, 10)[1].Data},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows after reopen, want %d", len(rows), len(want))
	}
	for i := range want {
		if rows[i].Ingest <= 0 || rows[i].Ingest > time.Now().UnixNano() {
			t.Errorf("row %d has ingest time %d, want the buffer's clock at its commit", i, rows[i].Ingest)
		}
		if rows[i].Seq != want[i].Seq || rows[i].Stream != want[i].Stream || rows[i].TS != want[i].TS || string(rows[i].Data) != string(want[i].Data) {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if f, _ := mustAppend(t, b2, "temps", inputs("c", 1, 0)); f != 6 {
		t.Fatalf("seq after reopen = %d, want 6", f)
	}
	st := b2.Stats()
	if st.Buffered != 6 || st.LastSeq != 6 || st.AckedSeq != 0 || st.FileBytes == 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestBufferPathWithURIChars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	b := openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("a", 1, 0))
	if _, err := os.Stat(filepath.Join(dir, "buf.db")); err != nil {
		t.Fatalf("the file is not at its path: %v", err)
	}
	b.Close()
	if b = openBuffer(t, dir); b.Stats().LastSeq != 1 {
		t.Fatalf("reopen lost the event: %+v", b.Stats())
	}
}

func TestBufferSeqNeverReused(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("a", 5, 0))
	if err := b.Delete(t.Context(), "s", 1, 5); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Buffered != 0 || st.BufferedBytes != 0 || st.AckedSeq != 5 || st.LastSeq != 5 {
		t.Fatalf("stats after deleting everything = %+v", st)
	}
	b.Close()
	b = openBuffer(t, dir)
	if st := b.Stats(); st.Buffered != 0 || st.AckedSeq != 5 || st.LastSeq != 5 {
		t.Fatalf("stats after reopen = %+v", st)
	}
	if f, l := mustAppend(t, b, "s", inputs("b", 2, 0)); f != 6 || l != 7 {
		t.Fatalf("seqs after emptying and reopening = %d..%d, want 6..7", f, l)
	}
}

func TestBufferNewFileNewEpoch(t *testing.T) {
	a := openBuffer(t, t.TempDir())
	b := openBuffer(t, t.TempDir())
	if a.Epoch() == b.Epoch() || a.Epoch() == "" {
		t.Fatalf("two new files got epochs %q and %q", a.Epoch(), b.Epoch())
	}
}

// TestBufferSurvivesWithoutClose copies the files of an open buffer, as a crash
// would leave them, and opens the copy.
func TestBufferSurvivesWithoutClose(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	mustAppend(t, b, "s", inputs("a", 100, 50))
	mustAppend(t, b, "s", inputs("b", 1, 0))
	if _, err := b.Incr(t.Context(), "doors", 3); err != nil {
		t.Fatal(err)
	}
	crash := t.TempDir()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, b.Path+suffix, filepath.Join(crash, "buf.db"+suffix))
	}
	c := openBuffer(t, crash)
	if c.Epoch() != b.Epoch() {
		t.Fatalf("epoch after crash %q, want %q", c.Epoch(), b.Epoch())
	}
	if rows := readAll(t, c); len(rows) != 101 || rows[100].Seq != 101 {
		t.Fatalf("after crash: %d rows, want 101", len(rows))
	}
	if r, ok, err := c.Counter(t.Context(), "doors"); err != nil || !ok || r.PN.P != 3 {
		t.Fatalf("counter after crash = %+v %v %v", r, ok, err)
	}
	if f, _ := mustAppend(t, c, "s", inputs("c", 1, 0)); f != 102 {
		t.Fatalf("seq after crash = %d, want 102", f)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	openBuffer(t, dir)
	other := New(filepath.Join(dir, "buf.db"))
	err := other.Open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		other.Close()
		t.Fatalf("second Open = %v, want an in-use error", err)
	}
}

func TestBufferOpenValidates(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Buffer)
		want string
	}{
		{"empty path", func(b *Buffer) { b.Path = "" }, "path is empty"},
		{"tiny cap", func(b *Buffer) { b.MaxBytes = 1000 }, "max bytes 1000"},
		{"negative age", func(b *Buffer) { b.MaxAge = -1 }, "max age"},
		{"policy", func(b *Buffer) { b.Policy = "keep-all" }, `"keep-all" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(filepath.Join(t.TempDir(), "buf.db"))
			tt.set(b)
			err := b.Open(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				b.Close()
				t.Fatalf("Open = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if p, err := ParsePolicy("reject"); err != nil || p != Reject {
		t.Fatalf("ParsePolicy(reject) = %q, %v", p, err)
	}
	if p, err := ParsePolicy("drop-oldest"); err != nil || p != DropOldest {
		t.Fatalf("ParsePolicy(drop-oldest) = %q, %v", p, err)
	}
	if _, err := ParsePolicy(""); err == nil {
		t.Fatal("ParsePolicy(\"\") accepted")
	}
}

func TestBufferReadOrderAndLimits(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	mustAppend(t, b, "a", inputs("a", 3, 100)) // 1..3
	mustAppend(t, b, "b", inputs("b", 3, 100)) // 4..6
	mustAppend(t, b, "a", inputs("c", 3, 100)) // 7..9
	size := len(inputs("a", 1, 100)[0].Data)
	tests := []struct {
		name              string
		after             uint64
		maxEvents, maxBuf int
		want              []uint64
	}{
		{"all", 0, 100, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"after", 4, 100, 0, []uint64{5, 6, 7, 8, 9}},
		{"max events", 2, 3, 0, []uint64{3, 4, 5}},
		{"max bytes", 0, 100, 2*size + size/2, []uint64{1, 2}},
		{"max bytes exact", 0, 100, 3 * size, []uint64{1, 2, 3}},
		{"at least one", 6, 100, 1, []uint64{7}},
		{"past the end", 9, 100, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := b.Read(t.Context(), tt.after, tt.maxEvents, tt.maxBuf)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seqsOf(rows)) != fmt.Sprint(tt.want) {
				t.Fatalf("got seqs %v, want %v", seqsOf(rows), tt.want)
			}
		})
	}
	if _, err := b.Read(t.Context(), 0, 0, 0); err == nil {
		t.Fatal("Read with maxEvents 0 accepted")
	}
}

func TestBufferDeleteOnlyNamedStream(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	for i := 0; i < 5; i++ { // a: 1,3,5,7,9  b: 2,4,6,8,10
		mustAppend(t, b, "a", inputs("a", 1, 0))
		mustAppend(t, b, "b", inputs("b", 1, 0))
	}
	if err := b.Delete(t.Context(), "a", 1, 7); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(readAll(t, b))); got != "[2 4 6 8 9 10]" {
		t.Fatalf("after deleting a 1..7: %s", got)
	}
	if st := b.Stats(); st.Buffered != 6 || st.AckedSeq != 1 {
		t.Fatalf("stats = %+v, want 6 buffered, acked 1", st)
	}
	if err := b.Delete(t.Context(), "b", 2, 6); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Buffered != 3 || st.AckedSeq != 7 {
		t.Fatalf("stats = %+v, want 3 buffered, acked 7", st)
	}
	// Deleting again, or a range with none of the stream, changes nothing.
	if err := b.Delete(t.Context(), "b", 2, 6); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(readAll(t, b))); got != "[8 9 10]" {
		t.Fatalf("after deleting b 2..6: %s", got)
	}
	if err := b.Delete(t.Context(), "a", 5, 4); err == nil {
		t.Fatal("Delete of an empty range accepted")
	}
	if err := b.Delete(t.Context(), "a", 9, 9); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(t.Context(), "b", 8, 10); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Buffered != 0 || st.BufferedBytes != 0 || st.AckedSeq != 10 {
		t.Fatalf("stats after deleting everything = %+v", st)
	}
}

func TestBufferAppendRefusesBadInput(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	mustAppend(t, b, "s", inputs("a", 1, 0))
	bad := append(inputs("b", 2, 0), edge.Input{Data: json.RawMessage(`[1,2]`)})
	if _, _, err := b.Append(t.Context(), "s", bad); !errors.Is(err, edge.ErrInvalidData) || !strings.Contains(err.Error(), "event 2") {
		t.Fatalf("Append with an array = %v, want edge.ErrInvalidData naming event 2", err)
	}
	if _, _, err := b.Append(t.Context(), "a.b", inputs("c", 1, 0)); !errors.Is(err, stream.ErrInvalidName) {
		t.Fatalf("Append to stream a.b = %v, want ErrInvalidName", err)
	}
	if _, _, err := b.Append(t.Context(), "s", []edge.Input{{Data: json.RawMessage(`{"a":`)}}); !errors.Is(err, edge.ErrInvalidData) {
		t.Fatalf("Append of truncated JSON = %v, want edge.ErrInvalidData", err)
	}
	if f, l, err := b.Append(t.Context(), "s", nil); err != nil || f != 0 || l != 0 {
		t.Fatalf("empty Append = %d, %d, %v", f, l, err)
	}
	if rows := readAll(t, b); len(rows) != 1 || b.Stats().LastSeq != 1 {
		t.Fatalf("refused appends stored something: %d rows, last seq %d", len(rows), b.Stats().LastSeq)
	}
}

func TestBufferAppendWithOffset(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir)
	if off, err := b.Offset(t.Context(), "file:/var/log/x"); err != nil || off != nil {
		t.Fatalf("Offset before any = %q, %v; want nil", off, err)
	}
	if _, _, err := b.AppendWithOffset(t.Context(), "logs", inputs("a", 2, 0), "file:/var/log/x", []byte("120")); err != nil {
		t.Fatal(err)
	}
	// A refused append does not move the offset.
	if _, _, err := b.AppendWithOffset(t.Context(), "logs", []edge.Input{{Data: json.RawMessage(`1`)}}, "file:/var/log/x", []byte("999")); err == nil {
		t.Fatal("bad append with offset accepted")
	}
	// An append of no events still saves the offset.
	if _, _, err := b.AppendWithOffset(t.Context(), "logs", nil, "file:/var/log/y", []byte("7")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openBuffer(t, dir)
	if off, err := b.Offset(t.Context(), "file:/var/log/x"); err != nil || string(off) != "120" {
		t.Fatalf("Offset x after reopen = %q, %v; want 120", off, err)
	}
	if off, err := b.Offset(t.Context(), "file:/var/log/y"); err != nil || string(off) != "7" {
		t.Fatalf("Offset y after reopen = %q, %v; want 7", off, err)
	}
	if rows := readAll(t, b); len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
}

// TestBufferConcurrentAppends checks that grouped appends each get a contiguous
// range holding exactly their own events, and that no seq is skipped.
func TestBufferConcurrentAppends(t *testing.T) {
	b := openBuffer(t, t.TempDir())
	const workers, each = 16, 25
	type got struct {
		tag         string
		n           int
		first, last uint64
	}
	var mu sync.Mutex
	var results []got
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tag := fmt.Sprintf("w%d-%d", w, i)
				n := 1 + (w+i)%3
				first, last, err := b.Append(t.Context(), "s", inputs(tag, n, 0))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, got{tag, n, first, last})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rows := readAll(t, b)
	bySeq := map[uint64]edge.Row{}
	for i, r := range rows {
		if r.Seq != uint64(i+1) {
			t.Fatalf("row %d has seq %d: seqs are not contiguous", i, r.Seq)
		}
		bySeq[r.Seq] = r
	}
	total := 0
	for _, g := range results {
		total += g.n
		if g.last-g.first+1 != uint64(g.n) {
			t.Fatalf("%s: range %d..%d for %d events", g.tag, g.first, g.last, g.n)
		}
		for i := 0; i < g.n; i++ {
			var d struct {
				Tag string `json:"tag"`
				I   int    `json:"i"`
			}
			if err := json.Unmarshal(bySeq[g.first+uint64(i)].Data, &d); err != nil || d.Tag != g.tag || d.I != i {
				t.Fatalf("seq %d holds %+v, want %s event %d", g.first+uint64(i), d, g.tag, i)
			}
		}
	}
	if total != len(rows) || b.Stats().Buffered != int64(total) || b.Stats().LastSeq != uint64(total) {
		t.Fatalf("%d events appended, %d rows, stats %+v", total, len(rows), b.Stats())
	}
}
