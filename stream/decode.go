package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"unicode/utf8"
)

// Decode parses one frame of version 1 or 2. Every error wraps ErrBadFrame and
// says what was wrong and where: a byte offset in the frame, or, for a
// compressed version 2 body, in the zstd frame or the decoded body. A version
// this build does not know also wraps ErrUnknownVersion. The records' Data share
// memory with b, or with the decoded body.
func Decode(b []byte) (*Frame, error) { return decode(b, true) }

// DecodeUnchecked is Decode less one check: that each record's data is a JSON
// object in valid UTF-8. It is for a reader that parses every record's data
// anyway and checks it there, rejecting the frame as Decode would: the hub's
// index, which builds a chunk's columns from it (see index.Prepare).
func DecodeUnchecked(b []byte) (*Frame, error) { return decode(b, false) }

func decode(b []byte, checkData bool) (*Frame, error) {
	if len(b) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrBadFrame, len(b), MaxFrameBytes)
	}
	if len(b) < 2+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a frame", ErrBadFrame, len(b))
	}
	header := 2
	switch b[0] {
	case Version1:
	case Version2:
		header = 3
		if len(b) < header+4 {
			return nil, fmt.Errorf("%w: %d bytes is too short for a version 2 frame", ErrBadFrame, len(b))
		}
	default:
		return nil, fmt.Errorf("%w: %w %d (this build reads versions %d and %d)", ErrBadFrame, ErrUnknownVersion, b[0], Version1, Version2)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x does not match %08x", ErrBadFrame, got, sum)
	}
	f := &Frame{Version: b[0], Kind: Kind(b[1])}
	r := reader{b: body, off: header, checkData: checkData}
	if f.Version == Version2 {
		// Refuse what the header alone shows before decompressing anything.
		if f.Kind < KindEvents || f.Kind > KindHeartbeat {
			return nil, fmt.Errorf("%w: unknown kind %d at byte 1", ErrBadFrame, b[1])
		}
		f.Codec = Codec(b[2])
		dec, err := decompress(f.Codec, body[header:], header)
		if err != nil {
			return nil, err
		}
		if f.Codec != CodecNone {
			r = reader{b: dec, decoded: true, checkData: checkData}
		}
	}
	if err := r.frameBody(f); err != nil {
		return nil, err
	}
	return f, nil
}

// frameBody decodes the body of f's kind from r into f and checks that nothing
// follows it.
func (r *reader) frameBody(f *Frame) error {
	f.Node = r.name("node")
	f.Epoch = r.str("epoch")
	if r.err == nil && (f.Epoch == "" || len(f.Epoch) > MaxNameLen) {
		r.fail("epoch has %d bytes, want 1 to %d", len(f.Epoch), MaxNameLen)
	}
	switch f.Kind {
	case KindEvents:
		f.Stream = r.name("stream")
		f.Events = r.records(f.Version == Version2)
	case KindDrops:
		r.json(&f.Drops)
		for i, d := range f.Drops {
			if r.err == nil {
				if err := d.Validate(); err != nil {
					r.fail("drop %d: %v", i, err)
				}
			}
		}
	case KindCounters:
		r.json(&f.Counters)
		for i, c := range f.Counters {
			if r.err == nil {
				if err := c.Validate(); err != nil {
					r.fail("counter %d: %v", i, err)
				}
			}
		}
	case KindHeartbeat:
		f.Heartbeat = new(Heartbeat)
		r.json(f.Heartbeat)
	default:
		return fmt.Errorf("%w: unknown kind %d at byte 1", ErrBadFrame, byte(f.Kind))
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

// reader decodes a body, keeping the first error and its byte offset. b is the
// frame without its CRC, or, when decoded is set, a decompressed body.
type reader struct {
	b       []byte
	off     int
	decoded bool
	// checkData is set to check that each record's data is a JSON object.
	checkData bool
	err       error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		where := ""
		if r.decoded {
			where = " of the decoded body"
		}
		r.err = fmt.Errorf("%w: at byte %d%s: %s", ErrBadFrame, r.off, where, fmt.Sprintf(format, args...))
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("%s: bad or truncated varint", what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("%s: bad or truncated varint", what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) bytes(what string) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("%s: length %d runs past the end", what, n)
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *reader) str(what string) string { return string(r.bytes(what)) }

func (r *reader) name(what string) string {
	s := r.str(what)
	if r.err == nil {
		if err := ValidateName(what, s); err != nil {
			r.fail("%v", err)
		}
	}
	return s
}

func (r *reader) json(v any) {
	p := r.bytes("payload")
	if r.err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		r.fail("payload: %v", err)
		return
	}
	if dec.More() {
		r.fail("payload: trailing data after JSON value")
	}
}

// records decodes an events body's records; withIngest reads version 2's
// ingest times.
func (r *reader) records(withIngest bool) []Record {
	n := r.uvarint("count")
	if r.err != nil {
		return nil
	}
	if n == 0 || n > MaxBatchEvents {
		r.fail("count %d, want 1 to %d", n, MaxBatchEvents)
		return nil
	}
	// Each record takes at least 3 bytes (4 with ingest) plus 2 of data: refuse
	// counts the body cannot hold before allocating for them.
	least := uint64(5)
	if withIngest {
		least = 6
	}
	if n > uint64(len(r.b)-r.off)/least {
		r.fail("count %d is more than the frame can hold", n)
		return nil
	}
	recs := make([]Record, 0, n)
	var seq uint64
	var ts, ingest int64
	for i := uint64(0); i < n && r.err == nil; i++ {
		s := r.uvarint("seq")
		t := r.varint("ts")
		var in int64
		if withIngest {
			in = r.varint("ingest")
		}
		if i == 0 {
			if s == 0 && r.err == nil {
				r.fail("record 0: seq 0; seqs start at 1")
			}
			seq, ts, ingest = s, t, in
		} else {
			if s == 0 && r.err == nil {
				r.fail("record %d: seq does not increase", i)
			}
			if seq > math.MaxUint64-s && r.err == nil {
				r.fail("record %d: seq overflows", i)
			}
			seq += s
			ts += t
			ingest += in
		}
		data := r.bytes("data")
		if r.err == nil && r.checkData && !IsObject(data) {
			r.fail("record %d (seq %d): data is not a JSON object", i, seq)
		}
		recs = append(recs, Record{Seq: seq, TS: ts, Ingest: ingest, Data: data})
	}
	return recs
}

// IsObject reports whether b is exactly one valid JSON object in valid UTF-8,
// with optional surrounding white space.
func IsObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	// json.Valid lets invalid UTF-8 inside strings through; the hub must never
	// serve it, since strict JSON parsers refuse it.
	return len(t) > 0 && t[0] == '{' && utf8.Valid(b) && json.Valid(b)
}
