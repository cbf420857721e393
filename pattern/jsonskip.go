package pattern

import (
	"encoding/binary"
	"math/bits"
)

// The Extractor's scanner. It accepts exactly what skip and numberSpan
// accept, but it passes the text and the offset as arguments rather than
// through a *jsonDecoder, so that they stay in registers, and it looks at
// strings and runs of digits eight bytes at a time: an Extractor passes over
// most of every event's text. Each function takes the offset of the token
// and returns the offset just past it; errors come from scanError.

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

func scanError(b []byte, i int, what string) error {
	d := jsonDecoder{b: b, i: i}
	return d.syntax(what)
}

// ws returns the offset of the first byte at or after i that is not JSON
// white space.
func ws(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// at returns the offset of the first byte at or after i that is not white
// space, and whether it is c. Events rarely have white space, so it looks
// for c first.
func at(b []byte, i int, c byte) (int, bool) {
	if i < len(b) && b[i] == c {
		return i, true
	}
	i = ws(b, i)
	return i, i < len(b) && b[i] == c
}

// allDigits reports whether the eight bytes of x are ASCII digits.
func allDigits(x uint64) bool {
	return (x&(lo8*0xf0)^lo8*0x30)|((x+lo8*0x06)&(lo8*0xf0)^lo8*0x30) == 0
}

// parse8 returns the number that the eight ASCII digits of x spell, the
// first in the lowest byte (Lemire, "Faster integer parsing").
func parse8(x uint64) uint64 {
	x -= lo8 * '0'
	x = x*10 + x>>8
	return ((x&0x000000FF000000FF)*(100+1000000<<32) + (x>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32 & 0xFFFFFFFF
}

// stringEnd8 returns the offset of the closing quote of the string whose
// opening quote is at i, and whether the string is plain (see scanString);
// for a string that is not plain it returns the offset of its first byte
// that is not plain.
func stringEnd8(b []byte, i int) (int, bool) {
	i++
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i : i+8])
		q := x ^ (lo8 * '"')
		s := x ^ (lo8 * '\\')
		// The high bit of the first byte that is '"', '\\', a control
		// character or not ASCII; borrows may flag bytes after it, never
		// before.
		if m := (((q - lo8) &^ q) | ((s - lo8) &^ s) | ((x - lo8*0x20) &^ x) | x) & hi8; m != 0 {
			i += bits.TrailingZeros64(m) / 8
			return i, b[i] == '"'
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < ' ' || c >= 0x80 {
			return i, c == '"'
		}
	}
	return i, false
}

// skipString passes over the string whose quote is at i, checking it as str
// does without building its text.
func skipString(b []byte, i int) (int, error) {
	e, plain := stringEnd8(b, i)
	if plain {
		return e + 1, nil
	}
	for i = e; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < ' ':
			return 0, scanError(b, i, "control character in string")
		case c == '\\':
			if i+1 >= len(b) {
				return 0, scanError(b, i, "unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(b[i+2:]) < 0 {
					return 0, scanError(b, i, "bad \\u escape")
				}
				i += 6
			default:
				return 0, scanError(b, i, "bad escape")
			}
		default:
			// Invalid UTF-8 is no error: str replaces it.
			i++
		}
	}
	return 0, scanError(b, i, "unterminated string")
}

// digits8 returns the offset of the first byte at or after i that is not an
// ASCII digit.
func digits8(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i : i+8])
		// A byte is a digit when its high nibble is 3 and adding 6 keeps it
		// so; a carry out of a non-digit disturbs only the bytes above it.
		if t := (x&(lo8*0xf0) ^ lo8*0x30) | ((x+lo8*0x06)&(lo8*0xf0) ^ lo8*0x30); t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// skipNumber passes over the number at i, checking its form as numberSpan
// does.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits8(b, i+1)
	default:
		return 0, scanError(b, i, "bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, scanError(b, i, "bad number")
		}
		i = digits8(b, i+1)
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, scanError(b, i, "bad number")
		}
		i = digits8(b, i+1)
	}
	return i, nil
}

// endError is the error for what follows a member or element at i, which
// is neither a comma nor close.
func endError(b []byte, i int, close byte) error {
	if i >= len(b) {
		return scanError(b, i, "unexpected end")
	}
	return scanError(b, i, `expected "," or "`+string(close)+`"`)
}

// skipLiteral passes over true, false or null at i.
func skipLiteral(b []byte, i int, word string) (int, error) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return 0, scanError(b, i, "bad literal")
	}
	return i + len(word), nil
}

// skipValue passes over the value at i; depth is that of the enclosing
// container.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, scanError(b, i, "unexpected end")
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, scanError(b, i, "unexpected character")
}

// skipObject passes over the object whose '{' is at i; depth is its own.
func skipObject(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errDepth
	}
	if j, ok := at(b, i+1, '}'); ok {
		return j + 1, nil
	}
	i++
	var err error
	for {
		var ok bool
		if i, ok = at(b, i, '"'); !ok {
			return 0, scanError(b, i, "expected a string key")
		}
		if i, err = skipString(b, i); err != nil {
			return 0, err
		}
		if i, ok = at(b, i, ':'); !ok {
			return 0, scanError(b, i, `expected ":"`)
		}
		if i, err = skipValue(b, ws(b, i+1), depth); err != nil {
			return 0, err
		}
		if i, ok = at(b, i, ','); ok {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		return 0, endError(b, i, '}')
	}
}

// skipArray passes over the array whose '[' is at i; depth is its own.
func skipArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errDepth
	}
	if j, ok := at(b, i+1, ']'); ok {
		return j + 1, nil
	}
	i++
	var err error
	for {
		if i, err = skipValue(b, ws(b, i), depth); err != nil {
			return 0, err
		}
		var ok bool
		if i, ok = at(b, i, ','); ok {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		return 0, endError(b, i, ']')
	}
}
