package counters

// The view in this file is pure: no I/O, no clock, no goroutines.

import (
	"encoding/json"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// NodeValue returns the value of one node's state as the fleet view shows it:
// P − N for a sum, the register's value (not Set when never set) otherwise.
func (r Register) NodeValue() Value {
	if r.Kind == KindSum {
		return Value{Kind: KindSum, Int: r.PN.Value(), Set: true}
	}
	return Value{Kind: r.Kind, Float: r.Value, Set: r.Set}
}

// Counter is one counter's fleet view under its name: what the hub's API
// shows for it.
type Counter struct {
	Name string
	View
}

// FormatTime returns a wall time in Unix milliseconds as the API shows times:
// RFC 3339 in UTC.
func FormatTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(stream.TimeFormat) }

// MarshalJSON returns {"name","kind","value","nodes":{NODE: VALUE}}, the shape
// sums had before kinds plus "kind". A last counter also has "updated" (the
// wall time of the write that is its value, see FormatTime) and "writer" (the
// node that made it), both null while no node has written. Values are exact
// integers for a sum, numbers for the other kinds, and null for a register no
// write has reached.
func (c Counter) MarshalJSON() ([]byte, error) {
	v := struct {
		Name    string           `json:"name"`
		Kind    Kind             `json:"kind"`
		Value   Value            `json:"value"`
		Nodes   map[string]Value `json:"nodes"`
		Updated json.RawMessage  `json:"updated,omitempty"`
		Writer  json.RawMessage  `json:"writer,omitempty"`
	}{Name: c.Name, Kind: c.Kind, Value: c.Value, Nodes: c.Nodes}
	if v.Nodes == nil {
		v.Nodes = map[string]Value{}
	}
	if c.Kind == KindLast {
		// Present for every last counter, so that null says "no write yet".
		v.Updated, v.Writer = json.RawMessage("null"), json.RawMessage("null")
		if c.Value.Set {
			v.Updated, _ = json.Marshal(FormatTime(c.Updated)) // strings cannot fail
			v.Writer, _ = json.Marshal(c.Writer)
		}
	}
	return json.Marshal(v)
}
