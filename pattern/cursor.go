package pattern

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/tributary-edge/tributary/stream"
)

// Position is a point in merge order (ts, node, epoch, seq): the identity and
// event time of one event. A page cursor is the Position of the page's last
// match.
type Position struct {
	TS    int64
	Node  string
	Epoch string
	Seq   uint64
}

// PositionOf returns the position of ev in merge order.
func PositionOf(ev *stream.Event) Position {
	return Position{TS: ev.TS, Node: ev.Node, Epoch: ev.Epoch, Seq: ev.Seq}
}

// cursorVersion is the first byte of every encoded cursor, so that a cursor
// from a build with another layout is refused rather than misread.
const cursorVersion = 1

// maxEpochLen bounds the epoch in a cursor; real epochs are far shorter.
const maxEpochLen = 256

// EncodeCursor returns the opaque text form of p: base64url (no padding) of
// a version byte, zigzag varint ts, node, epoch (each a uvarint length and the
// bytes) and uvarint seq.
func EncodeCursor(p Position) string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*2+2+len(p.Node)+len(p.Epoch))
	b = append(b, cursorVersion)
	b = binary.AppendVarint(b, p.TS)
	b = binary.AppendUvarint(b, uint64(len(p.Node)))
	b = append(b, p.Node...)
	b = binary.AppendUvarint(b, uint64(len(p.Epoch)))
	b = append(b, p.Epoch...)
	b = binary.AppendUvarint(b, p.Seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor made by EncodeCursor. Every error wraps
// ErrInvalid and starts with "after: ".
func DecodeCursor(s string) (Position, error) {
	if len(s) > 1024 {
		return Position{}, invalidf("after: cursor is %d bytes long; it is not one this hub made", len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Position{}, invalidf("after: cursor is not base64url: %v", err)
	}
	if len(b) == 0 || b[0] != cursorVersion {
		return Position{}, invalidf("after: cursor has an unknown version; use the next value of a previous page")
	}
	r := cursorReader{b: b, off: 1}
	var p Position
	p.TS = r.varint("ts")
	p.Node = r.str("node", stream.MaxNameLen)
	p.Epoch = r.str("epoch", maxEpochLen)
	p.Seq = r.uvarint("seq")
	if r.err == nil && r.off != len(b) {
		r.err = fmt.Errorf("%d trailing bytes", len(b)-r.off)
	}
	if r.err == nil {
		if err := stream.ValidateName("node", p.Node); err != nil {
			r.err = err
		}
	}
	if r.err != nil {
		return Position{}, invalidf("after: malformed cursor: %v", r.err)
	}
	return p, nil
}

type cursorReader struct {
	b   []byte
	off int
	err error
}

func (r *cursorReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.err = fmt.Errorf("bad %s at byte %d", what, r.off)
		return 0
	}
	r.off += n
	return v
}

func (r *cursorReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = fmt.Errorf("bad %s at byte %d", what, r.off)
		return 0
	}
	r.off += n
	return v
}

func (r *cursorReader) str(what string, max int) string {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("%s length %d at byte %d is out of range", what, n, r.off)
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}
