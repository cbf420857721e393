package aggregate

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"math"

	"github.com/tributary-edge/tributary/pattern"
)

// A group key is encoded as bytes, one value after another, each a tag and
// its payload, so that equal keys have equal bytes and a cell is one map
// lookup of window and key. The tags are also the order of the JSON types in
// the answer.
const (
	tagNull   byte = iota // a missing field, or JSON null
	tagBool               // one byte, 0 or 1
	tagNumber             // 8 bytes, the float64's bits; -0 is 0
	tagString             // uvarint length, the decoded text
	tagArray              // uvarint length, the compact JSON text
	tagObject             // uvarint length, the compact JSON text
)

// appendValue appends the key encoding of an extracted value. compact is
// scratch space for arrays and objects.
func appendValue(dst []byte, v *pattern.Value, compact *bytes.Buffer) []byte {
	switch v.Kind {
	case pattern.JSONBool:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		return append(dst, tagBool, b)
	case pattern.JSONNumber:
		return appendNumber(dst, v.Num)
	case pattern.JSONString:
		// The length goes first, so reserve its bytes for the common short
		// string and move the text when it is longer.
		dst = append(dst, tagString, 0)
		at := len(dst)
		dst = v.AppendStr(dst)
		if n := len(dst) - at; n < 0x80 {
			dst[at-1] = byte(n)
		} else {
			var l [binary.MaxVarintLen64]byte
			w := binary.PutUvarint(l[:], uint64(n))
			dst = append(dst, l[1:w]...)
			copy(dst[at+w-1:], dst[at:at+n])
			copy(dst[at-1:], l[:w])
		}
		return dst
	case pattern.JSONArray, pattern.JSONObject:
		compact.Reset()
		// Cannot fail: Extract checked the text.
		_ = json.Compact(compact, v.Raw)
		tag := tagArray
		if v.Kind == pattern.JSONObject {
			tag = tagObject
		}
		return appendBytes(append(dst, tag), compact.Bytes())
	}
	return append(dst, tagNull)
}

func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		f = 0 // -0 and 0 are one number
	}
	return binary.BigEndian.AppendUint64(append(dst, tagNumber), math.Float64bits(f))
}

// appendColumnValue appends the key encoding of row i of col, a column of
// the chunk (nil: the path is in none of its events). ok is false for an
// object or an array, whose key is its JSON text, which only the event has.
func appendColumnValue(dst []byte, col *pattern.Column, i int) (out []byte, ok bool) {
	if col == nil {
		return append(dst, tagNull), true
	}
	switch col.Kind[i] {
	case pattern.ColFalse:
		return append(dst, tagBool, 0), true
	case pattern.ColTrue:
		return append(dst, tagBool, 1), true
	case pattern.ColInt:
		return appendNumber(dst, float64(col.Int[i])), true
	case pattern.ColFloat:
		return appendNumber(dst, col.Float[i]), true
	case pattern.ColString:
		return appendString(dst, col.Dict[col.Str[i]]), true
	case pattern.ColComplex:
		return dst, false
	}
	return append(dst, tagNull), true
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(append(dst, tagString), uint64(len(s))), s...)
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// keyValue is one decoded group key value.
type keyValue struct {
	tag  byte
	num  float64
	text string // strings, and the JSON text of arrays and objects
}

// decodeKey splits an encoded key into its values.
func decodeKey(k string) []keyValue {
	var out []keyValue
	for len(k) > 0 {
		v := keyValue{tag: k[0]}
		k = k[1:]
		switch v.tag {
		case tagBool:
			v.num = float64(k[0])
			k = k[1:]
		case tagNumber:
			v.num = math.Float64frombits(binary.BigEndian.Uint64([]byte(k[:8])))
			k = k[8:]
		case tagString, tagArray, tagObject:
			n, w := binary.Uvarint([]byte(k[:min(len(k), binary.MaxVarintLen64)]))
			v.text = k[w : w+int(n)]
			k = k[w+int(n):]
		}
		out = append(out, v)
	}
	return out
}

// compareKeys orders keys field by field: null first, then booleans (false
// before true), numbers, strings (by bytes), arrays and objects (by their
// JSON text).
func compareKeys(a, b []keyValue) int {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		if c := cmp.Compare(x.tag, y.tag); c != 0 {
			return c
		}
		if c := cmp.Compare(x.num, y.num); c != 0 {
			return c
		}
		if c := cmp.Compare(x.text, y.text); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// value returns the key value as it goes into the answer: nil, bool,
// float64, string, or json.RawMessage for arrays and objects.
func (v keyValue) value() any {
	switch v.tag {
	case tagBool:
		return v.num == 1
	case tagNumber:
		return v.num
	case tagString:
		return v.text
	case tagArray, tagObject:
		return json.RawMessage(v.text)
	}
	return nil
}
