package pattern

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// MarshalJSON returns r in the API's JSON form, the one encoding/json gives
// r's fields (see AppendJSON).
func (r *Result) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendJSON appends r in the API's JSON form to b: the document encoding/json
// writes for r's fields, with the nodes in byte order, and no HTML escaping
// beyond what each event's own MarshalJSON does. An answer over a fleet has
// an entry in nodes for each of 10,000 nodes and more: encoding/json spent
// longer sorting and writing them through reflection than the query took to
// run, so they are written here, and so are the matches (see
// stream.Event.AppendJSON).
func (r *Result) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"pattern":`...)
	b = appendJSONString(b, r.Pattern)
	b = append(b, `,"holds":`...)
	b = strconv.AppendBool(b, r.Holds)
	b = append(b, `,"nodes":`...)
	if r.Nodes == nil {
		b = append(b, "null"...)
	} else {
		names := make([]string, 0, len(r.Nodes))
		for n := range r.Nodes {
			names = append(names, n)
		}
		slices.Sort(names)
		b = append(b, '{')
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n)
			b = append(b, ':')
			b = r.Nodes[n].appendJSON(b)
		}
		b = append(b, '}')
	}
	b = append(b, `,"matches":`...)
	if r.Matches == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Matches {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = r.Matches[i].AppendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"next":`...)
	b = appendJSONString(b, r.Next)
	if r.Count != nil {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, *r.Count, 10)
	}
	b = append(b, `,"scanned":`...)
	b = strconv.AppendInt(b, r.Scanned, 10)
	b = append(b, `,"took_ms":`...)
	t, err := json.Marshal(r.TookMS)
	if err != nil {
		return nil, err
	}
	b = append(b, t...)
	b = append(b, `,"certain":`...)
	b = strconv.AppendBool(b, r.Certain)
	return append(b, '}'), nil
}

// appendJSON appends nr as encoding/json writes it.
func (nr NodeResult) appendJSON(b []byte) []byte {
	b = append(b, `{"matched":`...)
	b = strconv.AppendInt(b, nr.Matched, 10)
	b = append(b, `,"complete":`...)
	b = strconv.AppendBool(b, nr.Complete)
	b = append(b, `,"pending":`...)
	b = strconv.AppendInt(b, nr.Pending, 10)
	if !nr.AsOf.IsZero() {
		b = append(b, `,"as_of":`...)
		// Unix nanoseconds in an int64 stay within the years encoding/json
		// takes (0 to 9999), so the format is all it does.
		b = append(b, '"')
		b = nr.AsOf.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: node names and cursors need
// no escaping, anything else goes through encoding/json without HTML
// escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return appendQuoted(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendQuoted(b []byte, s string) []byte {
	var buf jsonBuf
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A string always encodes.
	_ = enc.Encode(s)
	return append(b, buf[:len(buf)-1]...) // without Encode's newline
}

type jsonBuf []byte

func (j *jsonBuf) Write(p []byte) (int, error) { *j = append(*j, p...); return len(p), nil }
