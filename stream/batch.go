package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Wire format, version 1. Every message an edge publishes under edge.> is one
// frame:
//
//	byte 0      version (1)
//	byte 1      kind: 1 events, 2 drops, 3 counters, 4 heartbeat
//	...         body, by kind (below)
//	last 4      CRC-32C (Castagnoli) of every byte before it, little endian
//
// Strings are a uvarint length and that many bytes. Every body starts with the
// node and the epoch.
//
//	events:    node, epoch, stream, uvarint count, then count records of
//	           uvarint seq (the first absolute, then the increase over the previous,
//	           at least 1), zigzag varint ts in Unix nanoseconds (the first absolute,
//	           then the difference from the previous), uvarint data length, data (a
//	           JSON object)
//	drops:     node, epoch, uvarint length, JSON array of Drop
//	counters:  node, epoch, uvarint length, JSON array of CounterState
//	heartbeat: node, epoch, uvarint length, JSON Heartbeat
//
// A decoder refuses unknown versions and kinds, bad checksums, truncated or
// trailing bytes, non-increasing seqs, data that is not a JSON object, and names
// that break the name rule.
const Version = 1

// Kind tells what a frame carries.
type Kind byte

// Frame kinds.
const (
	KindEvents    Kind = 1
	KindDrops     Kind = 2
	KindCounters  Kind = 3
	KindHeartbeat Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindEvents:
		return "events"
	case KindDrops:
		return "drops"
	case KindCounters:
		return "counters"
	case KindHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// Limits on what a decoder accepts.
const (
	// MaxFrameBytes is the largest frame accepted.
	MaxFrameBytes = 16 << 20
	// MaxBatchEvents is the most records one events frame may hold.
	MaxBatchEvents = 100_000
)

// ErrBadFrame is returned (wrapped) by Decode for every malformed frame.
var ErrBadFrame = errors.New("bad frame")

// ErrUnknownVersion is returned (wrapped, together with ErrBadFrame) for a frame
// whose version byte this build does not know.
var ErrUnknownVersion = errors.New("unknown version")

// Record is one buffered event as the edge sends it: its seq, its event time in
// Unix nanoseconds, and its data (a JSON object).
type Record struct {
	Seq  uint64
	TS   int64
	Data json.RawMessage
}

// Drop reports a range of seqs an edge discarded, and why.
type Drop struct {
	Epoch    string `json:"epoch"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Count    uint64 `json:"count"`
	Reason   string `json:"reason"`
}

// Drop reasons.
const (
	ReasonBufferFull    = "buffer-full"
	ReasonMaxAge        = "max-age"
	ReasonCorruptBuffer = "corrupt-buffer"
	ReasonMissing       = "missing"
)

// CounterState is one node's whole PN state of one counter.
type CounterState struct {
	Name string `json:"name"`
	P    int64  `json:"p"`
	N    int64  `json:"n"`
}

// Heartbeat is the status an edge reports every few seconds.
type Heartbeat struct {
	Buffered      int64  `json:"buffered"`
	BufferedBytes int64  `json:"buffered_bytes"`
	Dropped       uint64 `json:"dropped"`
	LastSeq       uint64 `json:"last_seq"`
	AckedSeq      uint64 `json:"acked_seq"`
	Sent          uint64 `json:"sent"`
	Time          int64  `json:"time"` // edge clock, Unix nanoseconds
}

// Frame is a decoded message. Stream and Events are set for KindEvents, Drops for
// KindDrops, Counters for KindCounters and Heartbeat for KindHeartbeat.
type Frame struct {
	Kind      Kind
	Node      string
	Epoch     string
	Stream    string
	Events    []Record
	Drops     []Drop
	Counters  []CounterState
	Heartbeat *Heartbeat
}

// EncodeEvents appends an events frame to dst and returns it. Records must be in
// strictly increasing seq order.
func EncodeEvents(dst []byte, node, epoch, stream string, recs []Record) ([]byte, error) {
	dst = append(dst, Version, byte(KindEvents))
	start := len(dst) - 2
	dst = appendString(dst, node)
	dst = appendString(dst, epoch)
	dst = appendString(dst, stream)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	var prevSeq uint64
	var prevTS int64
	for i, r := range recs {
		if i == 0 {
			dst = binary.AppendUvarint(dst, r.Seq)
			dst = binary.AppendVarint(dst, r.TS)
		} else {
			if r.Seq <= prevSeq {
				return nil, fmt.Errorf("encode events: seq %d after %d is not increasing", r.Seq, prevSeq)
			}
			dst = binary.AppendUvarint(dst, r.Seq-prevSeq)
			dst = binary.AppendVarint(dst, r.TS-prevTS)
		}
		prevSeq, prevTS = r.Seq, r.TS
		dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
		dst = append(dst, r.Data...)
	}
	return appendCRC(dst, start), nil
}

// EncodeControl returns a drops, counters or heartbeat frame; v is the JSON
// payload ([]Drop, []CounterState or Heartbeat).
func EncodeControl(kind Kind, node, epoch string, v any) ([]byte, error) {
	if kind != KindDrops && kind != KindCounters && kind != KindHeartbeat {
		return nil, fmt.Errorf("encode control: %v is not a control kind", kind)
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %v: %w", kind, err)
	}
	dst := []byte{Version, byte(kind)}
	dst = appendString(dst, node)
	dst = appendString(dst, epoch)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	dst = append(dst, payload...)
	return appendCRC(dst, 0), nil
}

// Decode parses one frame. Every error wraps ErrBadFrame and says what was wrong
// and at which byte offset.
func Decode(b []byte) (*Frame, error) {
	if len(b) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrBadFrame, len(b), MaxFrameBytes)
	}
	if len(b) < 2+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a frame", ErrBadFrame, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %w %d (this build reads version %d)", ErrBadFrame, ErrUnknownVersion, b[0], Version)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x does not match %08x", ErrBadFrame, got, sum)
	}
	r := reader{b: body, off: 2}
	f := &Frame{Kind: Kind(b[1])}
	f.Node = r.name("node")
	f.Epoch = r.str("epoch")
	if r.err == nil && (f.Epoch == "" || len(f.Epoch) > MaxNameLen) {
		r.fail("epoch has %d bytes, want 1 to %d", len(f.Epoch), MaxNameLen)
	}
	switch f.Kind {
	case KindEvents:
		f.Stream = r.name("stream")
		f.Events = r.records()
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
				if err := ValidateName("counter", c.Name); err != nil {
					r.fail("counter %d: %v", i, err)
				} else if c.P < 0 || c.N < 0 {
					r.fail("counter %q: p and n must not be negative", c.Name)
				}
			}
		}
	case KindHeartbeat:
		f.Heartbeat = new(Heartbeat)
		r.json(f.Heartbeat)
	default:
		return nil, fmt.Errorf("%w: unknown kind %d at byte 1", ErrBadFrame, b[1])
	}
	if r.err == nil && r.off != len(body) {
		r.fail("%d trailing bytes", len(body)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}

// Validate checks a drop report's fields.
func (d Drop) Validate() error {
	switch d.Reason {
	case ReasonBufferFull, ReasonMaxAge, ReasonCorruptBuffer:
	default:
		return fmt.Errorf("unknown reason %q", d.Reason)
	}
	if d.Epoch == "" || len(d.Epoch) > MaxNameLen {
		return fmt.Errorf("epoch has %d bytes, want 1 to %d", len(d.Epoch), MaxNameLen)
	}
	if d.FirstSeq == 0 || d.LastSeq < d.FirstSeq {
		return fmt.Errorf("range %d..%d is empty or starts at 0", d.FirstSeq, d.LastSeq)
	}
	if d.Count == 0 || d.Count > d.LastSeq-d.FirstSeq+1 {
		return fmt.Errorf("count %d does not fit range %d..%d", d.Count, d.FirstSeq, d.LastSeq)
	}
	return nil
}

// MsgID returns the Nats-Msg-Id of an events batch. A batch re-sent with the same
// content gets the same ID, so JetStream drops the repeat within its window.
func MsgID(node, epoch, stream string, first, last uint64) string {
	return fmt.Sprintf("%s:%s:%s:%d-%d", node, epoch, stream, first, last)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendCRC(dst []byte, start int) []byte {
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// reader decodes the body, keeping the first error and its byte offset.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrBadFrame, r.off, fmt.Sprintf(format, args...))
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

func (r *reader) records() []Record {
	n := r.uvarint("count")
	if r.err != nil {
		return nil
	}
	if n == 0 || n > MaxBatchEvents {
		r.fail("count %d, want 1 to %d", n, MaxBatchEvents)
		return nil
	}
	// Each record takes at least 3 bytes plus 2 of data: refuse counts the frame
	// cannot hold before allocating for them.
	if n > uint64(len(r.b)-r.off)/5 {
		r.fail("count %d is more than the frame can hold", n)
		return nil
	}
	recs := make([]Record, 0, n)
	var seq uint64
	var ts int64
	for i := uint64(0); i < n && r.err == nil; i++ {
		s := r.uvarint("seq")
		t := r.varint("ts")
		if i == 0 {
			if s == 0 && r.err == nil {
				r.fail("record 0: seq 0; seqs start at 1")
			}
			seq, ts = s, t
		} else {
			if s == 0 && r.err == nil {
				r.fail("record %d: seq does not increase", i)
			}
			if seq > math.MaxUint64-s && r.err == nil {
				r.fail("record %d: seq overflows", i)
			}
			seq += s
			ts += t
		}
		data := r.bytes("data")
		if r.err == nil && !IsObject(data) {
			r.fail("record %d (seq %d): data is not a JSON object", i, seq)
		}
		recs = append(recs, Record{Seq: seq, TS: ts, Data: data})
	}
	return recs
}

// IsObject reports whether b is exactly one valid JSON object, with optional
// surrounding white space.
func IsObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}
