package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// v2 returns a version 2 frame of kind and codec around body, as a hostile peer
// could send it: nothing is checked.
func v2(kind Kind, codec Codec, body []byte) []byte {
	return appendCRC(append([]byte{Version2, byte(kind), byte(codec)}, body...), 0)
}

func zstdOf(body []byte) []byte { return zstdEncoder().EncodeAll(body, nil) }

// Hand-made zstd frames (RFC 8878): magic, frame header descriptor, then the
// window descriptor (window 2^(10+exp)) unless single segment.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zstdBlock returns a block header and content: typ 0 raw, 1 RLE, 2 compressed.
func zstdBlock(last bool, typ, size int, content ...byte) []byte {
	h := uint32(typ)<<1 | uint32(size)<<3
	if last {
		h |= 1
	}
	return append([]byte{byte(h), byte(h >> 8), byte(h >> 16)}, content...)
}

// rleBomb returns a zstd frame of blocks RLE blocks of 128 KiB each that
// declares a content size of declared bytes (single segment), or none when
// declared is 0 (window 1 MiB).
func rleBomb(blocks int, declared uint64) []byte {
	b := append([]byte(nil), zstdMagic...)
	if declared > 0 {
		b = append(b, 0xe0) // single segment, 8-byte content size
		b = binary.LittleEndian.AppendUint64(b, declared)
	} else {
		b = append(b, 0x00, 10<<3)
	}
	for i := range blocks {
		b = append(b, zstdBlock(i == blocks-1, 1, 128<<10, '{')...)
	}
	return b
}

// compressedBomb returns a zstd frame that declares MaxBodyBytes and holds
// twice as many compressed blocks as that needs, each of which decodes to 32
// KiB.
func compressedBomb(t *testing.T) []byte {
	const each = 32 << 10
	z := zstdOf(bytes.Repeat([]byte("abcdefgh"), each/8))
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		t.Fatal(err)
	}
	if typ := z[h.HeaderSize] >> 1 & 3; typ != 2 || !h.FirstBlock.Last {
		t.Fatalf("want one compressed block, got type %d: %+v", typ, h)
	}
	blk := z[h.HeaderSize:]
	blk[0] &^= 1 // not the last
	b := append(append([]byte(nil), zstdMagic...), 0xe0)
	b = binary.LittleEndian.AppendUint64(b, MaxBodyBytes)
	for range 2 * MaxBodyBytes / each {
		b = append(b, blk...)
	}
	return append(b, zstdBlock(true, 0, 0)...)
}

func TestDecodeRejectsV2(t *testing.T) {
	one := []Record{{Seq: 1, TS: 1, Ingest: 2, Data: json.RawMessage(`{"x":1}`)}}
	good, _ := EncodeEventsV2(nil, CodecZstd, "n", "e", "s", one)
	body, _ := appendEvents(nil, "n", "e", "s", one, true)
	z := zstdOf(body)
	events := func(node string, recs []Record) []byte {
		b, err := appendEvents(nil, node, "e", "s", recs, true)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	control := func(k Kind, v any) []byte {
		b, err := appendControl(nil, k, "n", "e", v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Two records, the second cut inside its ingest varint.
	cutIngest := append(events("n", []Record{{Seq: 1, Data: json.RawMessage(`{"x":1234567}`)}}), 1, 0, 0x80)
	cutIngest[6] = 2 // count
	// Seq not increasing: the second record's seq delta is 0.
	sameSeq := append(events("n", []Record{{Seq: 1, Data: json.RawMessage(`{"x":1234567}`)}}), 0, 0, 0, 2, '{', '}')
	sameSeq[6] = 2
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"too short", []byte{2, 1, 0, 0, 0, 0}, "6 bytes is too short for a version 2 frame"},
		{"checksum", append(good[:len(good)-1:len(good)-1], good[len(good)-1]^0x80), "checksum"},
		{"checksum covers header", append([]byte{2, 1, 0}, good[3:]...), "checksum"},
		{"unknown codec", v2(KindEvents, 7, body), "unknown codec 7 at byte 2"},
		{"unknown kind", v2(9, CodecZstd, z), "unknown kind 9 at byte 1"},
		{"kind 0", v2(0, CodecNone, body), "unknown kind 0 at byte 1"},
		{"empty zstd body", v2(KindEvents, CodecZstd, nil), "zstd body at byte 3: header: unexpected EOF"},
		{"not zstd", v2(KindEvents, CodecZstd, body), "zstd body at byte 3: header: invalid input: magic number mismatch"},
		{"skippable", v2(KindEvents, CodecZstd, append([]byte{0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i'}, z...)), "skippable frame"},
		{"dictionary", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0x21, 7, 1), zstdBlock(true, 0, 1, 'x')...)), "dictionary 7"},
		{"undeclared size", v2(KindEvents, CodecZstd, rleBomb(1, 0)), "frame does not declare its content size"},
		{"declared 1 GiB", v2(KindEvents, CodecZstd, rleBomb(8192, 1<<30)), "declares 1073741824 bytes decoded, over the 67108864 byte limit"},
		{"lying RLE bomb", v2(KindEvents, CodecZstd, rleBomb(8192, 1<<20)), "declares 1048576 bytes decoded, its blocks hold 1073741824 to 1073741824"},
		{"declares more than it holds", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0xe0, 0, 0, 0, 4, 0, 0, 0, 0), zstdBlock(true, 0, 1, 'x')...)), "declares 67108864 bytes decoded, its blocks hold 1 to 1"},
		{"block too big", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0x20, 9), zstdBlock(true, 1, 200_000, 'x')...)), "block at byte 6 of it is 200000 bytes, over the 131072 byte limit"},
		{"window", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0x40, 17<<3, 1, 0), zstdBlock(true, 0, 1, 'x')...)), "window of 134217728 bytes is over the 67108864 byte limit"},
		{"reserved block", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0x20, 1), zstdBlock(true, 3, 1, 'x')...)), "block at byte 6 of it has the reserved type"},
		{"truncated zstd", v2(KindEvents, CodecZstd, z[:len(z)-2]), "runs past the end"},
		{"truncated block header", v2(KindEvents, CodecZstd, append(zstdMagic[:4:4], 0x20, 9, 0)), "block header at byte 6 of it is truncated"},
		{"trailing after zstd", v2(KindEvents, CodecZstd, append(z[:len(z):len(z)], z...)), "trailing bytes after the zstd frame at byte"},
		{"corrupt zstd", v2(KindEvents, CodecZstd, append(append(zstdMagic[:4:4], 0x20, 9), zstdBlock(true, 2, 5, 0xff, 0xff, 0xff, 0xff, 0xff)...)), "zstd body at byte 3: corrupt"},
		{"size mismatch", v2(KindEvents, CodecZstd, slices.Concat(zstdMagic, []byte{0x20, 100}, zstdBlock(false, 0, 3, 'a', 'b', 'c'), zstdBlock(true, 2, 5, 0xff, 0xff, 0xff, 0xff, 0xff))), "zstd body at byte 3: corrupt"},
		{"compressed bomb", v2(KindEvents, CodecZstd, compressedBomb(t)), "zstd body at byte 3: decodes to more than the 67108864 bytes it declares"},
		{"bad node", v2(KindEvents, CodecZstd, zstdOf(events("a.b", one))), `at byte 4 of the decoded body: invalid name: node name "a.b"`},
		{"bad node, none", v2(KindEvents, CodecNone, events("a.b", one)), `at byte 7: invalid name: node name "a.b"`},
		{"not object", v2(KindEvents, CodecZstd, zstdOf(events("n", []Record{{Seq: 1, Data: json.RawMessage(`[1]`)}}))), "record 0 (seq 1): data is not a JSON object"},
		{"zero seq", v2(KindEvents, CodecNone, events("n", []Record{{Seq: 0, Data: json.RawMessage(`{}`)}})), "seqs start at 1"},
		{"same seq", v2(KindEvents, CodecZstd, zstdOf(sameSeq)), "record 1: seq does not increase"},
		{"cut ingest", v2(KindEvents, CodecZstd, zstdOf(cutIngest)), "ingest: bad or truncated varint"},
		{"v1 body in v2", v2(KindEvents, CodecNone, body[:len(body)-1]), "runs past the end"},
		{"count 0", v2(KindEvents, CodecZstd, zstdOf(events("n", nil))), "count 0, want 1 to 100000"},
		{"trailing in body", v2(KindEvents, CodecZstd, zstdOf(append(body[:len(body):len(body)], 0))), "at byte 18 of the decoded body: 1 trailing bytes"},
		{"trailing in body, none", v2(KindEvents, CodecNone, append(body[:len(body):len(body)], 0)), "at byte 21: 1 trailing bytes"},
		{"bad drop", v2(KindDrops, CodecZstd, zstdOf(control(KindDrops, []Drop{{Epoch: "e", FirstSeq: 5, LastSeq: 2, Count: 1, Reason: ReasonMaxAge}}))), "drop 0: range 5..2 is empty"},
		{"negative counter", v2(KindCounters, CodecZstd, zstdOf(control(KindCounters, []CounterState{{Name: "c", P: -1}}))), "negative"},
		{"unknown field", v2(KindHeartbeat, CodecNone, control(KindHeartbeat, map[string]int{"bogus": 1})), "unknown field"},
		{"events body as heartbeat", v2(KindHeartbeat, CodecZstd, z), "of the decoded body: payload"},
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

// TestBombMemory checks that frames that decode to far more than the limit are
// refused having allocated at most the limit and a little.
func TestBombMemory(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		bound uint64
	}{
		// Refused from its block headers: nothing big is allocated.
		{"RLE", rleBomb(8192, MaxBodyBytes), 1 << 20},
		// Decoded into one buffer until it passes the declared size.
		{"compressed", compressedBomb(t), MaxBodyBytes + 1<<20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := v2(KindEvents, CodecZstd, tt.body)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(frame)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Decode error = %v, want ErrBadFrame", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > tt.bound {
				t.Fatalf("decoding a %d byte bomb allocated %d bytes, want at most %d", len(frame), got, tt.bound)
			}
		})
	}
}

// TestBodyAtLimit checks that a zstd body of exactly MaxBodyBytes is decoded:
// the limit refuses only what is over it.
func TestBodyAtLimit(t *testing.T) {
	_, err := Decode(v2(KindEvents, CodecZstd, rleBomb(MaxBodyBytes/(128<<10), MaxBodyBytes)))
	// The body is 64 MiB of '{': decoded, then refused by the body rules.
	if err == nil || !strings.Contains(err.Error(), "of the decoded body") {
		t.Fatalf("Decode error = %v, want one from the decoded body", err)
	}
}

// TestCodecNames checks ParseCodec against Codec.String.
func TestCodecNames(t *testing.T) {
	for _, c := range []Codec{CodecNone, CodecZstd} {
		if got, err := ParseCodec(c.String()); err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseCodec("gzip"); err == nil || !strings.Contains(err.Error(), `"gzip"`) {
		t.Errorf("ParseCodec(gzip) error = %v", err)
	}
	if s := Codec(9).String(); s != "codec(9)" {
		t.Errorf("Codec(9) = %q", s)
	}
}

// TestZstdInterop checks that zstd bodies from encoders set up otherwise than
// the package's (a content checksum, other levels, several segments) decode,
// and that one without a declared content size is refused.
func TestZstdInterop(t *testing.T) {
	body, err := appendEvents(nil, "n", "e", "s", benchRecords(50, 0), true)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Decode(v2(KindEvents, CodecNone, body))
	if err != nil {
		t.Fatal(err)
	}
	want.Codec = CodecZstd
	tests := []struct {
		name string
		opts []zstd.EOption
	}{
		{"checksum", []zstd.EOption{zstd.WithEncoderCRC(true)}},
		{"best", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression)}},
		{"segments", []zstd.EOption{zstd.WithSingleSegment(false), zstd.WithWindowSize(1 << 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := zstd.NewWriter(nil, append(tt.opts, zstd.WithEncoderConcurrency(1))...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(v2(KindEvents, CodecZstd, enc.EncodeAll(body, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode = %+v\nwant %+v", got, want)
			}
		})
	}
	// A small body from an encoder left to its defaults has no content size.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	small, _ := appendControl(nil, KindHeartbeat, "n", "e", Heartbeat{})
	if _, err := Decode(v2(KindHeartbeat, CodecZstd, enc.EncodeAll(small, nil))); err == nil || !strings.Contains(err.Error(), "does not declare its content size") {
		t.Fatalf("Decode error = %v, want one about the content size", err)
	}
}
