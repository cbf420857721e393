package buffer

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/tributary-edge/tributary/stream"
)

const testCap = 1 << 20

func withCap(n int64) func(*Buffer)     { return func(b *Buffer) { b.MaxBytes = n } }
func withPolicy(p Policy) func(*Buffer) { return func(b *Buffer) { b.Policy = p } }

// diskSize is the size of the buffer's files on disk.
func diskSize(path string) int64 {
	return fileSize(path) + fileSize(path+"-wal") + fileSize(path+"-shm")
}

func checkWithinCap(t *testing.T, b *Buffer, capBytes int64) {
	t.Helper()
	if sz := diskSize(b.Path); sz > capBytes {
		t.Fatalf("files take %d bytes on disk, over the %d byte cap", sz, capBytes)
	}
	if fb := b.Stats().FileBytes; fb > capBytes {
		t.Fatalf("edge.BufferStats.FileBytes %d is over the %d byte cap", fb, capBytes)
	}
}

// watchPeak samples the size of the buffer's files on disk in the background,
// so that a cap overshoot during a write is seen, not only between calls. The
// returned function stops it and returns the largest size seen.
func watchPeak(t *testing.T, path string) func() int64 {
	var peak atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
			if sz := diskSize(path); sz > peak.Load() {
				peak.Store(sz)
			}
		}
	}()
	var once sync.Once
	done := func() int64 {
		once.Do(func() { close(stop); <-stopped })
		return peak.Load()
	}
	t.Cleanup(func() { done() })
	return done
}

// dropLedger collects drops as a forwarder would: take the pending ones, mark
// them sent.
type dropLedger struct{ drops []stream.Drop }

func (l *dropLedger) collect(t *testing.T, b *Buffer) {
	t.Helper()
	rows, err := b.PendingDrops(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range rows {
		if err := r.Drop.Validate(); err != nil {
			t.Fatalf("drop %+v: %v", r.Drop, err)
		}
		l.drops = append(l.drops, r.Drop)
		ids = append(ids, r.ID)
	}
	if err := b.MarkDropsSent(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
}

// checkDrops verifies that the drops account for exactly the seqs up to last
// that are neither held nor deleted: every range's count is exact, no two ranges
// share a seq, and edge.BufferStats.Dropped is their sum. It returns the dropped seqs.
func checkDrops(t *testing.T, b *Buffer, drops []stream.Drop, deleted map[uint64]bool, reason string) map[uint64]bool {
	t.Helper()
	held := map[uint64]bool{}
	for _, r := range readAll(t, b) {
		held[r.Seq] = true
	}
	last := b.Stats().LastSeq
	dropped := map[uint64]bool{}
	for s := uint64(1); s <= last; s++ {
		if !held[s] && !deleted[s] {
			dropped[s] = true
		}
	}
	sort.Slice(drops, func(i, j int) bool { return drops[i].FirstSeq < drops[j].FirstSeq })
	var sum uint64
	for i, d := range drops {
		if d.Epoch != b.Epoch() || d.Reason != reason {
			t.Fatalf("drop %+v: want epoch %s, reason %s", d, b.Epoch(), reason)
		}
		if i > 0 && drops[i-1].LastSeq >= d.FirstSeq {
			t.Fatalf("drops %+v and %+v overlap", drops[i-1], d)
		}
		if !dropped[d.FirstSeq] || !dropped[d.LastSeq] {
			t.Fatalf("drop %+v starts or ends at a seq that was not dropped", d)
		}
		var n uint64
		for s := d.FirstSeq; s <= d.LastSeq; s++ {
			if dropped[s] {
				n++
			}
		}
		if n != d.Count {
			t.Fatalf("drop %+v: %d seqs in its range were dropped, count says %d", d, n, d.Count)
		}
		sum += d.Count
	}
	if sum != uint64(len(dropped)) || b.Stats().Dropped != sum {
		t.Fatalf("drops count %d events, %d seqs are missing, edge.BufferStats.Dropped %d", sum, len(dropped), b.Stats().Dropped)
	}
	return dropped
}

// TestBufferDropOldestWithinCap fills a small buffer several times over while a
// forwarder sends one of two streams now and then: the files stay within the
// cap, the oldest events go, and the drops account exactly for them.
func TestBufferDropOldestWithinCap(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(testCap))
	peak := watchPeak(t, b.Path)
	deleted := map[uint64]bool{}
	var ledger dropLedger
	for i := 0; i < 1200; i++ {
		s := "a"
		if i%3 == 0 {
			s = "b"
		}
		mustAppend(t, b, s, inputs(s, 1+i%20, 350))
		checkWithinCap(t, b, testCap)
		if i%60 == 59 {
			// The forwarder sends stream b.
			rows := readAll(t, b)
			if err := b.Delete(t.Context(), "b", rows[0].Seq, rows[len(rows)-1].Seq); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Stream == "b" {
					deleted[r.Seq] = true
				}
			}
		}
		if i%100 == 99 {
			ledger.collect(t, b)
		}
	}
	if p := peak(); p > testCap {
		t.Fatalf("the files took %d bytes on disk while writing, over the %d byte cap", p, testCap)
	}
	ledger.collect(t, b)
	dropped := checkDrops(t, b, ledger.drops, deleted, stream.ReasonBufferFull)
	st := b.Stats()
	if st.Dropped == 0 || len(ledger.drops) < 2 {
		t.Fatalf("a buffer filled several times over dropped %d events in %d drops", st.Dropped, len(ledger.drops))
	}
	// Drop-oldest: every dropped seq is older than every held one.
	rows := readAll(t, b)
	for s := range dropped {
		if s > rows[0].Seq {
			t.Fatalf("seq %d was dropped while older seq %d is held", s, rows[0].Seq)
		}
	}
	// It dropped what it had to, not much more: the held data fills a good part
	// of the cap.
	if st.BufferedBytes < testCap*3/10 {
		t.Fatalf("only %d bytes held under a %d byte cap", st.BufferedBytes, testCap)
	}
	var bytes int64
	for _, r := range rows {
		bytes += int64(len(r.Data))
	}
	if st.Buffered != int64(len(rows)) || st.BufferedBytes != bytes || st.AckedSeq != rows[0].Seq-1 {
		t.Fatalf("stats %+v, held %d rows of %d bytes from seq %d", st, len(rows), bytes, rows[0].Seq)
	}
}

func TestBufferRejectStoresNothing(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(testCap), withPolicy(Reject))
	var stored int
	for {
		_, _, err := b.Append(t.Context(), "s", inputs("a", 10, 350))
		if errors.Is(err, edge.ErrBufferFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if stored++; stored > 1000 {
			t.Fatal("a 1 MiB buffer took over 3.5 MB without refusing")
		}
		checkWithinCap(t, b, testCap)
	}
	before := b.Stats()
	if before.Buffered < 1000 {
		t.Fatalf("refused after only %d events", before.Buffered)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := b.Append(t.Context(), "s", inputs("b", 10, 350)); !errors.Is(err, edge.ErrBufferFull) {
			t.Fatalf("Append to a full buffer = %v, want edge.ErrBufferFull", err)
		}
	}
	after := b.Stats()
	if after.LastSeq != before.LastSeq || after.Buffered != before.Buffered || after.Dropped != 0 {
		t.Fatalf("refused appends changed the buffer: %+v -> %+v", before, after)
	}
	if drops, _ := b.PendingDrops(t.Context()); len(drops) != 0 {
		t.Fatalf("reject recorded drops: %+v", drops)
	}
	checkWithinCap(t, b, testCap)
	// Once the forwarder deletes events, appends succeed again, without gaps.
	if err := b.Delete(t.Context(), "s", 1, before.LastSeq/2); err != nil {
		t.Fatal(err)
	}
	if f, _ := mustAppend(t, b, "s", inputs("c", 10, 350)); f != before.LastSeq+1 {
		t.Fatalf("append after room was made got seq %d, want %d", f, before.LastSeq+1)
	}
}

func TestBufferAppendLargerThanCap(t *testing.T) {
	for _, p := range []Policy{DropOldest, Reject} {
		t.Run(string(p), func(t *testing.T) {
			b := openBuffer(t, t.TempDir(), withCap(testCap), withPolicy(p))
			mustAppend(t, b, "s", inputs("a", 10, 100))
			_, _, err := b.Append(t.Context(), "s", inputs("big", 400, 3000))
			if !errors.Is(err, edge.ErrAppendTooLarge) || errors.Is(err, edge.ErrBufferFull) {
				t.Fatalf("1.2 MB append into a 1 MiB buffer = %v, want edge.ErrAppendTooLarge (not ErrBufferFull: retrying cannot help)", err)
			}
			if st := b.Stats(); st.Buffered != 10 || st.LastSeq != 10 || st.Dropped != 0 {
				t.Fatalf("stats after the refused append: %+v", st)
			}
		})
	}
}

func TestBufferLeaseProtectsInFlight(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(testCap))
	peak := watchPeak(t, b.Path)
	_, leased := mustAppend(t, b, "s", inputs("a", 100, 350))
	b.Lease(leased)
	var ledger dropLedger
	for b.Stats().Dropped < 3000 {
		mustAppend(t, b, "s", inputs("b", 20, 350))
		checkWithinCap(t, b, testCap)
		ledger.collect(t, b)
	}
	rows := readAll(t, b)
	for i := uint64(0); i < leased; i++ {
		if rows[i].Seq != i+1 {
			t.Fatalf("leased seq %d was dropped", i+1)
		}
	}
	for _, d := range ledger.drops {
		if d.FirstSeq <= leased {
			t.Fatalf("drop %+v takes leased events", d)
		}
	}
	// Released, the leased events are the oldest and go first; the new drop
	// is cut around the earlier ones.
	b.Release()
	for readAll(t, b)[0].Seq <= leased {
		mustAppend(t, b, "s", inputs("c", 20, 350))
		checkWithinCap(t, b, testCap)
	}
	ledger.collect(t, b)
	checkDrops(t, b, ledger.drops, nil, stream.ReasonBufferFull)
	if p := peak(); p > testCap {
		t.Fatalf("the files took %d bytes on disk while writing, over the %d byte cap", p, testCap)
	}
}

// fakeClock is a settable clock for Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBufferMaxAge(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	b := openBuffer(t, t.TempDir(), func(b *Buffer) { b.MaxAge = time.Minute; b.Now = clock.Now })
	mustAppend(t, b, "s", inputs("old", 5, 0)) // 1..5 at 12:00:00
	clock.Add(30 * time.Second)
	mustAppend(t, b, "t", inputs("mid", 3, 0)) // 6..8 at 12:00:30
	if err := b.Delete(t.Context(), "s", 2, 2); err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Second)
	if rows := readAll(t, b); len(rows) != 7 {
		t.Fatalf("nothing is a minute old yet, but %d of 7 rows are left", len(rows))
	}
	clock.Add(15 * time.Second) // 12:01:05: 1..5 are older than a minute
	if got := fmt.Sprint(seqsOf(readAll(t, b))); got != "[6 7 8]" {
		t.Fatalf("after a minute: %s, want [6 7 8]", got)
	}
	drops, err := b.PendingDrops(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := stream.Drop{Epoch: b.Epoch(), FirstSeq: 1, LastSeq: 5, Count: 4, Reason: stream.ReasonMaxAge}
	if len(drops) != 1 || drops[0].Drop != want {
		t.Fatalf("drops = %+v, want %+v", drops, want)
	}
	if st := b.Stats(); st.Dropped != 4 || st.AckedSeq != 5 || st.Buffered != 3 {
		t.Fatalf("stats = %+v", st)
	}
	// Leased events stay however old they get.
	b.Lease(7)
	clock.Add(time.Hour)
	if got := fmt.Sprint(seqsOf(readAll(t, b))); got != "[6 7]" {
		t.Fatalf("with 6..7 leased an hour later: %s, want [6 7]", got)
	}
	b.Release()
	if err := b.expire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Buffered != 0 || st.Dropped != 7 || st.AckedSeq != 8 {
		t.Fatalf("stats after everything expired = %+v", st)
	}
}

// TestBufferMaxAgeLoop checks that the maintenance loop expires events with no
// reader.
func TestBufferMaxAgeLoop(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	b := openBuffer(t, t.TempDir(), func(b *Buffer) { b.MaxAge = time.Minute; b.Now = clock.Now; b.tick = 10 * time.Millisecond })
	mustAppend(t, b, "s", inputs("a", 3, 0))
	clock.Add(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Dropped != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("events two minutes old were not expired: %+v", b.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBufferDiskFull(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(0), func(b *Buffer) { b.maxPageCount = 60 })
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, _, err = b.Append(t.Context(), "s", inputs("a", 20, 300))
	}
	if !errors.Is(err, edge.ErrDiskFull) {
		t.Fatalf("filling a 60-page file: %v, want edge.ErrDiskFull", err)
	}
	before := b.Stats()
	for i := 0; i < 3; i++ {
		if _, _, err := b.Append(t.Context(), "s", inputs("b", 20, 300)); !errors.Is(err, edge.ErrDiskFull) {
			t.Fatalf("Append on a full disk = %v, want edge.ErrDiskFull", err)
		}
	}
	if _, err := b.Incr(t.Context(), "c", 1); err != nil && !errors.Is(err, edge.ErrDiskFull) {
		t.Fatalf("Incr on a full disk = %v", err)
	}
	rows := readAll(t, b)
	if after := b.Stats(); after.LastSeq != before.LastSeq || after.Buffered != before.Buffered || int64(len(rows)) != before.Buffered {
		t.Fatalf("failed appends left something: %+v -> %+v, %d rows", before, after, len(rows))
	}
	// Concurrent appends that fail together are each refused alone.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := b.Append(t.Context(), "s", inputs("c", 20, 300)); !errors.Is(err, edge.ErrDiskFull) {
				t.Errorf("concurrent Append on a full disk = %v", err)
			}
		}()
	}
	wg.Wait()
	if b.Stats().LastSeq != before.LastSeq {
		t.Fatalf("failed concurrent appends used seqs")
	}
	// Space frees: appends succeed again and seqs continue without a gap.
	b.mu.Lock()
	b.maxPageCount = 0
	err = b.setMaxPageCount(t.Context())
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := mustAppend(t, b, "s", inputs("d", 20, 300)); f != before.LastSeq+1 {
		t.Fatalf("first seq after the disk freed = %d, want %d", f, before.LastSeq+1)
	}
}

// TestBufferShrinksToLowerCap reopens a full buffer with a lower cap.
func TestBufferShrinksToLowerCap(t *testing.T) {
	dir := t.TempDir()
	b := openBuffer(t, dir, withCap(4*testCap))
	for i := 0; i < 300; i++ {
		mustAppend(t, b, "s", inputs("a", 20, 350))
	}
	if diskSize(b.Path) < 2*testCap {
		t.Fatalf("setup: only %d bytes on disk", diskSize(b.Path))
	}
	b.Close()
	b = openBuffer(t, dir, withCap(testCap))
	checkWithinCap(t, b, testCap)
	var ledger dropLedger
	ledger.collect(t, b)
	checkDrops(t, b, ledger.drops, nil, stream.ReasonBufferFull)
	if b.Stats().Dropped == 0 {
		t.Fatal("nothing dropped")
	}
}

// TestBufferReclaim checks that a drained buffer gives its pages back.
func TestBufferReclaim(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(16*testCap))
	for i := 0; i < 100; i++ {
		mustAppend(t, b, "s", inputs("a", 50, 1000))
	}
	full := diskSize(b.Path)
	if err := b.Delete(t.Context(), "s", 1, b.Stats().LastSeq); err != nil {
		t.Fatal(err)
	}
	if err := b.reclaim(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := diskSize(b.Path); got > full/4 {
		t.Fatalf("after draining %d bytes, the files still take %d", full, got)
	}
	if f, _ := mustAppend(t, b, "s", inputs("b", 1, 0)); f != 5001 {
		t.Fatalf("seq after reclaim = %d", f)
	}
}

// TestBufferConcurrentAppendsUnderCap has grouped appends make room together.
func TestBufferConcurrentAppendsUnderCap(t *testing.T) {
	b := openBuffer(t, t.TempDir(), withCap(testCap))
	peak := watchPeak(t, b.Path)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				if _, _, err := b.Append(t.Context(), "s", inputs("a", 1+(w*7+i)%25, 350)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := peak(); p > testCap {
		t.Fatalf("the files took %d bytes on disk while writing, over the %d byte cap", p, testCap)
	}
	var ledger dropLedger
	ledger.collect(t, b)
	checkDrops(t, b, ledger.drops, nil, stream.ReasonBufferFull)
	if b.Stats().Dropped == 0 {
		t.Fatal("nothing was dropped")
	}
}
