package pattern

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/stream"
)

// Columns are the scalar values of a run of events, one column per data path,
// as the predicate would see them: integers that fit an int64 as ints, other
// numbers as floats, strings decoded, and objects and arrays as "complex". The
// index builds them once, when a chunk is written, so that a where-expression
// made of comparisons (see fastPredicate) and an aggregate over numeric fields
// read a few arrays per event instead of parsing its JSON. Event i of the
// columns is event i of the chunk.
type Columns struct {
	// N is the number of events.
	N int
	// Complete is true when every path of every event has a column: a path
	// without one is missing from every event. When false (a chunk with more
	// paths than MaxColumns, or keys the columns cannot name), a path without
	// a column may be in the data, and readers must decode it.
	Complete bool
	// TS and Seq are each event's time and seq.
	TS    []int64
	Seq   []uint64
	cols  map[string]*Column
	names []string // the columns' keys, in the order added
	// A decoded Columns reads its columns from raw on demand: offs holds the
	// span of each column's body, end the end of the last.
	raw   []byte
	offs  map[string][2]int
	end   int
	spare []*Column
}

// Column is one data path's values over a run of events.
type Column struct {
	// Kind is each event's kind of value at the path.
	Kind []ColKind
	// Int and Float hold the numbers of the events whose Kind is ColInt or
	// ColFloat, Str indexes Dict for ColString; other entries are zero.
	Int   []int64
	Float []float64
	Str   []uint32
	Dict  []string
}

// ColKind is the kind of one value in a column.
type ColKind uint8

// Kinds of column values.
const (
	ColMissing ColKind = iota // the event lacks the path
	ColNull
	ColFalse
	ColTrue
	ColInt
	ColFloat
	ColString
	ColComplex // an object or an array: only the JSON says more
	colKinds
)

// Limits of the columns of one chunk.
const (
	// MaxColumns is the most data paths one chunk keeps columns for.
	MaxColumns = 256
	// MaxColumnDepth is the deepest path a column is kept for (gps.lat is 2).
	MaxColumnDepth = 4
)

// pathKey joins a path's keys into a column name.
func pathKey(path []string) string { return strings.Join(path, "\x00") }

// Column returns the column of path, or nil when there is none or it cannot
// be decoded.
func (c *Columns) Column(path []string) *Column {
	key := pathKey(path)
	if c.raw == nil {
		return c.cols[key]
	}
	col, err := c.decodeColumn(key)
	if err != nil {
		return nil
	}
	return col
}

// Has reports whether c has a column for path, decoded or not.
func (c *Columns) Has(path []string) bool {
	key := pathKey(path)
	if _, ok := c.cols[key]; ok {
		return true
	}
	_, ok := c.offs[key]
	return ok
}

// BuildColumns returns the columns of events, which must be JSON objects.
func BuildColumns(evs []stream.Event) *Columns {
	c, _ := BuildColumnsChecked(evs)
	return c
}

// BuildColumnsChecked is BuildColumns for events whose data has not been
// checked: valid reports that every event's data is one JSON object in valid
// UTF-8, as stream.IsObject says, found while building. When it is false,
// some event may still be: the caller checks them with stream.IsObject.
func BuildColumnsChecked(evs []stream.Event) (c *Columns, valid bool) {
	if c, ok := buildColumnsFast(evs); ok {
		for i := range evs {
			if !utf8.Valid(evs[i].Data) {
				return c, false
			}
		}
		return c, true
	}
	return buildColumnsSlow(evs), false
}

// buildColumnsSlow builds the columns by decoding each event into maps: the
// reference that buildColumnsFast must agree with, and its fallback.
func buildColumnsSlow(evs []stream.Event) *Columns {
	c := &Columns{N: len(evs), Complete: true, cols: map[string]*Column{}, TS: make([]int64, len(evs)), Seq: make([]uint64, len(evs))}
	for i := range evs {
		c.TS[i], c.Seq[i] = evs[i].TS, evs[i].Seq
	}
	env := map[string]any{}
	dicts := map[string]map[string]uint32{}
	for i := range evs {
		clear(env)
		if err := decodeObject(evs[i].Data, env, nil); err != nil {
			c.Complete = false
			continue
		}
		c.addObject(i, env, nil, dicts)
	}
	return c
}

func (c *Columns) addObject(i int, obj map[string]any, prefix []string, dicts map[string]map[string]uint32) {
	for k, v := range obj {
		if strings.IndexByte(k, 0) >= 0 {
			c.Complete = false
			continue
		}
		path := append(prefix[:len(prefix):len(prefix)], k)
		col := c.column(path)
		if col == nil {
			continue
		}
		key := pathKey(path)
		switch v := v.(type) {
		case nil:
			col.Kind[i] = ColNull
		case bool:
			col.Kind[i] = ColFalse
			if v {
				col.Kind[i] = ColTrue
			}
		case int:
			col.Kind[i], col.Int[i] = ColInt, int64(v)
		case float64:
			col.Kind[i], col.Float[i] = ColFloat, v
		case string:
			d := dicts[key]
			if d == nil {
				d = map[string]uint32{}
				dicts[key] = d
			}
			id, ok := d[v]
			if !ok {
				id = uint32(len(col.Dict))
				d[v] = id
				col.Dict = append(col.Dict, v)
			}
			col.Kind[i], col.Str[i] = ColString, id
		case map[string]any:
			col.Kind[i] = ColComplex
			if len(path) < MaxColumnDepth {
				c.addObject(i, v, path, dicts)
			} else if len(v) > 0 {
				c.Complete = false
			}
		default:
			col.Kind[i] = ColComplex
		}
	}
}

// column returns path's column, adding it; nil when the limit is reached.
func (c *Columns) column(path []string) *Column {
	key := pathKey(path)
	if col := c.cols[key]; col != nil {
		return col
	}
	if len(c.cols) >= MaxColumns {
		c.Complete = false
		return nil
	}
	col := &Column{Kind: make([]ColKind, c.N), Int: make([]int64, c.N), Float: make([]float64, c.N), Str: make([]uint32, c.N)}
	c.cols[key] = col
	c.names = append(c.names, key)
	return col
}

// The encoding of Columns, before compression:
//
//	uvarint N, byte complete (0 or 1),
//	N times zigzag varint ts − the previous ts and zigzag varint seq − the
//	previous seq,
//	uvarint column count, then per column its name (uvarint length, keys
//	joined by NUL) and the uvarint length of its body, then the bodies:
//	N bytes of kinds, uvarint dict size and per entry uvarint length and
//	bytes, then per event by kind: int zigzag varint, float 8 bytes little
//	endian, string uvarint dict index.
//
// A reader decodes the times and seqs at once and each column's body only when
// it is asked for.

// AppendColumns appends the encoding of c to dst.
func AppendColumns(dst []byte, c *Columns) []byte {
	dst = binary.AppendUvarint(dst, uint64(c.N))
	if c.Complete {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	var ts, seq int64
	for i := range c.N {
		dst = binary.AppendVarint(dst, c.TS[i]-ts)
		dst = binary.AppendVarint(dst, int64(c.Seq[i])-seq)
		ts, seq = c.TS[i], int64(c.Seq[i])
	}
	bodies := make([][]byte, len(c.names))
	for j, name := range c.names {
		bodies[j] = appendColumnBody(nil, c.column0(name))
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.names)))
	for j, name := range c.names {
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		dst = binary.AppendUvarint(dst, uint64(len(bodies[j])))
	}
	for _, b := range bodies {
		dst = append(dst, b...)
	}
	return dst
}

func appendColumnBody(dst []byte, col *Column) []byte {
	for _, k := range col.Kind {
		dst = append(dst, byte(k))
	}
	dst = binary.AppendUvarint(dst, uint64(len(col.Dict)))
	for _, s := range col.Dict {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for i, k := range col.Kind {
		switch k {
		case ColInt:
			dst = binary.AppendVarint(dst, col.Int[i])
		case ColFloat:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(col.Float[i]))
		case ColString:
			dst = binary.AppendUvarint(dst, uint64(col.Str[i]))
		}
	}
	return dst
}

// ErrBadColumns is returned (wrapped) for bytes that are not columns.
var ErrBadColumns = errors.New("pattern: bad columns")

// DecodeColumns decodes columns made by AppendColumns for n events. The
// result may share memory with b, which must not change while it is used.
func DecodeColumns(b []byte, n int) (*Columns, error) {
	c := &Columns{}
	if err := c.Decode(b, n); err != nil {
		return nil, err
	}
	// Decode every column now, so that damage anywhere is an error here.
	for _, name := range c.names {
		if _, err := c.decodeColumn(name); err != nil {
			return nil, err
		}
	}
	if c.end != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadColumns, len(b)-c.end)
	}
	return c, nil
}

// Decode makes c the columns of b for n events, reusing c's memory: the times
// and seqs now, each column when Column first asks for it (a damaged column
// is then nil, and readers fall back to the events). c shares memory with b,
// which must not change while c is used.
func (c *Columns) Decode(b []byte, n int) error {
	if n < 0 || n > len(b) {
		return fmt.Errorf("%w: %d events in %d bytes", ErrBadColumns, n, len(b))
	}
	r := colReader{b: b}
	if got := r.uvarint(); got != uint64(n) {
		return fmt.Errorf("%w: %d events, the chunk has %d", ErrBadColumns, got, n)
	}
	c.N, c.Complete, c.raw = n, false, b
	switch r.byte() {
	case 0:
	case 1:
		c.Complete = true
	default:
		r.fail()
	}
	c.TS, c.Seq = grow(c.TS, n), grow(c.Seq, n)
	var ts, seq int64
	for i := range n {
		ts += r.varint()
		seq += r.varint()
		c.TS[i], c.Seq[i] = ts, uint64(seq)
	}
	count := r.uvarint()
	if count > MaxColumns {
		return fmt.Errorf("%w: %d columns", ErrBadColumns, count)
	}
	if c.cols == nil {
		c.cols = map[string]*Column{}
		c.offs = map[string][2]int{}
	} else {
		// Keep the Column values to reuse their slices.
		for k, col := range c.cols {
			c.spare = append(c.spare, col)
			delete(c.cols, k)
		}
		clear(c.offs)
	}
	c.names = c.names[:0]
	type head struct {
		name string
		size uint64
	}
	heads := make([]head, 0, count)
	for range count {
		name := string(r.bytes())
		heads = append(heads, head{name, r.uvarint()})
	}
	off := r.off
	for _, h := range heads {
		if r.err != nil || h.size > uint64(len(b)-off) {
			r.fail()
			break
		}
		if _, dup := c.offs[h.name]; dup {
			r.fail()
			break
		}
		c.offs[h.name] = [2]int{off, off + int(h.size)}
		c.names = append(c.names, h.name)
		off += int(h.size)
	}
	if r.err != nil {
		return r.err
	}
	c.end = off
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// column0 returns a column of a built Columns (no decoding).
func (c *Columns) column0(key string) *Column { return c.cols[key] }

// decodeColumn decodes and caches the column named key.
func (c *Columns) decodeColumn(key string) (*Column, error) {
	if col := c.cols[key]; col != nil {
		return col, nil
	}
	span, ok := c.offs[key]
	if !ok {
		return nil, nil
	}
	var col *Column
	if n := len(c.spare); n > 0 {
		col, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		col = &Column{}
	}
	n := c.N
	col.Kind, col.Int, col.Float, col.Str, col.Dict = grow(col.Kind, n), grow(col.Int, n), grow(col.Float, n), grow(col.Str, n), col.Dict[:0]
	r := colReader{b: c.raw[span[0]:span[1]]}
	kinds := r.take(n)
	for i, k := range kinds {
		if ColKind(k) >= colKinds {
			r.fail()
		}
		col.Kind[i] = ColKind(k)
	}
	dn := r.uvarint()
	if dn > uint64(n) {
		r.fail()
	}
	for range dn {
		if r.err != nil {
			break
		}
		col.Dict = append(col.Dict, string(r.bytes()))
	}
	for i, k := range col.Kind {
		col.Int[i], col.Float[i], col.Str[i] = 0, 0, 0
		switch k {
		case ColInt:
			col.Int[i] = r.varint()
		case ColFloat:
			col.Float[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.take(8)))
		case ColString:
			if col.Str[i] = uint32(r.uvarint()); uint64(col.Str[i]) >= dn {
				r.fail()
			}
		}
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	c.cols[key] = col
	return col, nil
}

type colReader struct {
	b   []byte
	off int
	err error
}

func (r *colReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d", ErrBadColumns, r.off)
	}
}

func (r *colReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *colReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *colReader) byte() byte {
	b := r.take(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (r *colReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail()
		return make([]byte, max(n, 0))
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *colReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)-r.off) {
		r.fail()
		return nil
	}
	return r.take(int(n))
}
