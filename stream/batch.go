package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// Wire format. Every message an edge publishes under edge.> is one frame, in
// version 1 or version 2 (docs/wire-format.md is the full description):
//
//	version 1                          version 2
//	byte 0   version (1)               byte 0   version (2)
//	byte 1   kind                      byte 1   kind
//	...      body                      byte 2   codec: 0 none, 1 zstd
//	last 4   CRC-32C                   ...      body, encoded by the codec
//	                                   last 4   CRC-32C
//
// Kinds are 1 events, 2 drops, 3 counters, 4 heartbeat. The CRC-32C (Castagnoli,
// little endian) covers every byte before it, so a version 2 decoder checks it
// before it decompresses anything.
//
// Strings are a uvarint length and that many bytes. Every body starts with the
// node and the epoch.
//
//	events:    node, epoch, stream, uvarint count, then count records of
//	           uvarint seq (the first absolute, then the increase over the previous,
//	           at least 1), zigzag varint ts in Unix nanoseconds (the first absolute,
//	           then the difference from the previous), in version 2 only a zigzag
//	           varint ingest time in Unix nanoseconds (the same way), uvarint data
//	           length, data (a JSON object)
//	drops:     node, epoch, uvarint length, JSON array of Drop
//	counters:  node, epoch, uvarint length, JSON array of CounterState (one
//	           shape per counter kind; a sum is {"name","p","n"} as in the
//	           first edges, so no version change was needed)
//	heartbeat: node, epoch, uvarint length, JSON Heartbeat
//
// A decoder refuses unknown versions, kinds and codecs, bad checksums, truncated
// or trailing bytes, bodies that decode to more than MaxBodyBytes, non-increasing
// seqs, data that is not a JSON object, and names that break the name rule.
const (
	// Version1 is the first version: no codec byte, no ingest times.
	Version1 = 1
	// Version2 adds the codec byte and each event's ingest time.
	Version2 = 2
	// Version is the version that EncodeEvents and EncodeControl write.
	Version = Version1
)

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
// whose version byte this build does not know (it knows Version1 and Version2).
var ErrUnknownVersion = errors.New("unknown version")

// Record is one buffered event as the edge sends it: its seq, its event time and
// its ingest time in Unix nanoseconds, and its data (a JSON object). Ingest is
// the edge's clock when the event was committed to its buffer; only version 2
// frames carry it, so it is zero in records decoded from version 1.
type Record struct {
	Seq    uint64
	TS     int64
	Ingest int64
	Data   json.RawMessage
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

// Heartbeat is the status an edge reports every few seconds.
type Heartbeat struct {
	Buffered      int64  `json:"buffered"`
	BufferedBytes int64  `json:"buffered_bytes"`
	Dropped       uint64 `json:"dropped"`
	LastSeq       uint64 `json:"last_seq"`
	AckedSeq      uint64 `json:"acked_seq"`
	Sent          uint64 `json:"sent"`
	Time          int64  `json:"time"` // edge clock, Unix nanoseconds
	// ClockOffset is the hub's clock minus the edge's, as the edge last
	// measured it, and ClockRTT that measurement's round trip, in
	// nanoseconds; both 0 until the first measurement.
	ClockOffset int64 `json:"clock_offset_ns,omitempty"`
	ClockRTT    int64 `json:"clock_rtt_ns,omitempty"`
	// UplinkBytes and UplinkEvents are what the edge has written to its
	// connection with the hub since it started: bytes (every frame,
	// heartbeat and protocol line) and the events in its batches, re-sends
	// included. Left out of the JSON while zero.
	UplinkBytes  uint64 `json:"uplink_bytes,omitempty"`
	UplinkEvents uint64 `json:"uplink_events,omitempty"`
}

// Frame is a decoded message. Version and Codec say how it came on the wire
// (Codec is CodecNone for version 1). Stream and Events are set for KindEvents,
// Drops for KindDrops, Counters for KindCounters and Heartbeat for KindHeartbeat.
type Frame struct {
	Version   byte
	Codec     Codec
	Kind      Kind
	Node      string
	Epoch     string
	Stream    string
	Events    []Record
	Drops     []Drop
	Counters  []CounterState
	Heartbeat *Heartbeat
}

// EncodeEvents appends a version 1 events frame to dst and returns it. Records
// must be in strictly increasing seq order; their Ingest is not sent.
func EncodeEvents(dst []byte, node, epoch, stream string, recs []Record) ([]byte, error) {
	dst = append(dst, Version1, byte(KindEvents))
	start := len(dst) - 2
	dst, err := appendEvents(dst, node, epoch, stream, recs, false)
	if err != nil {
		return nil, err
	}
	return appendCRC(dst, start), nil
}

// EncodeControl returns a version 1 drops, counters or heartbeat frame; v is the
// JSON payload ([]Drop, []CounterState or Heartbeat).
func EncodeControl(kind Kind, node, epoch string, v any) ([]byte, error) {
	dst, err := appendControl([]byte{Version1, byte(kind)}, kind, node, epoch, v)
	if err != nil {
		return nil, err
	}
	return appendCRC(dst, 0), nil
}

// EncodeEventsV2 appends a version 2 events frame, its body encoded by codec, to
// dst and returns it. Records must be in strictly increasing seq order, and
// there must be 1 to MaxBatchEvents of them. It returns an error, and dst
// unchanged, for an unknown codec or a body over MaxBodyBytes, which no decoder
// would accept.
func EncodeEventsV2(dst []byte, codec Codec, node, epoch, stream string, recs []Record) ([]byte, error) {
	if len(recs) == 0 || len(recs) > MaxBatchEvents {
		return dst, fmt.Errorf("encode events: %d records, want 1 to %d", len(recs), MaxBatchEvents)
	}
	// Room for the names, the count and, per record, its data and four full
	// varints.
	size := 4*binary.MaxVarintLen64 + len(node) + len(epoch) + len(stream) + len(recs)*(4*binary.MaxVarintLen64)
	for _, r := range recs {
		size += len(r.Data)
	}
	return encodeV2(dst, codec, KindEvents, size, func(b []byte) ([]byte, error) {
		return appendEvents(b, node, epoch, stream, recs, true)
	})
}

// EncodeControlV2 returns a version 2 drops, counters or heartbeat frame, its
// body encoded by codec; v is the JSON payload ([]Drop, []CounterState or
// Heartbeat).
func EncodeControlV2(kind Kind, codec Codec, node, epoch string, v any) ([]byte, error) {
	return encodeV2(nil, codec, kind, 0, func(b []byte) ([]byte, error) {
		return appendControl(b, kind, node, epoch, v)
	})
}

// encodeV2 appends a version 2 frame header, the body that appendBody writes,
// encoded by codec, and the CRC to dst. size, when not zero, is room enough for
// the body.
func encodeV2(dst []byte, codec Codec, kind Kind, size int, appendBody func([]byte) ([]byte, error)) ([]byte, error) {
	if codec != CodecNone && codec != CodecZstd {
		return dst, fmt.Errorf("encode %v: unknown codec %d", kind, byte(codec))
	}
	start := len(dst)
	out := append(dst, Version2, byte(kind), byte(codec))
	var body []byte
	var err error
	if codec == CodecNone {
		// The body is written in place: no copy.
		if out, err = appendBody(out); err != nil {
			return dst, err
		}
		body = out[start+3:]
	} else if body, err = appendBody(make([]byte, 0, size)); err != nil {
		return dst, err
	}
	if len(body) > MaxBodyBytes {
		return dst, fmt.Errorf("encode %v: body of %d bytes is over the %d byte limit", kind, len(body), MaxBodyBytes)
	}
	if codec != CodecNone {
		if out, err = compress(out, codec, body); err != nil {
			return dst, fmt.Errorf("encode %v: %w", kind, err)
		}
	}
	return appendCRC(out, start), nil
}

// appendEvents appends an events body to dst; withIngest adds version 2's
// ingest times.
func appendEvents(dst []byte, node, epoch, stream string, recs []Record, withIngest bool) ([]byte, error) {
	dst = appendString(dst, node)
	dst = appendString(dst, epoch)
	dst = appendString(dst, stream)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	var prevSeq uint64
	var prevTS, prevIngest int64
	for i, r := range recs {
		if i > 0 && r.Seq <= prevSeq {
			return nil, fmt.Errorf("encode events: seq %d after %d is not increasing", r.Seq, prevSeq)
		}
		// The first record's fields are absolute: the previous ones are zero.
		dst = binary.AppendUvarint(dst, r.Seq-prevSeq)
		dst = binary.AppendVarint(dst, r.TS-prevTS)
		if withIngest {
			dst = binary.AppendVarint(dst, r.Ingest-prevIngest)
		}
		prevSeq, prevTS, prevIngest = r.Seq, r.TS, r.Ingest
		dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
		dst = append(dst, r.Data...)
	}
	return dst, nil
}

// appendControl appends a control body to dst.
func appendControl(dst []byte, kind Kind, node, epoch string, v any) ([]byte, error) {
	if kind != KindDrops && kind != KindCounters && kind != KindHeartbeat {
		return nil, fmt.Errorf("encode control: %v is not a control kind", kind)
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %v: %w", kind, err)
	}
	dst = appendString(dst, node)
	dst = appendString(dst, epoch)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...), nil
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
