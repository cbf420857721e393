package pattern

import (
	"errors"
	"fmt"
)

// The predicate reads an event's data through this decoder rather than
// encoding/json: it is the hot loop of every query with a where-expression, and
// decoding only the fields the expression names saves most of the work.
// It accepts exactly the JSON that encoding/json accepts and produces the same
// values, except that a number written without fraction or exponent that fits
// an int64 becomes an int (so that %, indexes and integer comparisons work);
// every other number is a float64.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

var errDepth = errors.New("json: exceeded max depth")

// decodeObject decodes the JSON object b into dst. When keep is non-nil, only
// the top-level fields it holds are decoded; the others are checked and
// skipped. Duplicate keys: the last one wins.
func decodeObject(b []byte, dst map[string]any, keep *fieldSet) error {
	d := jsonDecoder{b: b}
	d.space()
	if d.i >= len(b) || b[d.i] != '{' {
		return d.syntax("expected a JSON object")
	}
	if err := d.object(dst, keep, 1); err != nil {
		return err
	}
	d.space()
	if d.i != len(b) {
		return d.syntax("trailing data")
	}
	return nil
}

type jsonDecoder struct {
	b []byte
	i int
}

func (d *jsonDecoder) syntax(what string) error {
	return fmt.Errorf("json: %s at offset %d", what, d.i)
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object decodes an object whose '{' is at d.i into dst (when dst is nil, it
// only checks it).
func (d *jsonDecoder) object(dst map[string]any, keep *fieldSet, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	d.i++ // '{'
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return d.syntax("expected a string key")
		}
		var key string
		want := true
		if keep != nil {
			// Look the raw key up first: most keys have no escapes.
			s, e, plain := d.scanString()
			if e < 0 {
				return d.syntax("bad string")
			}
			if plain {
				key, want = keep.lookup(d.b[s:e])
				d.i = e + 1
			} else {
				k, err := d.str()
				if err != nil {
					return err
				}
				key = k
				_, want = keep.lookup([]byte(k))
			}
		} else if dst != nil {
			k, err := d.str()
			if err != nil {
				return err
			}
			key = k
		} else {
			// Only checking: pass over a plain key without building it.
			if _, e, plain := d.scanString(); plain {
				d.i = e + 1
			} else if _, err := d.str(); err != nil {
				return err
			}
			want = false
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return d.syntax(`expected ":"`)
		}
		d.i++
		d.space()
		if want && dst != nil {
			v, err := d.value(depth)
			if err != nil {
				return err
			}
			dst[key] = v
		} else if err := d.skip(depth); err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.b) {
			return d.syntax("unexpected end")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.syntax(`expected "," or "}"`)
		}
	}
}

func (d *jsonDecoder) array(depth int) ([]any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	d.i++ // '['
	out := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return out, nil
	}
	for {
		d.space()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, d.syntax("unexpected end")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.syntax(`expected "," or "]"`)
		}
	}
}

// value decodes the value at d.i; depth is that of the enclosing container.
func (d *jsonDecoder) value(depth int) (any, error) {
	if d.i >= len(d.b) {
		return nil, d.syntax("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		m := map[string]any{}
		if err := d.object(m, nil, depth+1); err != nil {
			return nil, err
		}
		return m, nil
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, d.syntax("unexpected character")
}

// skip checks and passes over the value at d.i without building it.
func (d *jsonDecoder) skip(depth int) error {
	if d.i >= len(d.b) {
		return d.syntax("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(nil, nil, depth+1)
	case c == '[':
		if depth+1 > maxDepth {
			return errDepth
		}
		d.i++
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return nil
		}
		for {
			d.space()
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.space()
			if d.i >= len(d.b) {
				return d.syntax("unexpected end")
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case ']':
				d.i++
				return nil
			default:
				return d.syntax(`expected "," or "]"`)
			}
		}
	case c == '"':
		if _, e, plain := d.scanString(); plain {
			d.i = e + 1
			return nil
		}
		_, err := d.str()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, _, err := d.numberSpan()
		return err
	}
	return d.syntax("unexpected character")
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return d.syntax("bad literal")
	}
	d.i += len(word)
	return nil
}
