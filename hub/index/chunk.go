package index

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// Limits of one chunk. A batch that breaks one of them is cut into several.
const (
	// MaxChunkSpan is the most event time one chunk covers. Reads in time
	// order look back this far before a range's start for chunks that reach
	// into it, so it bounds that look-back.
	MaxChunkSpan = int64(10 * time.Minute)
	// MaxChunkEvents and MaxChunkBytes bound the events of one chunk and their
	// encoded size, and so the memory one open chunk takes in a read.
	MaxChunkEvents = 512
	MaxChunkBytes  = 1 << 20
)

// Codecs of a chunk's data.
const (
	codecNone = 0
	codecZstd = 1
)

// The chunk layout, before compression: for each event, in (ts, seq) order,
//
//	uvarint  ts − the previous event's ts (the first: ts − the chunk's min_ts)
//	varint   seq − the previous event's seq (zigzag; the first: seq)
//	uvarint  length of data, then data (a JSON object, as received)
//
// The count, min and max ts are columns of the chunk's row.

// zstd's encoder and decoder are safe for concurrent EncodeAll and DecodeAll;
// with concurrency 1 they start no goroutines of their own.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(8*MaxChunkBytes))
)

// chunk is one chunk to write: its identity, time range and encoded data.
type chunk struct {
	node, epoch, stream string
	minTS, maxTS        int64
	count               int
	codec               int
	raw                 int // bytes before compression
	data                []byte
	cols                []byte // the chunk's columns (pattern.Columns), compressed
	// valid is set when building the columns found every event's data a JSON
	// object in valid UTF-8.
	valid bool
}

// cutChunks sorts recs (one node, epoch and stream, all new to the index) by
// (ts, seq) and cuts them into chunks within the limits. It reorders recs.
func cutChunks(node, epoch, streamName string, recs []stream.Record) []chunk {
	slices.SortFunc(recs, func(a, b stream.Record) int {
		if c := cmp.Compare(a.TS, b.TS); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	var out []chunk
	for start := 0; start < len(recs); {
		end, size := start, 0
		for end < len(recs) && end-start < MaxChunkEvents &&
			recs[end].TS-recs[start].TS <= MaxChunkSpan &&
			(end == start || size+len(recs[end].Data)+20 <= MaxChunkBytes) {
			size += len(recs[end].Data) + 20
			end++
		}
		out = append(out, encodeChunk(node, epoch, streamName, recs[start:end]))
		start = end
	}
	return out
}

// encodeChunk encodes recs, sorted by (ts, seq), as one compressed chunk.
func encodeChunk(node, epoch, streamName string, recs []stream.Record) chunk {
	c := chunk{node: node, epoch: epoch, stream: streamName, minTS: recs[0].TS, maxTS: recs[len(recs)-1].TS, count: len(recs)}
	size := 0
	for _, r := range recs {
		size += len(r.Data) + 2*binary.MaxVarintLen64
	}
	raw := make([]byte, 0, size)
	prevTS, prevSeq := c.minTS, int64(0)
	for _, r := range recs {
		raw = binary.AppendUvarint(raw, uint64(r.TS-prevTS))
		raw = binary.AppendVarint(raw, int64(r.Seq)-prevSeq)
		raw = binary.AppendUvarint(raw, uint64(len(r.Data)))
		raw = append(raw, r.Data...)
		prevTS, prevSeq = r.TS, int64(r.Seq)
	}
	// Always compressed, even where it does not pay: zstd's checksum is what
	// tells a chunk damaged on disk from a good one.
	c.raw = len(raw)
	c.codec, c.data = codecZstd, zenc.EncodeAll(raw, make([]byte, 0, len(raw)/3+64))
	// The columns let predicates made of comparisons, and aggregates, skip
	// the JSON; they are kept apart from the data so that such scans read and
	// decompress only them.
	evs := make([]stream.Event, len(recs))
	for i, r := range recs {
		evs[i] = stream.Event{Seq: r.Seq, TS: r.TS, Data: r.Data}
	}
	cols, valid := pattern.BuildColumnsChecked(evs)
	c.cols, c.valid = encodeColumns(pattern.AppendColumns(nil, cols)), valid
	return c
}

var errCorruptChunk = errors.New("corrupt chunk")

// Columns are compressed with S2, which decodes several times faster than
// zstd: scans read every column of every chunk they cross, so their decoding
// is on the hot path, where the data's is not. S2 blocks carry no checksum;
// a CRC-32C of the raw columns follows them.

// encodeColumns compresses a chunk's encoded columns.
func encodeColumns(raw []byte) []byte {
	out := s2.Encode(nil, raw)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(raw, castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decodeColumns decodes a chunk's compressed columns into b's memory.
func decodeColumns(b *pattern.ChunkBuf, count int, data []byte) (*pattern.Columns, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: columns of %d bytes", errCorruptChunk, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	n, err := s2.DecodedLen(body)
	if err != nil || n > 16*MaxChunkBytes {
		return nil, fmt.Errorf("%w: columns: %v (%d bytes)", errCorruptChunk, err, n)
	}
	raw, err := s2.Decode(b.Raw[:cap(b.Raw)], body)
	if err != nil {
		return nil, fmt.Errorf("%w: columns: %v", errCorruptChunk, err)
	}
	if crc32.Checksum(raw, castagnoli) != sum {
		return nil, fmt.Errorf("%w: columns: checksum does not match", errCorruptChunk)
	}
	b.Raw = raw
	if err := b.Cols.Decode(raw, count); err != nil {
		return nil, err
	}
	return &b.Cols, nil
}

// decodeChunk decodes a chunk's data into b: its events, with node, epoch,
// stream and received set from the row, and Data pointing into b.Raw (or into
// data itself when it is not compressed).
func decodeChunk(b *pattern.ChunkBuf, meta *pattern.Chunk, received int64, codec, raw int, data []byte) ([]stream.Event, error) {
	body := data
	switch codec {
	case codecNone:
	case codecZstd:
		if raw < 0 || raw > 8*MaxChunkBytes {
			return nil, fmt.Errorf("%w: %d decoded bytes", errCorruptChunk, raw)
		}
		var err error
		if body, err = zdec.DecodeAll(data, b.Raw[:0]); err != nil {
			return nil, fmt.Errorf("%w: %v", errCorruptChunk, err)
		}
		b.Raw = body
	default:
		return nil, fmt.Errorf("%w: unknown codec %d", errCorruptChunk, codec)
	}
	if cap(b.Events) < meta.Count {
		b.Events = make([]stream.Event, 0, meta.Count)
	}
	evs := b.Events[:0]
	ts, seq := meta.MinTS, int64(0)
	for off := 0; off < len(body); {
		dts, n := binary.Uvarint(body[off:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad ts at byte %d", errCorruptChunk, off)
		}
		off += n
		dseq, n := binary.Varint(body[off:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad seq at byte %d", errCorruptChunk, off)
		}
		off += n
		l, n := binary.Uvarint(body[off:])
		if n <= 0 || l > uint64(len(body)-off-n) {
			return nil, fmt.Errorf("%w: bad data length at byte %d", errCorruptChunk, off)
		}
		off += n
		ts += int64(dts)
		seq += dseq
		evs = append(evs, stream.Event{Node: meta.Node, Epoch: meta.Epoch, Stream: meta.Stream, Seq: uint64(seq), TS: ts,
			Received: received, Data: body[off : off+int(l) : off+int(l)]})
		off += int(l)
	}
	if len(evs) != meta.Count {
		return nil, fmt.Errorf("%w: %d events, the row says %d", errCorruptChunk, len(evs), meta.Count)
	}
	b.Events = evs
	return evs, nil
}
