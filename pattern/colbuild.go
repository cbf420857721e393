package pattern

import (
	"bytes"
	"strconv"

	"github.com/tributary-edge/tributary/stream"
)

// The index builds the columns of every chunk it writes, so building them is
// on the path of every event the hub takes in. colBuilder builds them
// straight from each event's text: no map per object, no interface per value,
// no string per key or per string value already in a column's dictionary.
// It gives up (and BuildColumns decodes the slow way, event by event into
// maps) on anything unusual: a syntax error, a number out of range, or a path
// met twice in one event, which only a duplicate key makes (where the last
// key wins, and the earlier value's own paths must not count).

// colBuilder is the state of one fast BuildColumns.
type colBuilder struct {
	c    *Columns
	cols map[string]*builtCol
	path []byte // the path of the value being read, its keys joined by NUL
	// seen holds the columns of the last event in the order its paths came:
	// events of one stream mostly have the same keys in the same order, so
	// the nth path of an event is first compared with the last one's nth.
	seen []*builtCol
	nth  int
}

// builtCol is a column being built and its dictionary.
type builtCol struct {
	col  *Column
	dict map[string]uint32
	name string
}

// buildColumnsFast returns the columns of evs, or false when an event is one
// it leaves to the slow way.
func buildColumnsFast(evs []stream.Event) (*Columns, bool) {
	c := &Columns{N: len(evs), Complete: true, cols: map[string]*Column{}, TS: make([]int64, len(evs)), Seq: make([]uint64, len(evs))}
	for i := range evs {
		c.TS[i], c.Seq[i] = evs[i].TS, evs[i].Seq
	}
	cb := colBuilder{c: c, cols: map[string]*builtCol{}, path: make([]byte, 0, 64)}
	for i := range evs {
		cb.nth = 0
		d := jsonDecoder{b: evs[i].Data}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '{' {
			return nil, false
		}
		if !cb.object(&d, i, 0, 0) {
			return nil, false
		}
		d.space()
		if d.i != len(d.b) {
			return nil, false
		}
	}
	return c, true
}

// object reads the object whose '{' is at d.i, the value of event i at the
// path cb.path[:plen] of depth keys.
func (cb *colBuilder) object(d *jsonDecoder, i, plen, depth int) bool {
	d.i++ // '{'
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return true
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return false
		}
		var key []byte
		if s, e, plain := d.scanString(); plain {
			key, d.i = d.b[s:e], e+1
		} else {
			k, err := d.str()
			if err != nil {
				return false
			}
			key = []byte(k)
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return false
		}
		d.i++
		d.space()
		if !cb.member(d, i, plen, depth, key) {
			return false
		}
		d.space()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// member reads the value at d.i of key in the object at cb.path[:plen].
func (cb *colBuilder) member(d *jsonDecoder, i, plen, depth int, key []byte) bool {
	c := cb.c
	if bytes.IndexByte(key, 0) >= 0 {
		c.Complete = false
		return cb.discard(d, depth+1)
	}
	p := cb.path[:plen]
	if plen > 0 {
		p = append(p, 0)
	}
	p = append(p, key...)
	cb.path = p
	var bc *builtCol
	if cb.nth < len(cb.seen) && cb.seen[cb.nth].name == string(p) {
		bc = cb.seen[cb.nth]
	} else {
		bc = cb.cols[string(p)]
	}
	if bc == nil {
		if len(c.cols) >= MaxColumns {
			c.Complete = false
			return cb.discard(d, depth+1)
		}
		name := string(p)
		bc = &builtCol{col: &Column{Kind: make([]ColKind, c.N), Int: make([]int64, c.N), Float: make([]float64, c.N), Str: make([]uint32, c.N)}, name: name}
		cb.cols[name] = bc
		c.cols[name] = bc.col
		c.names = append(c.names, name)
	}
	if cb.nth < len(cb.seen) {
		cb.seen[cb.nth] = bc
	} else {
		cb.seen = append(cb.seen, bc)
	}
	cb.nth++
	col := bc.col
	if col.Kind[i] != ColMissing {
		return false // a duplicate key
	}
	if d.i >= len(d.b) {
		return false
	}
	switch ch := d.b[d.i]; {
	case ch == '{':
		col.Kind[i] = ColComplex
		if depth+1 < MaxColumnDepth {
			return cb.object(d, i, len(p), depth+1)
		}
		at := d.i
		d.i++
		d.space()
		empty := d.i < len(d.b) && d.b[d.i] == '}'
		d.i = at
		if !empty {
			c.Complete = false
		}
		return cb.discard(d, depth+1)
	case ch == '[':
		col.Kind[i] = ColComplex
		return cb.discard(d, depth+1)
	case ch == '"':
		if s, e, plain := d.scanString(); plain {
			v := d.b[s:e]
			d.i = e + 1
			col.Kind[i], col.Str[i] = ColString, bc.intern(v)
			return true
		}
		v, err := d.str()
		if err != nil {
			return false
		}
		col.Kind[i], col.Str[i] = ColString, bc.intern([]byte(v))
	case ch == 't':
		col.Kind[i] = ColTrue
		return d.literal("true") == nil
	case ch == 'f':
		col.Kind[i] = ColFalse
		return d.literal("false") == nil
	case ch == 'n':
		col.Kind[i] = ColNull
		return d.literal("null") == nil
	case ch == '-' || ch >= '0' && ch <= '9':
		n, f, isInt, ok := d.scalarNumber()
		if !ok {
			return false
		}
		if isInt {
			col.Kind[i], col.Int[i] = ColInt, n
		} else {
			col.Kind[i], col.Float[i] = ColFloat, f
		}
	default:
		return false
	}
	return true
}

// intern returns the dictionary index of v, adding it. The lookup of a
// string(bytes) conversion does not allocate; only a new entry does.
func (bc *builtCol) intern(v []byte) uint32 {
	if bc.dict == nil {
		bc.dict = map[string]uint32{}
	}
	if id, ok := bc.dict[string(v)]; ok {
		return id
	}
	id := uint32(len(bc.col.Dict))
	s := string(v)
	bc.dict[s] = id
	bc.col.Dict = append(bc.col.Dict, s)
	return id
}

// discard reads a value no column keeps as the slow way does, decoding it
// whole, so that the two fail on the same events.
func (cb *colBuilder) discard(d *jsonDecoder, depth int) bool {
	_, err := d.value(depth)
	return err == nil
}

// scalarNumber reads the number at d.i as number does, without boxing it: an
// int when number gives an int, otherwise a float; ok is false where number
// fails.
func (d *jsonDecoder) scalarNumber() (n int64, f float64, isInt, ok bool) {
	start, integral, err := d.numberSpan()
	if err != nil {
		return 0, 0, false, false
	}
	lit := d.b[start:d.i]
	if integral && len(lit) <= 19 {
		neg := lit[0] == '-'
		digits := lit
		if neg {
			digits = lit[1:]
		}
		if len(digits) <= 18 {
			for _, c := range digits {
				n = n*10 + int64(c-'0')
			}
			if neg {
				n = -n
			}
			return intOrFloat(n)
		}
	}
	// simpleDecimal takes at most 15 digits: do not try it on the 16 or 17 of
	// a float written in Go's shortest form.
	if len(lit) <= 17 {
		if f, ok := simpleDecimal(lit); ok {
			return 0, f, false, true
		}
	}
	if integral {
		if n, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			return intOrFloat(n)
		}
	}
	f, ok = parseFloat(lit)
	return 0, f, false, ok
}

// intOrFloat is intValue's choice: an int where int holds n.
func intOrFloat(n int64) (int64, float64, bool, bool) {
	if int64(int(n)) == n {
		return n, 0, true, true
	}
	return 0, float64(n), false, true
}
