package pattern

import (
	"encoding/json"
	"strconv"
)

// JSONKind says what an Extractor found at a path.
type JSONKind uint8

// The kinds of Value. Missing is the zero value: the path is not in the data.
const (
	Missing JSONKind = iota
	JSONNull
	JSONBool
	JSONNumber
	JSONString
	JSONArray
	JSONObject
)

// String returns "missing", "null", "bool", "number", "string", "array" or
// "object".
func (k JSONKind) String() string {
	switch k {
	case Missing:
		return "missing"
	case JSONNull:
		return "null"
	case JSONBool:
		return "bool"
	case JSONNumber:
		return "number"
	case JSONString:
		return "string"
	case JSONArray:
		return "array"
	case JSONObject:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is what Extract found at one path. Raw is the value's JSON text as it
// stands in the data, so it aliases the data and is valid only as long as the
// data is; it is nil when Kind is Missing. Num is set for JSONNumber (the
// float64 that encoding/json gives, so integers beyond 2^53 are rounded) and
// Bool for JSONBool.
type Value struct {
	Kind  JSONKind
	Num   float64
	Bool  bool
	Raw   []byte
	plain bool // a string without escapes or bytes outside printable ASCII
}

// AppendStr appends the text of a JSONString value to dst, escapes resolved
// and invalid UTF-8 replaced by U+FFFD as encoding/json does, and returns the
// extended buffer; for other kinds it returns dst unchanged. It allocates only
// for strings with escapes or non-ASCII bytes.
func (v Value) AppendStr(dst []byte) []byte {
	if v.Kind != JSONString {
		return dst
	}
	if v.plain {
		return append(dst, v.Raw[1:len(v.Raw)-1]...)
	}
	d := jsonDecoder{b: v.Raw}
	s, err := d.str()
	if err != nil {
		// Extract checked the string, so this cannot happen.
		return dst
	}
	return append(dst, s...)
}

// Str returns the text of a JSONString value (see AppendStr), and "" for
// other kinds.
func (v Value) Str() string {
	if v.Kind == JSONString && v.plain {
		return string(v.Raw[1 : len(v.Raw)-1])
	}
	return string(v.AppendStr(nil))
}

// Decode returns the value as encoding/json decodes it into an any: nil for
// Missing and JSONNull, bool, float64, string, []any or map[string]any. Its
// only error is a number out of float64's range inside an array or object.
func (v Value) Decode() (any, error) {
	switch v.Kind {
	case Missing, JSONNull:
		return nil, nil
	case JSONBool:
		return v.Bool, nil
	case JSONNumber:
		return v.Num, nil
	case JSONString:
		return v.Str(), nil
	}
	var out any
	err := json.Unmarshal(v.Raw, &out)
	return out, err
}

// Extractor reads a fixed set of paths from JSON objects in one pass over the
// text, decoding only the values at those paths. It is the aggregates' field
// reader: where the predicate decodes whole top-level fields into maps, an
// Extractor builds nothing but the values asked for, allocates nothing (but
// to decode keys with escapes), and passes over strings and digits eight
// bytes at a time. An Extractor does
// not change after NewExtractor and is safe for concurrent use.
type Extractor struct {
	root  extractNode
	paths int
}

// extractNode is one step of the path trie: the keys of its children, the
// outputs whose path ends here, and every output at or below it.
type extractNode struct {
	names []string
	kids  []*extractNode
	lens  uint64         // bit n: some name is n bytes long (bit 63: 63 or more)
	index map[string]int // names to kids, for nodes with many children
	ends  []int
	under []int
}

// NewExtractor returns an Extractor for paths, each a non-empty list of object
// keys from the top level down ({"gps", "lat"} reads gps.lat). Keys are
// matched exactly, after resolving escapes in the data. The same path may
// appear more than once; each occurrence gets its own output. An empty path
// is always Missing.
func NewExtractor(paths [][]string) *Extractor {
	x := &Extractor{paths: len(paths)}
	for i, p := range paths {
		n := &x.root
		for _, k := range p {
			n.under = append(n.under, i)
			n = n.child(k)
		}
		n.under = append(n.under, i)
		n.ends = append(n.ends, i)
	}
	return x
}

func (n *extractNode) child(k string) *extractNode {
	for i, name := range n.names {
		if name == k {
			return n.kids[i]
		}
	}
	c := &extractNode{}
	n.names = append(n.names, k)
	n.kids = append(n.kids, c)
	n.lens |= 1 << min(len(k), 63)
	if len(n.names) > 8 {
		n.index = make(map[string]int, len(n.names))
		for i, name := range n.names {
			n.index[name] = i
		}
	}
	return c
}

// lookup returns the child for the raw key bytes b, or nil.
func (n *extractNode) lookup(b []byte) *extractNode {
	if n.lens&(1<<min(len(b), 63)) == 0 {
		return nil
	}
	if n.index != nil {
		if i, ok := n.index[string(b)]; ok {
			return n.kids[i]
		}
		return nil
	}
	for i, name := range n.names {
		if name == string(b) {
			return n.kids[i]
		}
	}
	return nil
}

// Len returns the number of paths, which is the length Extract wants of out.
func (x *Extractor) Len() int { return x.paths }

// Extract reads data, which must be one JSON object, and sets out[i] to the
// value at path i (out must have Len entries). It checks the whole text as
// encoding/json would and, like it, lets the last of duplicate keys win:
// {"gps":{"lat":1},"gps":2} has no gps.lat. A path through something that is
// not an object is Missing. The error says what is wrong with data and
// where: a syntax error, data that is not an object, or a number at one of
// the paths that is out of float64's range; on error every out[i] is
// Missing.
func (x *Extractor) Extract(data []byte, out []Value) error {
	if len(out) != x.paths {
		panic("pattern: Extract: out has " + strconv.Itoa(len(out)) + " entries for " + strconv.Itoa(x.paths) + " paths")
	}
	clear(out)
	i := ws(data, 0)
	if i >= len(data) || data[i] != '{' {
		return scanError(data, i, "expected a JSON object")
	}
	i, err := extractObject(data, i, &x.root, out, 1)
	if err == nil {
		if i = ws(data, i); i != len(data) {
			err = scanError(data, i, "trailing data")
		}
	}
	if err != nil {
		clear(out)
	}
	return err
}

// extractObject reads the object whose '{' is at i, setting the outputs of
// the paths below n; depth is the object's own.
func extractObject(b []byte, i int, n *extractNode, out []Value, depth int) (int, error) {
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
		var kid *extractNode
		if e, plain := stringEnd8(b, i); plain {
			kid = n.lookup(b[i+1 : e])
			i = e + 1
		} else {
			d := jsonDecoder{b: b, i: i}
			k, err := d.str()
			if err != nil {
				return 0, err
			}
			kid, i = n.lookup([]byte(k)), d.i
		}
		if i, ok = at(b, i, ':'); !ok {
			return 0, scanError(b, i, `expected ":"`)
		}
		i = ws(b, i+1)
		switch {
		case kid != nil:
			i, err = extractValue(b, i, kid, out, depth)
		case i < len(b) && b[i] == '"':
			// Strings and numbers inline: most values that are passed over.
			if e, plain := stringEnd8(b, i); plain {
				i = e + 1
			} else {
				i, err = skipString(b, i)
			}
		case i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '-'):
			i, err = skipNumber(b, i)
		default:
			i, err = skipValue(b, i, depth)
		}
		if err != nil {
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

// extractValue reads the value at i for the trie node n: it sets the outputs
// of the paths that end at n, and reads deeper paths when the value is an
// object. depth is that of the enclosing object.
func extractValue(b []byte, i int, n *extractNode, out []Value, depth int) (int, error) {
	// A later duplicate key replaces everything an earlier one gave.
	for _, o := range n.under {
		out[o] = Value{}
	}
	if i >= len(b) {
		return 0, scanError(b, i, "unexpected end")
	}
	start := i
	var v Value
	var err error
	switch c := b[i]; {
	case c == '{':
		v.Kind = JSONObject
		if len(n.kids) > 0 {
			i, err = extractObject(b, i, n, out, depth+1)
		} else {
			i, err = skipObject(b, i, depth+1)
		}
	case c == '[':
		v.Kind = JSONArray
		i, err = skipArray(b, i, depth+1)
	case c == '"':
		v.Kind = JSONString
		var e int
		if e, v.plain = stringEnd8(b, i); v.plain {
			i = e + 1
		} else {
			i, err = skipString(b, i)
		}
	case c == 't':
		v.Kind, v.Bool = JSONBool, true
		i, err = skipLiteral(b, i, "true")
	case c == 'f':
		v.Kind = JSONBool
		i, err = skipLiteral(b, i, "false")
	case c == 'n':
		v.Kind = JSONNull
		i, err = skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		v.Kind = JSONNumber
		if i, err = skipNumber(b, i); err == nil && len(n.ends) > 0 {
			var ok bool
			if v.Num, ok = parseFloat(b[start:i]); !ok {
				return 0, scanError(b, start, "number "+string(b[start:i])+" is out of float64's range")
			}
		}
	default:
		return 0, scanError(b, i, "unexpected character")
	}
	if err != nil {
		return 0, err
	}
	if len(n.ends) > 0 {
		v.Raw = b[start:i:i]
		for _, o := range n.ends {
			out[o] = v
		}
	}
	return i, nil
}
