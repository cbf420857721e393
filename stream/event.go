package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is one event with its identity (Node, Epoch, Seq). TS is event time and
// Received the hub's clock at materialization, both as Unix nanoseconds; Data is
// the event's JSON object, verbatim.
type Event struct {
	Node     string
	Epoch    string
	Seq      uint64
	Stream   string
	TS       int64
	Received int64
	Data     json.RawMessage
}

// Less reports whether a comes before b in merge order: (ts, node, epoch, seq)
// ascending.
func Less(a, b *Event) bool {
	if a.TS != b.TS {
		return a.TS < b.TS
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	if a.Epoch != b.Epoch {
		return a.Epoch < b.Epoch
	}
	return a.Seq < b.Seq
}

// TimeFormat is how event times are written in the API: RFC 3339, UTC, with
// nanosecond precision when the time has it.
const TimeFormat = time.RFC3339Nano

// FormatTime renders Unix nanoseconds in the API's time format.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(TimeFormat)
}

type eventJSON struct {
	Node     string          `json:"node"`
	Epoch    string          `json:"epoch"`
	Seq      uint64          `json:"seq"`
	Stream   string          `json:"stream"`
	TS       string          `json:"ts"`
	Received string          `json:"received,omitempty"`
	Data     json.RawMessage `json:"data"`
}

// MarshalJSON writes the API form of an event:
// {"node","epoch","seq","stream","ts","received","data"}.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }

// AppendJSON appends the API form of the event to b, byte for byte what
// encoding/json writes for it (HTML characters escaped, data compacted). A
// page of matches is mostly this, so it writes the fields itself rather than
// through reflection. Data that needs compacting or escaping is checked as it
// is compacted (an error when it is not valid JSON); data of printable ASCII
// with no space, <, > or & is compact already and is copied as it is: it is
// trusted to be JSON, as every event's is that the hub or an edge took in,
// checked then (and the hub's chunks carry zstd's checksum). encoding/json
// checks what MarshalJSON returns in any case.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"node":`...)
	b = appendName(b, e.Node)
	b = append(b, `,"epoch":`...)
	b = appendName(b, e.Epoch)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"stream":`...)
	b = appendName(b, e.Stream)
	b = append(b, `,"ts":"`...)
	b = time.Unix(0, e.TS).UTC().AppendFormat(b, TimeFormat)
	b = append(b, '"')
	if e.Received != 0 {
		b = append(b, `,"received":"`...)
		b = time.Unix(0, e.Received).UTC().AppendFormat(b, TimeFormat)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "{}"...)
	} else {
		var err error
		if b, err = appendCompactHTML(b, e.Data); err != nil {
			return nil, fmt.Errorf("event data: %w", err)
		}
	}
	return append(b, '}'), nil
}

// appendName appends s as encoding/json writes a string: names need no
// escaping; anything else goes through encoding/json.
func appendName(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendCompactHTML appends data compacted and with <, >, &, U+2028 and
// U+2029 escaped, as encoding/json writes a RawMessage; an error when data is
// not valid JSON.
func appendCompactHTML(b, data []byte) ([]byte, error) {
	if compactASCII(data) {
		return append(b, data...), nil
	}
	start := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, data); err != nil {
		return nil, err
	}
	b = buf.Bytes()
	if needsHTMLEscape(b[start:]) {
		c := bytes.Clone(b[start:])
		buf = bytes.NewBuffer(b[:start])
		json.HTMLEscape(buf, c)
		b = buf.Bytes()
	}
	return b, nil
}

// compactASCII reports whether data holds only printable ASCII other than
// space, <, > and &: then compacting and escaping it change nothing.
func compactASCII(data []byte) bool {
	for _, c := range data {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// needsHTMLEscape reports whether b holds <, > or &, or maybe U+2028 or
// U+2029 (whose UTF-8 starts with 0xE2): a byte loop, where
// bytes.ContainsAny decodes runes.
func needsHTMLEscape(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return true
		}
	}
	return false
}

// UnmarshalJSON reads the API form written by MarshalJSON.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	ts, err := time.Parse(time.RFC3339Nano, j.TS)
	if err != nil {
		return fmt.Errorf("event ts: %w", err)
	}
	*e = Event{Node: j.Node, Epoch: j.Epoch, Seq: j.Seq, Stream: j.Stream, TS: ts.UnixNano(), Data: j.Data}
	if j.Received != "" {
		r, err := time.Parse(time.RFC3339Nano, j.Received)
		if err != nil {
			return fmt.Errorf("event received: %w", err)
		}
		e.Received = r.UnixNano()
	}
	return nil
}

// MinYear and MaxYear are the first and last whole years an event time may
// fall in. Times are Unix nanoseconds in an int64, which run from 1677-09-21
// to 2262-04-11; outside them time.Time.UnixNano wraps around silently.
const (
	MinYear = 1678
	MaxYear = 2261
)

// InTimeRange reports whether t lies in the years MinYear to MaxYear (UTC), so
// that t.UnixNano is exact.
func InTimeRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= MinYear && y <= MaxYear
}

// EventTime extracts the event time from a decoded "ts" field: an RFC 3339 string
// in the years MinYear to MaxYear, or an integer number of Unix milliseconds
// that fits Unix nanoseconds. ok is false when raw is absent; an error says
// what was wrong with a present but unusable value, and for a time out of
// range names the range.
func EventTime(raw json.RawMessage) (ns int64, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, fmt.Errorf("ts: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false, fmt.Errorf("ts %q is not an RFC 3339 time", s)
		}
		if !InTimeRange(t) {
			return 0, false, fmt.Errorf("ts %q is outside the years %d to %d", s, MinYear, MaxYear)
		}
		return t.UnixNano(), true, nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("ts %s is neither an RFC 3339 string nor integer Unix milliseconds", truncate(string(raw), 40))
	}
	const maxMs = (1<<63 - 1) / int64(time.Millisecond)
	if ms > maxMs || ms < -maxMs {
		return 0, false, fmt.Errorf("ts %d milliseconds is out of range", ms)
	}
	return ms * int64(time.Millisecond), true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
