package stream

import (
	"encoding/json"
	"testing"
)

// eventFields is eventJSON as Event.MarshalJSON used to fill it: what
// encoding/json writes for it is what AppendJSON must write, byte for byte.
func eventFields(e Event) eventJSON {
	j := eventJSON{Node: e.Node, Epoch: e.Epoch, Seq: e.Seq, Stream: e.Stream, TS: FormatTime(e.TS), Data: e.Data}
	if e.Received != 0 {
		j.Received = FormatTime(e.Received)
	}
	if len(j.Data) == 0 {
		j.Data = json.RawMessage("{}")
	}
	return j
}

func TestEventJSONIsEncodingJSONs(t *testing.T) {
	tests := []Event{
		{Node: "a", Epoch: "e1", Seq: 1, Stream: "s", TS: 1_714_564_800_123_456_789, Received: 1_714_564_800_000_000_000, Data: json.RawMessage(`{"t":21.5}`)},
		{Node: "b", Epoch: "e", Seq: 1 << 63, Stream: "s", TS: 0},
		{Node: "b", Epoch: "e", Stream: "s", TS: -1, Data: json.RawMessage(" { \"x\" : [1, 2 , {\"y\": null}],\n\"z\":\"<a&b> \u2028\u2029 é\" } ")},
		{Node: "odd<\"name\">", Epoch: "é", Stream: "\x01", TS: 1e18, Data: json.RawMessage(`"plain"`)},
		// Compact, but each holds a byte that is escaped or needs a check:
		// none may be copied as it is.
		{Node: "c", Epoch: "e", Stream: "s", Data: json.RawMessage(`{"a":"<b>"}`)},
		{Node: "c", Epoch: "e", Stream: "s", Data: json.RawMessage(`{"a":"x&y"}`)},
		{Node: "c", Epoch: "e", Stream: "s", Data: json.RawMessage("{\"a\":\"\u2028\"}")},
		{Node: "c", Epoch: "e", Stream: "s", Data: json.RawMessage("{\"a\":1}\n")},
	}
	for _, e := range tests {
		want, err := json.Marshal(eventFields(e))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("AppendJSON\n got %s\nwant prefix%s", got, want)
		}
		if m, _ := json.Marshal(e); string(m) != string(want) {
			t.Errorf("json.Marshal\n got %s\nwant %s", m, want)
		}
	}
	bad := Event{Node: "a", Data: json.RawMessage(`{"x":`)}
	if _, err := json.Marshal(bad); err == nil {
		t.Error("an event with invalid data was encoded")
	}
}
