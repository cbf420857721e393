package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/stream"
)

// ErrBadBody is returned (wrapped) by ParseIngest when a body is not one JSON
// object, an array of objects or NDJSON; the message says what and where.
var ErrBadBody = errors.New("invalid body")

// ErrEventTooLarge is returned (wrapped) by ParseIngest when one event is larger
// than the per-event limit.
var ErrEventTooLarge = errors.New("event too large")

// DefaultMaxEventBytes is the default limit on one event's data, compacted.
const DefaultMaxEventBytes = 1 << 20

// ParseIngest turns an ingest body into events. The body is one JSON object, a
// JSON array of objects, or NDJSON (one object per line; chosen by a
// contentType of application/x-ndjson, and also recognised when the body holds
// several top-level objects). Each object becomes one Input with its data
// compacted but otherwise verbatim, and its time taken from the object's own
// "ts" field (stream.EventTime) or else now (Unix nanoseconds).
//
// It is all or nothing: on any error it returns no events. A body that is not
// made of JSON objects, or an unusable ts, gives an error wrapping ErrBadBody
// that names the place ("event 3 (line 4): not a JSON object", "line 2 column 7:
// invalid character ..."). An event over maxEventBytes (DefaultMaxEventBytes
// when not positive) gives an error wrapping ErrEventTooLarge.
func ParseIngest(body []byte, contentType string, now int64, maxEventBytes int) ([]Input, error) {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	p := &ingestParser{body: body, now: now, max: maxEventBytes}
	base := 0
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		base = 3 // a UTF-8 byte order mark some editors write
	}
	start := skipSpace(body, base)
	if start == len(body) {
		return nil, fmt.Errorf("%w: the body is empty; send a JSON object, an array of objects or NDJSON", ErrBadBody)
	}
	p.data.Grow(len(body))
	var err error
	if body[start] == '[' && !isNDJSON(contentType) {
		err = p.array(base)
	} else {
		err = p.values(base)
	}
	if err != nil {
		return nil, err
	}
	if len(p.events) == 0 {
		return nil, fmt.Errorf("%w: the body holds no events", ErrBadBody)
	}
	return p.finish(), nil
}

// isNDJSON reports whether a Content-Type names newline-delimited JSON.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
		"application/jsonlines", "application/x-jsonlines":
		return true
	}
	return false
}

type ingestParser struct {
	body []byte
	now  int64
	max  int
	// data holds every event's compacted JSON back to back; spans index it.
	data   bytes.Buffer
	events []Input
	spans  [][2]int
}

// values reads a sequence of top-level JSON values, each of which must be an
// object: one object, or NDJSON.
func (p *ingestParser) values(base int) error {
	dec := json.NewDecoder(bytes.NewReader(p.body[base:]))
	for i := 1; ; i++ {
		start := skipSpace(p.body, base+int(dec.InputOffset()))
		if start == len(p.body) {
			return nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return p.syntaxError(err, base)
		}
		if err := p.event(i, start, raw); err != nil {
			return err
		}
	}
}

// array reads one JSON array whose elements must be objects. Each element is
// read by its own decoder so that error offsets are exact.
func (p *ingestParser) array(base int) error {
	pos := skipSpace(p.body, base) + 1 // past the '['
	for i := 1; ; i++ {
		pos = skipSpace(p.body, pos)
		if pos == len(p.body) {
			return p.syntaxError(io.ErrUnexpectedEOF, 0)
		}
		if p.body[pos] == ']' && i == 1 {
			pos++
			break
		}
		dec := json.NewDecoder(bytes.NewReader(p.body[pos:]))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return p.syntaxError(err, pos)
		}
		if err := p.event(i, pos, raw); err != nil {
			return err
		}
		pos = skipSpace(p.body, pos+int(dec.InputOffset()))
		if pos == len(p.body) {
			return p.syntaxError(io.ErrUnexpectedEOF, 0)
		}
		if p.body[pos] == ']' {
			pos++
			break
		}
		if p.body[pos] != ',' {
			line, col := lineCol(p.body, pos)
			return fmt.Errorf("%w: line %d column %d: invalid character %s after array element", ErrBadBody, line, col, quoteByte(p.body[pos]))
		}
		pos++
	}
	if end := skipSpace(p.body, pos); end != len(p.body) {
		line, col := lineCol(p.body, end)
		return fmt.Errorf("%w: line %d column %d: unexpected data after the array", ErrBadBody, line, col)
	}
	return nil
}

// quoteByte quotes a byte the way encoding/json's messages do.
func quoteByte(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	if c >= utf8.RuneSelf {
		s = fmt.Sprintf("%q", string([]byte{c}))
	}
	return "'" + s[1:len(s)-1] + "'"
}

// syntaxError turns a decoder error into one that says where, in lines and
// columns of the whole body.
func (p *ingestParser) syntaxError(err error, base int) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(p.body, base+int(se.Offset)-1)
		return fmt.Errorf("%w: line %d column %d: %s", ErrBadBody, line, col, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		line, col := lineCol(p.body, len(p.body))
		return fmt.Errorf("%w: line %d column %d: unexpected end of body", ErrBadBody, line, col)
	}
	return fmt.Errorf("%w: %v", ErrBadBody, err)
}

// event checks one top-level value that starts at byte start of the body and
// keeps it.
func (p *ingestParser) event(i, start int, raw json.RawMessage) error {
	in, data, err := parseEvent(raw, p.now, p.max, &p.data)
	if err != nil {
		// Only on error: counting lines for every event would make a large
		// body cost quadratic time.
		line, _ := lineCol(p.body, start)
		return fmt.Errorf("%w: event %d (line %d): %v", err.kind, i, line, err.reason)
	}
	p.events = append(p.events, in)
	p.spans = append(p.spans, data)
	return nil
}

// finish points every event's Data at its compacted bytes.
func (p *ingestParser) finish() []Input {
	buf := p.data.Bytes()
	for i := range p.events {
		s := p.spans[i]
		p.events[i].Data = json.RawMessage(buf[s[0]:s[1]:s[1]])
	}
	return p.events
}

// eventError carries a sentinel (ErrBadBody or ErrEventTooLarge) and the bare
// reason, so that callers can say where the event was.
type eventError struct {
	kind   error
	reason string
}

func (e *eventError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *eventError) Unwrap() error { return e.kind }

// parseEvent checks that raw is one JSON object within max bytes once compacted,
// appends the compacted form to dst and returns the Input (without Data) and the
// span of dst that holds it. On error dst is unchanged.
func parseEvent(raw []byte, now int64, max int, dst *bytes.Buffer) (Input, [2]int, *eventError) {
	fail := func(kind error, format string, args ...any) (Input, [2]int, *eventError) {
		return Input{}, [2]int{}, &eventError{kind, fmt.Sprintf(format, args...)}
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return fail(ErrBadBody, "not a JSON object")
	}
	if !utf8.Valid(t) {
		return fail(ErrBadBody, "not valid UTF-8")
	}
	start := dst.Len()
	if err := json.Compact(dst, t); err != nil {
		dst.Truncate(start)
		return fail(ErrBadBody, "%v", err)
	}
	end := dst.Len()
	if end-start > max {
		dst.Truncate(start)
		return fail(ErrEventTooLarge, "%d bytes is over the %d byte limit", end-start, max)
	}
	ts := now
	// A "ts" key is spelled with those letters or with a \u escape; skip the
	// field decoding for events that cannot have one.
	if bytes.Contains(t, []byte("ts")) || bytes.Contains(t, []byte(`\u`)) {
		raw, err := topLevelField(dst.Bytes()[start:end], "ts")
		if err != nil {
			dst.Truncate(start)
			return fail(ErrBadBody, "%v", err)
		}
		v, ok, err := stream.EventTime(raw)
		if err != nil {
			dst.Truncate(start)
			return fail(ErrBadBody, "%v", err)
		}
		if ok {
			ts = v
		}
	}
	return Input{TS: ts}, [2]int{start, end}, nil
}

// skipSpace returns the offset of the first byte at or after off that is not
// JSON white space.
func skipSpace(b []byte, off int) int {
	for off < len(b) {
		switch b[off] {
		case ' ', '\t', '\r', '\n':
			off++
		default:
			return off
		}
	}
	return off
}

// lineCol returns the 1-based line and byte column of offset off in b.
func lineCol(b []byte, off int) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > len(b) {
		off = len(b)
	}
	line = 1 + bytes.Count(b[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// parseLine parses one NDJSON line (without its newline) as one event, for the
// line-oriented sources. Errors wrap ErrBadBody or ErrEventTooLarge.
func parseLine(line []byte, now int64, max int) (Input, error) {
	if max <= 0 {
		max = DefaultMaxEventBytes
	}
	var buf bytes.Buffer
	in, span, err := parseEvent(line, now, max, &buf)
	if err != nil {
		return Input{}, err
	}
	in.Data = json.RawMessage(buf.Bytes()[span[0]:span[1]])
	return in, nil
}

// topLevelField returns the raw value of the top-level key name in obj, a
// compacted and valid JSON object, or nil when it has none (the last one when
// repeated, as encoding/json does). Keys written with escapes are decoded, so
// "\u0074s" is "ts" too.
func topLevelField(obj []byte, name string) (json.RawMessage, error) {
	var found json.RawMessage
	i := 1 // past '{'
	for i < len(obj) && obj[i] != '}' {
		kEnd := skipString(obj, i)
		key := obj[i+1 : kEnd-1]
		match := string(key) == name
		if !match && bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(obj[i:kEnd], &k); err != nil {
				return nil, err
			}
			match = k == name
		}
		vStart := kEnd + 1 // past ':'
		vEnd := skipValue(obj, vStart)
		if match {
			found = obj[vStart:vEnd]
		}
		i = vEnd
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
	return found, nil
}

// skipString returns the offset just past the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the offset just past the compact JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}
