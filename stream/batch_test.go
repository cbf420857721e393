package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// roundTripFrames are frames of every kind, as Decode returns them from version
// 2 (for version 1, Ingest is zero).
func roundTripFrames() []Frame {
	return []Frame{
		{Kind: KindEvents, Node: "pi-1", Epoch: "ep0", Stream: "temps", Events: []Record{
			{Seq: 1, TS: 1_700_000_000_000_000_000, Ingest: 1_700_000_000_500_000_000, Data: json.RawMessage(`{"temp":21.5}`)},
			{Seq: 2, TS: 1_699_999_999_000_000_000, Ingest: 1_700_000_000_400_000_000, Data: json.RawMessage(`{"a":{"b":[1,2]}}`)},
			{Seq: 7, TS: -5, Ingest: 0, Data: json.RawMessage(`{}`)},
			// Deltas that wrap around int64 still round-trip.
			{Seq: 8, TS: math.MaxInt64, Ingest: math.MinInt64, Data: json.RawMessage(` {"x" : null} `)},
			{Seq: math.MaxUint64, TS: math.MinInt64, Ingest: math.MaxInt64, Data: json.RawMessage(`{}`)},
		}},
		// Big enough for several zstd blocks.
		{Kind: KindEvents, Node: "bench", Epoch: "01HZX3K9Q7", Stream: "sensors", Events: benchRecords(1000, 0)},
		{Kind: KindDrops, Node: "n", Epoch: "e1", Drops: []Drop{
			{Epoch: "e1", FirstSeq: 3, LastSeq: 9, Count: 7, Reason: ReasonBufferFull},
			{Epoch: "e0", FirstSeq: 1, LastSeq: 1, Count: 1, Reason: ReasonCorruptBuffer},
		}},
		{Kind: KindDrops, Node: "n", Epoch: "e1", Drops: []Drop{}},
		{Kind: KindCounters, Node: "n", Epoch: "e1", Counters: []CounterState{{Name: "doors", P: 10, N: 3}, {Name: "x", P: math.MaxInt64},
			{Name: "temp", Kind: CounterMax, Value: 21.5, Set: true}, {Name: "low", Kind: CounterMin, Value: -3e-9, Set: true},
			{Name: "fresh", Kind: CounterMin}, {Name: "mode", Kind: CounterLast, Value: 2, Set: true, Wall: 1_700_000_000_000, Logical: 7},
			{Name: "idle", Kind: CounterLast}}},
		{Kind: KindHeartbeat, Node: "n", Epoch: "e1", Heartbeat: &Heartbeat{Buffered: 5, BufferedBytes: 1 << 40, Dropped: 1, LastSeq: 9, AckedSeq: 8, Sent: 8, Time: 42}},
	}
}

// encodeFrame encodes f in f.Version with f.Codec, with the encoders a caller
// would use for its kind.
func encodeFrame(f *Frame) ([]byte, error) {
	var v any
	switch f.Kind {
	case KindEvents:
		if f.Version == Version1 {
			return EncodeEvents(nil, f.Node, f.Epoch, f.Stream, f.Events)
		}
		return EncodeEventsV2(nil, f.Codec, f.Node, f.Epoch, f.Stream, f.Events)
	case KindDrops:
		v = f.Drops
	case KindCounters:
		v = f.Counters
	case KindHeartbeat:
		v = f.Heartbeat
	}
	if f.Version == Version1 {
		return EncodeControl(f.Kind, f.Node, f.Epoch, v)
	}
	return EncodeControlV2(f.Kind, f.Codec, f.Node, f.Epoch, v)
}

func TestRoundTrip(t *testing.T) {
	for _, w := range wireCases {
		for _, in := range roundTripFrames() {
			t.Run(fmt.Sprintf("%s/%v/%d", w.name, in.Kind, len(in.Events)), func(t *testing.T) {
				want := in
				want.Version, want.Codec = w.version, w.codec
				b, err := encodeFrame(&want)
				if err != nil {
					t.Fatal(err)
				}
				if b[0] != w.version || Kind(b[1]) != in.Kind || (w.version == Version2 && Codec(b[2]) != w.codec) {
					t.Fatalf("header % x, want version %d, kind %d, codec %d", b[:3], w.version, in.Kind, w.codec)
				}
				if w.version == Version1 {
					want.Events = slices.Clone(want.Events)
					for i := range want.Events {
						want.Events[i].Ingest = 0
					}
				}
				got, err := Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, want) {
					t.Fatalf("Decode:\n got %+v\nwant %+v", *got, want)
				}
			})
		}
	}
}

// TestZstdShrinks checks that the zstd codec is in use: bench events shrink to
// under a third.
func TestZstdShrinks(t *testing.T) {
	recs := benchRecords(100, 0)
	none, _ := EncodeEventsV2(nil, CodecNone, "n", "e", "s", recs)
	z, _ := EncodeEventsV2(nil, CodecZstd, "n", "e", "s", recs)
	if 3*len(z) > len(none) {
		t.Fatalf("zstd frame %d bytes, none %d: want under a third", len(z), len(none))
	}
}

// TestV2Layout checks the encoders against frames assembled by hand from
// docs/wire-format.md.
func TestV2Layout(t *testing.T) {
	body := []byte{
		1, 'n', 2, 'e', '1', 1, 's', // node, epoch, stream
		2,                   // count
		5, 0xc8, 0x01, 0x14, // seq 5, ts 100, ingest 10
		2, '{', '}',
		2, 0x03, 0x01, // seq +2 = 7, ts -2 = 98, ingest -1 = 9
		2, '{', '}',
	}
	recs := []Record{{Seq: 5, TS: 100, Ingest: 10, Data: json.RawMessage(`{}`)}, {Seq: 7, TS: 98, Ingest: 9, Data: json.RawMessage(`{}`)}}
	want := appendCRC(append([]byte{2, 1, 0}, body...), 0)
	got, err := EncodeEventsV2(nil, CodecNone, "n", "e1", "s", recs)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("EncodeEventsV2 none = % x, %v\nwant % x", got, err, want)
	}
	got, err = EncodeEventsV2([]byte("keep"), CodecZstd, "n", "e1", "s", recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:7], []byte{'k', 'e', 'e', 'p', 2, 1, 1}) {
		t.Fatalf("EncodeEventsV2 zstd header % x", got[:7])
	}
	got = got[4:]
	if binary.LittleEndian.Uint32(got[len(got)-4:]) != crc32.Checksum(got[:len(got)-4], castagnoli) {
		t.Fatal("CRC does not cover the header and compressed body")
	}
	// Any zstd decoder reads the body back.
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	defer d.Close()
	if dec, err := d.DecodeAll(got[3:len(got)-4], nil); err != nil || !bytes.Equal(dec, body) {
		t.Fatalf("zstd body decodes to % x, %v; want % x", dec, err, body)
	}
	ctl := []byte{1, 'n', 2, 'e', '1', 4, '[', '{', '}', ']'}
	got, err = EncodeControlV2(KindCounters, CodecNone, "n", "e1", []struct{}{{}})
	if want := appendCRC(append([]byte{2, 3, 0}, ctl...), 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("EncodeControlV2 = % x, %v\nwant % x", got, err, want)
	}
}

func TestEncodeV2Rejects(t *testing.T) {
	one := []Record{{Seq: 1, Data: json.RawMessage(`{}`)}}
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"codec", func() error { _, err := EncodeEventsV2(nil, 9, "n", "e", "s", one); return err }, "unknown codec 9"},
		{"control codec", func() error { _, err := EncodeControlV2(KindHeartbeat, 2, "n", "e", Heartbeat{}); return err }, "unknown codec 2"},
		{"no records", func() error { _, err := EncodeEventsV2(nil, CodecZstd, "n", "e", "s", nil); return err }, "0 records"},
		{"seq order", func() error {
			_, err := EncodeEventsV2(nil, CodecZstd, "n", "e", "s", append(one, one...))
			return err
		}, "not increasing"},
		{"control kind", func() error { _, err := EncodeControlV2(KindEvents, CodecNone, "n", "e", nil); return err }, "not a control kind"},
		{"body limit", func() error {
			_, err := encodeV2(nil, CodecZstd, KindHeartbeat, 0, func(b []byte) ([]byte, error) { return make([]byte, MaxBodyBytes+1), nil })
			return err
		}, "over the 67108864 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := EncodeEvents(nil, "n", "e", "s", []Record{{Seq: 1, Data: json.RawMessage(`{}`)}})
	withCRC := func(b []byte) []byte { return appendCRC(b, 0) }
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"empty", nil, "too short"},
		{"version", append([]byte{9}, good[1:]...), "unknown version 9"},
		{"checksum", append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), "checksum"},
		{"truncated", withCRC(good[:len(good)-6]), "more than the frame can hold"},
		{"truncated data", withCRC([]byte{1, 1, 1, 'n', 1, 'e', 1, 's', 1, 1, 0, 50, '{', '}', 0, 0, 0, 0, 0}), "runs past the end"},
		{"kind", withCRC([]byte{1, 77, 1, 'n', 1, 'e'}), "unknown kind 77"},
		{"bad node", withCRC(append([]byte{1, 1, 3}, "a.b"...)), `node name "a.b"`},
		{"not object", mustEvents(t, []Record{{Seq: 1, Data: json.RawMessage(`[1]`)}}), "not a JSON object"},
		{"zero seq", mustEvents(t, []Record{{Seq: 0, Data: json.RawMessage(`{}`)}}), "seqs start at 1"},
		{"bad drop", mustControl(t, KindDrops, []Drop{{Epoch: "e", FirstSeq: 5, LastSeq: 2, Count: 1, Reason: ReasonMaxAge}}), "empty"},
		{"negative counter", mustControl(t, KindCounters, []CounterState{{Name: "c", P: -1}}), "negative"},
		{"unknown field", mustControl(t, KindHeartbeat, map[string]int{"bogus": 1}), "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.frame)
			if err == nil || !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want ErrBadFrame containing %q", err, tt.want)
			}
		})
	}
}

func mustEvents(t *testing.T, recs []Record) []byte {
	t.Helper()
	// Bypass EncodeEvents' checks to build frames a hostile peer could send.
	b := []byte{Version, byte(KindEvents)}
	b = appendString(b, "n")
	b = appendString(b, "e")
	b = appendString(b, "s")
	b = append(b, byte(len(recs)))
	for _, r := range recs {
		b = append(b, byte(r.Seq), 0, byte(len(r.Data)))
		b = append(b, r.Data...)
	}
	return appendCRC(b, 0)
}

func mustControl(t *testing.T, k Kind, v any) []byte {
	t.Helper()
	b, err := EncodeControl(k, "n", "e", v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"a", true}, {"pi-4_b", true}, {"0", true}, {strings.Repeat("x", 64), true},
		{"", false}, {"_hb", false}, {"-a", false}, {"a.b", false}, {"a*", false}, {"a>", false},
		{"a b", false}, {strings.Repeat("x", 65), false}, {"é", false},
	}
	for _, tt := range tests {
		err := ValidateName("node", tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	// The message names the character as written and counts characters.
	for _, tt := range []struct{ in, msg string }{
		{"été", `stream name "été" has 'é' at position 1`},
		{"ab€c", `stream name "ab€c" has '€' at position 3`},
		{"a.b", `stream name "a.b" has '.' at position 2`},
		{"a\xffb", `stream name "a\xffb" is not valid UTF-8 at position 2`},
	} {
		if err := ValidateName("stream", tt.in); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ValidateName(%q) = %v, want it to say %s", tt.in, err, tt.msg)
		}
	}
	for _, in := range []string{"My Host.local", "__x", "", "a.b.c"} {
		if err := ValidateName("node", CleanName(in)); err != nil {
			t.Errorf("CleanName(%q) = %q: %v", in, CleanName(in), err)
		}
	}
}

func TestEventTime(t *testing.T) {
	tests := []struct {
		raw  string
		ns   int64
		ok   bool
		fail bool
	}{
		{``, 0, false, false},
		{`"2024-01-02T03:04:05.5Z"`, 1704164645500000000, true, false},
		{`1704164645500`, 1704164645500000000, true, false},
		{`"yesterday"`, 0, false, true},
		{`1.5`, 0, false, true},
		{`true`, 0, false, true},
		// UnixNano wraps outside 1677-09-21 to 2262-04-11: these once became
		// 1816-03-30 and 1754.
		{`"9999-12-31T23:59:59Z"`, 0, false, true},
		{`"0001-01-01T00:00:00Z"`, 0, false, true},
		{`"2262-01-01T00:00:00Z"`, 0, false, true},
		{`"1677-12-31T23:59:59Z"`, 0, false, true},
		{`"2261-12-31T23:59:59Z"`, 9214646399000000000, true, false},
		{`"1678-01-01T00:00:00Z"`, -9214560000000000000, true, false},
		// The year is the UTC one: this is 2261 in UTC.
		{`"2262-01-01T03:00:00+05:00"`, 9214639200000000000, true, false},
	}
	for _, tt := range tests {
		ns, ok, err := EventTime(json.RawMessage(tt.raw))
		if ns != tt.ns || ok != tt.ok || (err != nil) != tt.fail {
			t.Errorf("EventTime(%s) = %d, %v, %v", tt.raw, ns, ok, err)
		}
		if err != nil && strings.Contains(tt.raw, "-") && !strings.Contains(err.Error(), "outside the years 1678 to 2261") {
			t.Errorf("EventTime(%s): %q does not name the range", tt.raw, err)
		}
	}
}

// FuzzDecode checks that Decode refuses every malformed frame with ErrBadFrame
// and that whatever it accepts re-encodes, in the same version and codec, to a
// frame that decodes to the same Frame. Each input is also tried with its last
// four bytes replaced by the right CRC, so that the fuzzer reaches the bodies.
func FuzzDecode(f *testing.F) {
	for _, w := range wireCases {
		for _, in := range roundTripFrames() {
			in.Version, in.Codec = w.version, w.codec
			if len(in.Events) > 10 {
				in.Events = in.Events[:10]
			}
			b, err := encodeFrame(&in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, g := range goldenV1 {
		f.Add(readGolden(f, g.file))
	}
	f.Add([]byte{1, 1})
	f.Add([]byte{2, 1, 1, 0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add(counterFrame(`[{"name":"a","p":1,"n":2},{"name":"b","kind":"max","value":-0.5},{"name":"c","kind":"last","value":1,"wall":9,"logical":0}]`))
	f.Add(counterFrame(`[{"name":"a","kind":"sum","p":0,"n":0},{"name":"b","kind":"min","value":null},{"name":"c","kind":"last","value":null}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= 4 {
			checkDecode(t, appendCRC(slices.Clone(b[:len(b)-4]), 0))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	fr, err := Decode(b)
	if err != nil {
		if !errors.Is(err, ErrBadFrame) {
			t.Fatalf("error %v does not wrap ErrBadFrame", err)
		}
		return
	}
	for _, c := range fr.Counters {
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted invalid counter state %+v: %v", c, err)
		}
	}
	again, err := encodeFrame(fr)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	fr2, err := Decode(again)
	if err != nil {
		t.Fatalf("decode re-encoded frame: %v", err)
	}
	if !reflect.DeepEqual(fr, fr2) {
		t.Fatalf("re-encoded frame decodes to\n%+v\nwant %+v", fr2, fr)
	}
}
