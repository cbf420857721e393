package stream

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Codec tells how the body of a version 2 frame is encoded.
type Codec byte

// Codecs of version 2 frames.
const (
	// CodecNone stores the body as it is.
	CodecNone Codec = 0
	// CodecZstd stores the body as one Zstandard frame (RFC 8878) that
	// declares its size and uses no dictionary.
	CodecZstd Codec = 1
)

// String returns the codec's name as ParseCodec takes it, or codec(N) for an
// unknown one.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", byte(c))
}

// ParseCodec returns the codec named s ("none" or "zstd", as --compress takes
// them), or an error that lists the valid names.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none":
		return CodecNone, nil
	case "zstd":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("unknown codec %q, want none or zstd", s)
}

// MaxBodyBytes is the largest decoded body of a version 2 frame that Decode
// accepts. A zstd body that declares more, or holds more than it declares, is
// refused without being decoded in full, so a small frame cannot make the hub
// allocate more.
const MaxBodyBytes = 4 * MaxFrameBytes

// The zstd encoder and decoder are built once, on first use, and shared:
// EncodeAll and DecodeAll are safe for concurrent use. Both are built with
// concurrency 1, so they start no goroutines and hold one block coder each;
// concurrent callers take turns.
var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstdLevel),
			// The frame's CRC-32C already covers the body.
			zstd.WithEncoderCRC(false),
			// A single segment always has a content size, which decoders
			// require; without it bodies under 256 bytes would have none.
			zstd.WithSingleSegment(true),
			// Matches reach back zstdWindow bytes, and the encoder keeps a
			// history of that and one block, not the default's 16 MiB (which
			// also doubled the garbage collector's heap goal on an edge).
			zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(fmt.Sprintf("stream: zstd encoder: %v", err))
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxBodyBytes),
			zstd.WithDecoderMaxWindow(MaxBodyBytes))
		if err != nil {
			panic(fmt.Sprintf("stream: zstd decoder: %v", err))
		}
		return d
	})
)

// zstdLevel is the encoder's level. For batches of events SpeedFastest makes
// frames no larger than SpeedDefault's, 1.4 to 1.7 times as fast
// (BenchmarkZstdLevel; docs/wire-format.md has the figures).
const zstdLevel = zstd.SpeedFastest

// zstdWindow is the encoder's window: events repeat their keys within a few
// hundred bytes, so a batch compresses as well with 256 KiB as with the
// default 8 MiB (BenchmarkZstdWindow; docs/wire-format.md has the figures).
const zstdWindow = 256 << 10

// compress appends body, encoded by codec, to dst.
func compress(dst []byte, codec Codec, body []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, body...), nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(body, dst), nil
	}
	return nil, fmt.Errorf("unknown codec %d", byte(codec))
}

// decompress returns the body that b, encoded by codec, holds. off is b's offset
// in the frame, for error messages. Every error wraps ErrBadFrame.
func decompress(codec Codec, b []byte, off int) ([]byte, error) {
	switch codec {
	case CodecNone:
		return b, nil
	case CodecZstd:
		return unzstd(b, off)
	}
	return nil, fmt.Errorf("%w: unknown codec %d at byte 2", ErrBadFrame, byte(codec))
}

// unzstd decodes b, which must be exactly one zstd frame that declares its
// content size, uses no dictionary and is not skippable. It refuses, before
// decoding, a frame that declares more than MaxBodyBytes or whose blocks cannot
// hold what it declares, so that a small frame can make it allocate no more
// than its block headers show; the decoder then stops at the declared size.
func unzstd(b []byte, off int) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: zstd body at byte %d: %s", ErrBadFrame, off, fmt.Sprintf(format, args...))
	}
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		return nil, bad("header: %v", err)
	}
	switch {
	case h.Skippable:
		return nil, bad("skippable frame; want one zstd frame")
	case h.DictionaryID != 0:
		return nil, bad("dictionary %d; version 2 bodies use none", h.DictionaryID)
	case !h.HasFCS:
		return nil, bad("frame does not declare its content size")
	case h.FrameContentSize > MaxBodyBytes:
		return nil, bad("declares %d bytes decoded, over the %d byte limit", h.FrameContentSize, MaxBodyBytes)
	case !h.SingleSegment && h.WindowSize > MaxBodyBytes:
		return nil, bad("window of %d bytes is over the %d byte limit", h.WindowSize, MaxBodyBytes)
	}
	w, err := walkZstd(b, h)
	if err != nil {
		return nil, bad("%v", err)
	}
	if w.end != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after the zstd frame at byte %d", ErrBadFrame, len(b)-w.end, off+w.end)
	}
	if fcs := h.FrameContentSize; fcs < w.least || fcs > w.most {
		return nil, bad("declares %d bytes decoded, its blocks hold %d to %d", fcs, w.least, w.most)
	}
	// The declared size is within the limit and what the blocks can hold:
	// allocate it once. A large buffer gets room for the block that would pass
	// the declared size, after which the decoder stops, so that it never grows;
	// a small one may grow, at little cost. The 64 bytes let the decoder use
	// its fast copies up to the end.
	size := h.FrameContentSize + 64
	if h.FrameContentSize >= 8*maxBlockBytes {
		size += maxBlockBytes
	}
	body, err := zstdDecoder().DecodeAll(b, make([]byte, 0, size))
	// The declared size is at most the decoder's limit, so passing either
	// means the blocks hold more than they declare.
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrFrameSizeExceeded) {
		return nil, bad("decodes to more than the %d bytes it declares", h.FrameContentSize)
	}
	if err != nil {
		return nil, bad("corrupt: %v", err)
	}
	if uint64(len(body)) != h.FrameContentSize {
		return nil, bad("decodes to %d bytes, its header says %d", len(body), h.FrameContentSize)
	}
	return body, nil
}

// maxBlockBytes is the most that one zstd block decodes to (RFC 8878, 3.1.1.2.3).
const maxBlockBytes = 128 << 10

// zstdWalk is what walkZstd finds: where the frame ends, and the least and the
// most its blocks can decode to.
type zstdWalk struct {
	end         int
	least, most uint64
}

// walkZstd walks the block headers (RFC 8878, 3.1.1.2) of the zstd frame at the
// start of b, whose header is h, without decoding the blocks.
func walkZstd(b []byte, h zstd.Header) (zstdWalk, error) {
	w := zstdWalk{end: h.HeaderSize}
	for {
		n := w.end
		if len(b)-n < 3 {
			return w, fmt.Errorf("block header at byte %d of it is truncated", n)
		}
		bh := uint32(b[n]) | uint32(b[n+1])<<8 | uint32(b[n+2])<<16
		last, typ, size := bh&1 == 1, (bh>>1)&3, int(bh>>3)
		if size > maxBlockBytes {
			return w, fmt.Errorf("block at byte %d of it is %d bytes, over the %d byte limit", n, size, maxBlockBytes)
		}
		stored := size
		switch typ {
		case 0: // raw: size bytes, stored as they are
			w.least += uint64(size)
			w.most += uint64(size)
		case 1: // RLE: one byte, repeated size times
			stored = 1
			w.least += uint64(size)
			w.most += uint64(size)
		case 2: // compressed: size bytes that decode to at most a block
			w.most += maxBlockBytes
		case 3:
			return w, fmt.Errorf("block at byte %d of it has the reserved type", n)
		}
		if stored > len(b)-n-3 {
			return w, fmt.Errorf("block at byte %d of it, %d bytes long, runs past the end", n, stored)
		}
		w.end = n + 3 + stored
		if last {
			break
		}
	}
	if h.HasCheckSum {
		if len(b)-w.end < 4 {
			return w, errors.New("content checksum is truncated")
		}
		w.end += 4
	}
	return w, nil
}
