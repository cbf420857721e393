package index

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/sqlitex"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

func openIndex(t testing.TB) *Index {
	t.Helper()
	x := New(filepath.Join(t.TempDir(), "index.db"))
	if err := x.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func eventsMsg(node, epoch, strm string, seqs ...uint64) Message {
	recs := make([]stream.Record, len(seqs))
	for i, s := range seqs {
		recs[i] = stream.Record{Seq: s, TS: int64(s) * 1e9, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, s))}
	}
	return Message{Frame: &stream.Frame{Kind: stream.KindEvents, Node: node, Epoch: epoch, Stream: strm, Events: recs}, At: 1}
}

func dropMsg(node string, d stream.Drop) Message {
	return Message{Frame: &stream.Frame{Kind: stream.KindDrops, Node: node, Epoch: d.Epoch, Drops: []stream.Drop{d}}, At: 1}
}

// epoch returns the stored accounting row of (node, epoch).
func epoch(t *testing.T, x *Index, node, ep string) EpochRow {
	t.Helper()
	rows, err := x.LoadEpochs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rows {
		if e.Node == node && e.Epoch == ep {
			return e
		}
	}
	t.Fatalf("no epoch %s/%s in %+v", node, ep, rows)
	return EpochRow{}
}

// readAll reads every event of the index in merge order through Chunks.
func readAll(t *testing.T, x *Index, s pattern.Scan) []stream.Event {
	t.Helper()
	it, err := x.Chunks(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []stream.Event
	for it.Next() {
		c := it.Chunk()
		var b pattern.ChunkBuf
		evs, err := c.Load(&b)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != c.Count || evs[0].TS != c.MinTS || evs[len(evs)-1].TS != c.MaxTS {
			t.Fatalf("chunk %+v holds %d events from %d to %d", c, len(evs), evs[0].TS, evs[len(evs)-1].TS)
		}
		for i := range evs {
			if i > 0 && (evs[i].TS < evs[i-1].TS || evs[i].TS == evs[i-1].TS && evs[i].Seq <= evs[i-1].Seq) {
				t.Fatalf("chunk of %s not in (ts, seq) order at %d", c.Node, i)
			}
			ev := evs[i]
			ev.Data = slices.Clone(ev.Data)
			out = append(out, ev)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestApplyIsIdempotent(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	m := eventsMsg("a", "e1", "s", 1, 2, 3)
	first, err := x.Apply(ctx, []Message{m}, true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := x.Apply(ctx, []Message{m, eventsMsg("a", "e1", "s", 3, 4)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if first.Events != 3 || len(first.Inserted) != 3 || again.Events != 1 || len(again.Inserted) != 1 || again.Duplicates != 4 {
		t.Fatalf("inserted %d then %d (dupes %d)", first.Events, again.Events, again.Duplicates)
	}
	if e := epoch(t, x, "a", "e1"); e.Received != 4 || e.HighSeq != 4 || e.Missing() != 0 {
		t.Fatalf("epoch %+v", e)
	}
	if got := readAll(t, x, pattern.Scan{}); len(got) != 4 {
		t.Fatalf("the index holds %d events, want 4", len(got))
	}
}

// TestApplyResendWithOtherBoundaries re-sends events in batches cut
// differently, interleaved with another stream's seqs, as an edge does after
// a crash: every seq is stored once.
func TestApplyResendWithOtherBoundaries(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[uint64]bool{}
	for round := range 50 {
		lo := uint64(1 + rng.IntN(300))
		var seqs []uint64
		for s := lo; s < lo+uint64(1+rng.IntN(60)); s++ {
			if s%3 != uint64(round%3) { // another stream has the other seqs
				seqs = append(seqs, s)
			}
		}
		if len(seqs) == 0 {
			continue
		}
		if _, err := x.Apply(ctx, []Message{eventsMsg("a", "e", "s", seqs...)}, false); err != nil {
			t.Fatal(err)
		}
		for _, s := range seqs {
			want[s] = true
		}
	}
	got := readAll(t, x, pattern.Scan{})
	seen := map[uint64]int{}
	for _, ev := range got {
		seen[ev.Seq]++
		if string(ev.Data) != fmt.Sprintf(`{"n":%d}`, ev.Seq) {
			t.Fatalf("seq %d holds %s", ev.Seq, ev.Data)
		}
	}
	for s := range want {
		if seen[s] != 1 {
			t.Fatalf("seq %d stored %d times", s, seen[s])
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d seqs stored, %d sent", len(seen), len(want))
	}
	if e := epoch(t, x, "a", "e"); e.Received != int64(len(want)) {
		t.Fatalf("received %d, want %d", e.Received, len(want))
	}
}

func TestGapsAccountForEverySeq(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	// seqs 1-3 received, 4-6 dropped (buffer-full), 7 missing, 8-9 received on
	// another stream, 10-11 dropped by max-age but 11 arrived anyway.
	msgs := []Message{
		eventsMsg("a", "e1", "s", 1, 2, 3),
		dropMsg("a", stream.Drop{Epoch: "e1", FirstSeq: 4, LastSeq: 6, Count: 3, Reason: stream.ReasonBufferFull}),
		eventsMsg("a", "e1", "t", 8, 9),
		dropMsg("a", stream.Drop{Epoch: "e1", FirstSeq: 10, LastSeq: 11, Count: 2, Reason: stream.ReasonMaxAge}),
	}
	if _, err := x.Apply(ctx, msgs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Apply(ctx, []Message{eventsMsg("a", "e1", "s", 11)}, false); err != nil {
		t.Fatal(err)
	}
	gaps, err := x.Gaps(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []stream.Drop{
		{Epoch: "e1", FirstSeq: 4, LastSeq: 6, Count: 3, Reason: stream.ReasonBufferFull},
		{Epoch: "e1", FirstSeq: 7, LastSeq: 7, Count: 1, Reason: stream.ReasonMissing},
		{Epoch: "e1", FirstSeq: 10, LastSeq: 11, Count: 1, Reason: stream.ReasonMaxAge},
	}
	if !reflect.DeepEqual(gaps, want) {
		t.Fatalf("gaps\n got %+v\nwant %+v", gaps, want)
	}
	e := epoch(t, x, "a", "e1")
	if e.Received+e.Dropped+e.Missing() != e.HighSeq || e.Dropped != 4 || e.Missing() != 1 {
		t.Fatalf("received %d + dropped %d + missing %d != high %d", e.Received, e.Dropped, e.Missing(), e.HighSeq)
	}
	// The same drop report again changes nothing.
	if _, err := x.Apply(ctx, msgs[1:2], false); err != nil {
		t.Fatal(err)
	}
	if again := epoch(t, x, "a", "e1"); again.Dropped != 4 {
		t.Fatalf("repeated drop report counted twice: %+v", again)
	}
}

func TestBadFramesCountOnKnownNodesOnly(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	bad := func(node string) Message { return Message{Node: node, Bad: fmt.Errorf("garbage"), At: 1} }
	if _, err := x.Apply(ctx, []Message{eventsMsg("a", "e1", "s", 1)}, false); err != nil {
		t.Fatal(err)
	}
	a, err := x.Apply(ctx, []Message{bad("ghost"), bad("a"), bad("a")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Bad != 3 {
		t.Fatalf("bad %d, want 3", a.Bad)
	}
	nodes, _ := x.LoadNodes(ctx)
	if len(nodes) != 1 || nodes[0].Node != "a" || nodes[0].BadFrames != 2 {
		t.Fatalf("nodes %+v: want only a, with 2 bad frames", nodes)
	}
}

func TestSaveHeartbeatsKeepsNewest(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	if err := x.SaveHeartbeats(ctx, []HeartbeatRow{{Node: "a", At: 20, Epoch: "e2", Heartbeat: `{"buffered":7}`}, {Node: "b", At: 5, Epoch: "e", Heartbeat: `{}`}}); err != nil {
		t.Fatal(err)
	}
	if err := x.SaveHeartbeats(ctx, []HeartbeatRow{{Node: "a", At: 10, Epoch: "e1", Heartbeat: `{"buffered":99}`}}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := x.LoadNodes(ctx)
	if len(nodes) != 2 || nodes[0].LastHB != 20 || nodes[0].Epoch != "e2" || nodes[0].Heartbeat != `{"buffered":7}` || nodes[0].FirstSeen != 20 {
		t.Fatalf("nodes %+v: want a's newest heartbeat", nodes)
	}
}

// TestReadsInTimeAndNodeOrder stores a fleet's events with times spread over
// hours, so batches are cut into several chunks, and reads them back through
// every kind of read.
func TestReadsInTimeAndNodeOrder(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var all []stream.Event
	for n := range 12 {
		node := fmt.Sprintf("n%02d", n)
		for b := range 5 {
			recs := make([]stream.Record, 200)
			for i := range recs {
				seq := uint64(b*200 + i + 1)
				ts := base + rng.Int64N(int64(3*time.Hour))
				recs[i] = stream.Record{Seq: seq, TS: ts, Data: json.RawMessage(fmt.Sprintf(`{"n":"%s","s":%d}`, node, seq))}
				all = append(all, stream.Event{Node: node, Epoch: "e", Seq: seq, Stream: "s", TS: ts, Received: 1, Data: recs[i].Data})
			}
			m := Message{Frame: &stream.Frame{Kind: stream.KindEvents, Node: node, Epoch: "e", Stream: "s", Events: recs}, At: 1}
			if _, err := x.Apply(ctx, []Message{m}, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	var chunks, maxSpan int64
	if err := x.r.QueryRowContext(ctx, "SELECT count(*), max(max_ts - min_ts) FROM chunks").Scan(&chunks, &maxSpan); err != nil {
		t.Fatal(err)
	}
	if chunks <= 60 || maxSpan > MaxChunkSpan {
		t.Fatalf("%d chunks with a widest span of %v: batches spanning hours must be cut", chunks, time.Duration(maxSpan))
	}
	key := func(e stream.Event) string { return fmt.Sprintf("%s/%d", e.Node, e.Seq) }
	sortByKey := func(evs []stream.Event) {
		slices.SortFunc(evs, func(a, b stream.Event) int { return cmp.Compare(key(a), key(b)) })
	}
	from, to := base+int64(time.Hour), base+int64(90*time.Minute)
	for _, tt := range []struct {
		name string
		s    pattern.Scan
		keep func(stream.Event) bool
	}{
		{"everything", pattern.Scan{}, func(stream.Event) bool { return true }},
		{"range", pattern.Scan{From: from, To: to, HasFrom: true, HasTo: true}, func(e stream.Event) bool { return e.TS >= from && e.TS < to }},
		{"two nodes", pattern.Scan{Nodes: []string{"n03", "n07"}}, func(e stream.Event) bool { return e.Node == "n03" || e.Node == "n07" }},
		{"one node in range", pattern.Scan{Nodes: []string{"n05"}, From: from, HasFrom: true}, func(e stream.Event) bool { return e.Node == "n05" && e.TS >= from }},
		{"in node order", pattern.Scan{Order: pattern.ByNode, To: to, HasTo: true}, func(e stream.Event) bool { return e.TS < to }},
		{"other stream", pattern.Scan{Stream: "t"}, func(stream.Event) bool { return false }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []stream.Event
			for _, e := range all {
				if tt.keep(e) {
					want = append(want, e)
				}
			}
			got := readAll(t, x, tt.s)
			var inRange []stream.Event
			for _, e := range got {
				if tt.keep(e) {
					inRange = append(inRange, e)
				}
			}
			sortByKey(want)
			sortByKey(inRange)
			if len(inRange) != len(want) || (len(want) > 0 && !reflect.DeepEqual(inRange, want)) {
				t.Fatalf("read %d events in range, want %d", len(inRange), len(want))
			}
			// Chunks come in the order asked for.
			it, _ := x.Chunks(ctx, tt.s)
			defer it.Close()
			var prev *pattern.Chunk
			for it.Next() {
				c := *it.Chunk()
				if prev != nil {
					if tt.s.Order == pattern.ByNode && (c.Node < prev.Node || c.Node == prev.Node && c.MinTS < prev.MinTS) ||
						tt.s.Order == pattern.ByTime && c.MinTS < prev.MinTS {
						t.Fatalf("chunk %s@%d after %s@%d", c.Node, c.MinTS, prev.Node, prev.MinTS)
					}
				}
				prev = &c
			}
			// Each sees every chunk once, on its workers.
			var mu chan struct{} = make(chan struct{}, 1)
			mu <- struct{}{}
			var each []stream.Event
			err := x.Each(ctx, tt.s, func(w int, c *pattern.Chunk) error {
				if w < 0 || w >= x.Workers() {
					return fmt.Errorf("worker %d", w)
				}
				var b pattern.ChunkBuf
				evs, err := c.Load(&b)
				if err != nil {
					return err
				}
				<-mu
				for _, e := range evs {
					if tt.keep(e) {
						e.Data = slices.Clone(e.Data)
						each = append(each, e)
					}
				}
				mu <- struct{}{}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			sortByKey(each)
			if len(each) != len(want) || (len(want) > 0 && !reflect.DeepEqual(each, want)) {
				t.Fatalf("Each saw %d events in range, want %d", len(each), len(want))
			}
		})
	}
}

func TestEachStopsAtTheFirstError(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	for b := range 20 {
		if _, err := x.Apply(ctx, []Message{eventsMsg("a", "e", "s", uint64(b*2000+1), uint64(b*2000+1500))}, false); err != nil {
			t.Fatal(err)
		}
	}
	boom := fmt.Errorf("boom")
	err := x.Each(ctx, pattern.Scan{}, func(int, *pattern.Chunk) error { return boom })
	if err != boom {
		t.Fatalf("Each returned %v, want fn's error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := x.Each(cctx, pattern.Scan{}, func(int, *pattern.Chunk) error { return nil }); err == nil {
		t.Fatal("Each over a cancelled context returned nil")
	}
}

func TestOldSchemaIsMovedAsideAndRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE events (x); " + sqlitex.SetVersionSQL(1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	x := New(path)
	if err := x.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !x.Created() {
		t.Fatal("an index of schema version 1 was kept instead of rebuilt")
	}
	if _, err := os.Stat(path + ".old"); err != nil {
		t.Fatalf("the old file was not kept aside: %v", err)
	}
	x.Close()
	y := New(path)
	if err := y.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if y.Created() {
		t.Fatal("a current index was rebuilt")
	}
}

func TestPrune(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	old := eventsMsg("a", "e", "s", 1, 2, 3)
	old.At = 100
	fresh := eventsMsg("a", "e", "s", 4, 5)
	fresh.At = 200
	if _, err := x.Apply(ctx, []Message{old, fresh}, false); err != nil {
		t.Fatal(err)
	}
	n, err := x.Prune(ctx, 150)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	if got := readAll(t, x, pattern.Scan{}); len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("after pruning: %+v", got)
	}
	// Pruned events still count as received, and are not sent again.
	if e := epoch(t, x, "a", "e"); e.Received != 5 || e.Missing() != 0 {
		t.Fatalf("epoch after pruning %+v", e)
	}
	if a, _ := x.Apply(ctx, []Message{old}, false); a.Events != 0 {
		t.Fatal("a pruned event was stored again")
	}
}

// FuzzDecodeChunk feeds damaged chunk data to the decoder: it must refuse it
// with an error or decode exactly Count events, never panic.
func FuzzDecodeChunk(f *testing.F) {
	c := encodeChunk("n", "e", "s", []stream.Record{{Seq: 2, TS: 5, Data: json.RawMessage(`{"a":1}`)}, {Seq: 1, TS: 9, Data: json.RawMessage(`{}`)}})
	raw, _ := zdec.DecodeAll(c.data, nil)
	f.Add(c.data, codecZstd, c.raw, 2)
	f.Add(raw, codecNone, len(raw), 2)
	f.Fuzz(func(t *testing.T, data []byte, codec, raw, count int) {
		meta := pattern.Chunk{Node: "n", Epoch: "e", Stream: "s", Count: count}
		var b pattern.ChunkBuf
		evs, err := decodeChunk(&b, &meta, 1, codec, raw, data)
		if err == nil && len(evs) != count {
			t.Fatalf("decoded %d events of a chunk of %d", len(evs), count)
		}
	})
}

// TestUncheckedDataIsChecked applies frames decoded without the data check,
// prepared and not: one whose data is not all JSON objects in UTF-8 is
// rejected whole, the others are stored.
func TestUncheckedDataIsChecked(t *testing.T) {
	x := openIndex(t)
	ctx := context.Background()
	msg := func(seq uint64, data ...string) Message {
		recs := make([]stream.Record, len(data))
		for i, d := range data {
			recs[i] = stream.Record{Seq: seq + uint64(i), TS: int64(seq+uint64(i)) * 1e6, Data: json.RawMessage(d)}
		}
		return Message{Node: "a", Frame: &stream.Frame{Kind: stream.KindEvents, Node: "a", Epoch: "e", Stream: "s", Events: recs}, At: 1, Unchecked: true}
	}
	for _, prepare := range []bool{false, true} {
		base := uint64(1)
		if prepare {
			base = 101
		}
		msgs := []Message{msg(base, `{"a":1}`, `{"a":2}`), msg(base+10, `{"a":1}`, `[1]`), msg(base+20, `{"a":"\xff"}`, "{\"a\":\"\xff\"}"),
			msg(base+30, `{"a":1,"a":2}`, `{"b":1e999}`), msg(base+40, `{"a":1,"a":2}`, `{"b":`)}
		if prepare {
			Prepare(msgs)
		}
		a, err := x.Apply(ctx, msgs, false)
		if err != nil {
			t.Fatal(err)
		}
		if a.Events != 4 || a.Bad != 3 {
			t.Fatalf("prepared %v: %d events, %d bad; want 4 and 3", prepare, a.Events, a.Bad)
		}
		for i, want := range []bool{false, true, true, false, true} {
			if (msgs[i].Bad != nil) != want || (msgs[i].Bad != nil && !errors.Is(msgs[i].Bad, stream.ErrBadFrame)) {
				t.Fatalf("prepared %v: message %d: bad %v", prepare, i, msgs[i].Bad)
			}
		}
	}
}

// BenchmarkApply measures the index's write path: one transaction per 10 frames
// of 1,000 events of about 180 bytes, as the materializer applies them.
func BenchmarkApply(b *testing.B) {
	x := openIndex(b)
	data := json.RawMessage(`{"sensor":"sensor-001","site":"north","temp":21.52,"humidity":50.5,"gps":{"lat":50.1,"lon":4.2},"status":"ok","battery":0.87,"fw":"1.4.2-rc1"}`)
	seq := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs := make([]Message, 10)
		for m := range msgs {
			recs := make([]stream.Record, 1000)
			for r := range recs {
				recs[r] = stream.Record{Seq: seq, TS: int64(seq) * 1e6, Data: data}
				seq++
			}
			msgs[m] = Message{Frame: &stream.Frame{Kind: stream.KindEvents, Node: "n", Epoch: "e", Stream: "s", Events: recs}, At: 1}
		}
		if _, err := x.Apply(context.Background(), msgs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "events/s")
}
