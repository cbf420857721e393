package pattern

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Scalars of the data decoder: numbers and strings, decoded as encoding/json
// does; and the set of fields worth decoding.

// fieldSet is a set of top-level field names to decode. Lookups of raw key
// bytes neither allocate nor, for keys of a length no name has, compare.
type fieldSet struct {
	names []string
	lens  uint64            // bit n: some name is n bytes long (bit 63: 63 or more)
	m     map[string]string // for larger sets; maps each name to itself
}

func newFieldSet(names ...string) *fieldSet {
	f := &fieldSet{names: names}
	for _, n := range names {
		f.lens |= 1 << min(len(n), 63)
	}
	if len(names) > 8 {
		f.m = make(map[string]string, len(names))
		for _, n := range names {
			f.m[n] = n
		}
	}
	return f
}

// lookup returns the name equal to b, so that keeping it costs no allocation.
func (f *fieldSet) lookup(b []byte) (string, bool) {
	if f.lens&(1<<min(len(b), 63)) == 0 {
		return "", false
	}
	if f.m != nil {
		n, ok := f.m[string(b)]
		return n, ok
	}
	for _, n := range f.names {
		if n == string(b) {
			return n, true
		}
	}
	return "", false
}

// numberSpan checks the JSON number at d.i, moves past it and tells whether it
// is integral (no fraction, no exponent).
func (d *jsonDecoder) numberSpan() (start int, integral bool, err error) {
	b, i := d.b, d.i
	start = i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return 0, false, d.syntax("bad number")
	}
	integral = true
	if i < len(b) && b[i] == '.' {
		integral = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return 0, false, d.syntax("bad number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integral = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return 0, false, d.syntax("bad number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return start, integral, nil
}

func (d *jsonDecoder) number() (any, error) {
	start, integral, err := d.numberSpan()
	if err != nil {
		return nil, err
	}
	lit := d.b[start:d.i]
	if integral && len(lit) <= 19 {
		// At most 18 digits always fits an int64; no need for strconv.
		var n int64
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
			return intValue(n), nil
		}
	}
	if f, ok := simpleDecimal(lit); ok {
		return f, nil
	}
	if integral {
		if n, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			return intValue(n), nil
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return nil, fmt.Errorf("json: number %s is out of range", lit)
	}
	return f, nil
}

// scanString finds the end of the string whose '"' is at d.i. It returns the
// content's bounds (e is the closing quote's offset, -1 if there is none) and
// whether the content is plain: printable ASCII only, no escapes, so that its
// bytes are its value. It does not move d.i.
func (d *jsonDecoder) scanString() (s, e int, plain bool) {
	b := d.b
	s = d.i + 1
	for i := s; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			return s, i, true
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			// Not plain: find the end the slow way.
			return s, d.stringEnd(i), false
		}
	}
	return s, -1, false
}

// stringEnd returns the offset of the closing quote of a string, scanning from
// i inside it, or -1.
func (d *jsonDecoder) stringEnd(i int) int {
	b := d.b
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i
		case '\\':
			i++
		}
	}
	return -1
}

// str decodes the string whose '"' is at d.i, as encoding/json does: escapes
// resolved, invalid UTF-8 and lone surrogates replaced by U+FFFD.
func (d *jsonDecoder) str() (string, error) {
	b := d.b
	i := d.i + 1
	start := i
	for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= ' ' && b[i] < utf8.RuneSelf {
		i++
	}
	if i < len(b) && b[i] == '"' {
		d.i = i + 1
		return string(b[start:i]), nil
	}
	out := make([]byte, 0, i-start+16)
	out = append(out, b[start:i]...)
	for {
		if i >= len(b) {
			d.i = i
			return "", d.syntax("unterminated string")
		}
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(out), nil
		case c < ' ':
			d.i = i
			return "", d.syntax("control character in string")
		case c == '\\':
			if i+1 >= len(b) {
				d.i = i
				return "", d.syntax("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/':
				out = append(out, b[i+1])
				i += 2
			case 'b':
				out = append(out, '\b')
				i += 2
			case 'f':
				out = append(out, '\f')
				i += 2
			case 'n':
				out = append(out, '\n')
				i += 2
			case 'r':
				out = append(out, '\r')
				i += 2
			case 't':
				out = append(out, '\t')
				i += 2
			case 'u':
				r := hex4(b[i+2:])
				if r < 0 {
					d.i = i
					return "", d.syntax("bad \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						r2 = hex4(b[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						out = utf8.AppendRune(out, dec)
						i += 6
						break
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i = i
				return "", d.syntax("bad escape")
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
}

func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// intValue returns n as an int, the integer type expressions compute with, or
// as a float64 where int is 32 bits wide and n does not fit.
func intValue(n int64) any {
	if int64(int(n)) == n {
		return int(n)
	}
	return float64(n)
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// simpleDecimal converts a checked number literal of the form -ddd.ddd with at
// most 15 digits in all and no exponent. Both the digits as an integer and the
// power of ten are exact in a float64, so one division rounds correctly and
// gives what strconv.ParseFloat gives.
func simpleDecimal(lit []byte) (float64, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var mant uint64
	digits, frac := 0, -1
	for i, c := range lit {
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
		case c == '.':
			frac = len(lit) - i - 1
		default:
			return 0, false // exponent
		}
	}
	if frac < 0 || digits > 15 {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
