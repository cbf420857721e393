package stream

import (
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
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{Node: e.Node, Epoch: e.Epoch, Seq: e.Seq, Stream: e.Stream, TS: FormatTime(e.TS), Data: e.Data}
	if e.Received != 0 {
		j.Received = FormatTime(e.Received)
	}
	if len(j.Data) == 0 {
		j.Data = json.RawMessage("{}")
	}
	return json.Marshal(j)
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

// EventTime extracts the event time from a decoded "ts" field: an RFC 3339 string
// or an integer number of Unix milliseconds. ok is false when raw is absent; an
// error says what was wrong with a present but unusable value.
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
