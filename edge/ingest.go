package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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

// ErrTooManyEvents is returned (wrapped) by ParseIngest for a body of more than
// MaxIngestEvents events.
var ErrTooManyEvents = errors.New("too many events")

// DefaultMaxEventBytes is the default limit on one event's data, compacted.
const DefaultMaxEventBytes = 1 << 20

// MaxIngestEvents is the most events one ingest body may hold. Each event costs
// the agent a few dozen bytes of memory besides its data while the body is
// parsed and committed, so without it a 16 MiB body of tiny objects (5.5
// million {}) made the agent use hundreds of MiB. Send more in several bodies.
const MaxIngestEvents = 100_000

// ParseIngest turns an ingest body into events. The body is one JSON object, a
// JSON array of objects, or NDJSON (one object per line; chosen by a
// contentType of application/x-ndjson, and also recognised when the body holds
// several top-level objects). Each object becomes one Input with its data
// compacted but otherwise verbatim, and its time taken from the object's own
// "ts" field (stream.EventTime) or else now (Unix nanoseconds).
//
// It is all or nothing: on any error it returns no events. A body that is not
// made of JSON objects, an unusable ts, or a number beyond the range of a
// float64 (which clients reading numbers as float64 could not decode), gives
// an error wrapping ErrBadBody that names the place ("event 3 (line 4): not a
// JSON object", "line 2 column 7: invalid character ..."). An event over
// maxEventBytes (DefaultMaxEventBytes when not positive) gives an error
// wrapping ErrEventTooLarge, and a body of more than MaxIngestEvents events one
// wrapping ErrTooManyEvents; parsing stops there.
//
// The events' Data share body's memory where the body already holds them
// compacted (one copy of the data, not two): body must not change while they
// are in use.
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
	var err error
	if body[start] == '[' && !isNDJSON(contentType) {
		err = p.array(base)
	} else {
		// Most such bodies are NDJSON: one event a line, at most.
		p.events = make([]Input, 0, min(bytes.Count(body, []byte{'\n'})+1, MaxIngestEvents))
		err = p.values(base)
	}
	if err != nil {
		return nil, err
	}
	if len(p.events) == 0 {
		return nil, fmt.Errorf("%w: the body holds no events", ErrBadBody)
	}
	return p.events, nil
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
	// scratch receives each event compacted, to compare with the body.
	scratch bytes.Buffer
	events  []Input
}

// values reads a sequence of top-level JSON values, each of which must be an
// object: one object, or NDJSON.
func (p *ingestParser) values(base int) error {
	dec := json.NewDecoder(bytes.NewReader(p.body[base:]))
	// One value buffer for every event: the event's bytes are the body's.
	var raw json.RawMessage
	for i := 1; ; i++ {
		start := skipSpace(p.body, base+int(dec.InputOffset()))
		if start == len(p.body) {
			return nil
		}
		if err := dec.Decode(&raw); err != nil {
			return p.syntaxError(err, base)
		}
		if err := p.event(i, start, p.body[start:base+int(dec.InputOffset())]); err != nil {
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
		if err := p.event(i, pos, p.body[pos:pos+int(dec.InputOffset())]); err != nil {
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

// event checks the i-th top-level value, src, which starts at byte start of
// the body, and keeps it.
func (p *ingestParser) event(i, start int, src []byte) error {
	if len(p.events) == MaxIngestEvents {
		line, _ := lineCol(p.body, start)
		return fmt.Errorf("%w: event %d (line %d) is one more than the %d events one request may hold; send the rest in another",
			ErrTooManyEvents, i, line, MaxIngestEvents)
	}
	in, err := parseEvent(src, p.now, p.max, &p.scratch)
	if err != nil {
		// Only on error: counting lines for every event would make a large
		// body cost quadratic time.
		line, _ := lineCol(p.body, start)
		return fmt.Errorf("%w: event %d (line %d): %v", err.kind, i, line, err.reason)
	}
	p.events = append(p.events, in)
	return nil
}

// eventError carries a sentinel (ErrBadBody or ErrEventTooLarge) and the bare
// reason, so that callers can say where the event was.
type eventError struct {
	kind   error
	reason string
}

func (e *eventError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *eventError) Unwrap() error { return e.kind }

// parseEvent checks that src is one JSON object within max bytes once
// compacted and returns it as an Input. Its Data is src itself (capacity
// clipped, so an append cannot overwrite what follows) when src is already
// compact, as bodies written by programs are, and otherwise a copy of the
// compacted form. scratch is working space; its contents are not kept.
func parseEvent(src []byte, now int64, max int, scratch *bytes.Buffer) (Input, *eventError) {
	fail := func(kind error, format string, args ...any) (Input, *eventError) {
		return Input{}, &eventError{kind, fmt.Sprintf(format, args...)}
	}
	t := bytes.TrimSpace(src)
	if len(t) == 0 || t[0] != '{' {
		return fail(ErrBadBody, "not a JSON object")
	}
	if !utf8.Valid(t) {
		return fail(ErrBadBody, "not valid UTF-8")
	}
	scratch.Reset()
	if err := json.Compact(scratch, t); err != nil {
		return fail(ErrBadBody, "%v", err)
	}
	// Compacting only removes bytes: the same length means the same bytes.
	data, compact := t[:len(t):len(t)], scratch.Len() == len(t)
	if !compact {
		data = scratch.Bytes()
	}
	if len(data) > max {
		return fail(ErrEventTooLarge, "%d bytes is over the %d byte limit", len(data), max)
	}
	if num := outOfRangeNumber(data); num != nil {
		// Served verbatim, such a number makes the page undecodable for
		// clients that read numbers as float64 (Go's encoding/json, say).
		return fail(ErrBadBody, "the number %s is outside the range of a 64-bit float (±%.4g)", clip(num, 40), math.MaxFloat64)
	}
	ts := now
	// A "ts" key is spelled with those letters or with a \u escape; skip the
	// field decoding for events that cannot have one.
	if bytes.Contains(t, []byte("ts")) || bytes.Contains(t, []byte(`\u`)) {
		raw, err := topLevelField(data, "ts")
		if err != nil {
			return fail(ErrBadBody, "%v", err)
		}
		v, ok, err := stream.EventTime(raw)
		if err != nil {
			return fail(ErrBadBody, "%v", err)
		}
		if ok {
			ts = v
		}
	}
	if !compact {
		data = bytes.Clone(data)
	}
	return Input{TS: ts, Data: data}, nil
}

// outOfRangeNumber returns the first number of obj, a compact and valid JSON
// value, whose magnitude is beyond the largest float64 (it would round to
// infinity), or nil when there is none. Numbers that round to zero are fine.
func outOfRangeNumber(obj []byte) []byte {
	for i := 0; i < len(obj); i++ {
		switch c := obj[i]; {
		case c == '"':
			i = endOfString(obj, i) - 1
		case c == '-' || c >= '0' && c <= '9':
			j, exp := i+1, false
			for ; j < len(obj); j++ {
				d := obj[j]
				if d == 'e' || d == 'E' {
					exp = true
				} else if !(d >= '0' && d <= '9' || d == '.' || d == '-' || d == '+') {
					break
				}
			}
			// Without an exponent a number needs over 308 digits to overflow:
			// most numbers are not parsed at all.
			if exp || j-i > 300 {
				if _, err := strconv.ParseFloat(string(obj[i:j]), 64); err != nil {
					return obj[i:j]
				}
			}
			i = j - 1
		}
	}
	return nil
}

// endOfString returns the offset just past the JSON string starting at b[i],
// like skipString, looking for quotes a word at a time.
func endOfString(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for b[j-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// clip shortens b to n bytes for a message.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
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

// ParseLine parses one NDJSON line (without its newline) as one event, for the
// line-oriented sources. Errors wrap ErrBadBody or ErrEventTooLarge.
func ParseLine(line []byte, now int64, max int) (Input, error) {
	if max <= 0 {
		max = DefaultMaxEventBytes
	}
	var scratch bytes.Buffer
	in, err := parseEvent(line, now, max, &scratch)
	if err != nil {
		return Input{}, err
	}
	// The sources reuse their line buffers.
	in.Data = bytes.Clone(in.Data)
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
