package stream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// goldenV1 are the frames whose bytes, as the version 1 encoder wrote them before
// version 2 existed, are kept in testdata/v1-*.bin. They must never be
// regenerated: they are what old edges send, and the hub must go on reading them.
var goldenV1 = []struct {
	file  string
	frame Frame
}{
	{"v1-events.bin", Frame{Version: Version1, Kind: KindEvents, Node: "pi-4b", Epoch: "01HZX3K9Q7", Stream: "sensors", Events: []Record{
		{Seq: 1, TS: 1_700_000_000_123_456_789, Data: json.RawMessage(`{"temp":21.5,"site":"north"}`)},
		{Seq: 2, TS: 1_699_999_999_000_000_000, Data: json.RawMessage(`{"a":{"b":[1,2,{"c":null}]},"s":"é\u00e9"}`)},
		{Seq: 300, TS: 1_700_000_100_000_000_000, Data: json.RawMessage(` { } `)},
		{Seq: 1 << 40, TS: -5, Data: json.RawMessage(`{"big":1e300}`)},
	}}},
	{"v1-drops.bin", Frame{Version: Version1, Kind: KindDrops, Node: "edge_7", Epoch: "ep", Drops: []Drop{
		{Epoch: "ep", FirstSeq: 3, LastSeq: 9, Count: 7, Reason: ReasonBufferFull},
		{Epoch: "old", FirstSeq: 1, LastSeq: 100, Count: 40, Reason: ReasonMaxAge},
		{Epoch: "ep", FirstSeq: 20, LastSeq: 20, Count: 1, Reason: ReasonCorruptBuffer},
	}}},
	{"v1-counters.bin", Frame{Version: Version1, Kind: KindCounters, Node: "n", Epoch: "e1", Counters: []CounterState{
		{Name: "doors", P: 10, N: 3}, {Name: "faults-x", P: 0, N: 0},
	}}},
	{"v1-heartbeat.bin", Frame{Version: Version1, Kind: KindHeartbeat, Node: "n", Epoch: "e1", Heartbeat: &Heartbeat{
		Buffered: 5, BufferedBytes: 4096, Dropped: 2, LastSeq: 9, AckedSeq: 4, Sent: 4, Time: 1_700_000_000_000_000_000,
	}}},
}

// encodeV1 encodes f with the version 1 encoder.
func encodeV1(t testing.TB, f Frame) []byte {
	t.Helper()
	var b []byte
	var err error
	switch f.Kind {
	case KindEvents:
		b, err = EncodeEvents(nil, f.Node, f.Epoch, f.Stream, f.Events)
	case KindDrops:
		b, err = EncodeControl(f.Kind, f.Node, f.Epoch, f.Drops)
	case KindCounters:
		b, err = EncodeControl(f.Kind, f.Node, f.Epoch, f.Counters)
	case KindHeartbeat:
		b, err = EncodeControl(f.Kind, f.Node, f.Epoch, *f.Heartbeat)
	}
	if err != nil {
		t.Fatalf("encode %v: %v", f.Kind, err)
	}
	return b
}

func readGolden(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenV1 checks that the version 1 encoder still writes the kept bytes and
// that Decode still reads them to the same frame.
func TestGoldenV1(t *testing.T) {
	for _, g := range goldenV1 {
		t.Run(g.file, func(t *testing.T) {
			want := readGolden(t, g.file)
			if got := encodeV1(t, g.frame); string(got) != string(want) {
				t.Errorf("EncodeEvents/EncodeControl wrote\n%x\nwant (testdata)\n%x", got, want)
			}
			f, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(*f, g.frame) {
				t.Errorf("Decode:\n got %+v\nwant %+v", *f, g.frame)
			}
		})
	}
}
