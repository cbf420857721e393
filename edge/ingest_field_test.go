package edge

import (
	"bytes"
	"encoding/json"
	"testing"
)

// topLevelField must agree with encoding/json on which value a top-level key has.
func checkTopLevelField(t *testing.T, obj []byte) {
	var compact bytes.Buffer
	if json.Compact(&compact, obj) != nil || !bytes.HasPrefix(bytes.TrimSpace(obj), []byte("{")) {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(compact.Bytes(), &m) != nil {
		return
	}
	got, err := topLevelField(compact.Bytes(), "ts")
	if err != nil {
		t.Fatalf("topLevelField(%s): %v", compact.Bytes(), err)
	}
	if string(got) != string(m["ts"]) {
		t.Fatalf("topLevelField(%s) = %s, encoding/json says %s", compact.Bytes(), got, m["ts"])
	}
}

func TestTopLevelField(t *testing.T) {
	for _, obj := range []string{
		`{}`, `{"ts":1}`, `{"a":{"ts":2},"ts":"x"}`, `{"status":"ts","b":[1,{"ts":3}]}`,
		`{"\u0074s":5}`, `{"ts":1,"ts":2}`, `{"a":"\"ts\":9","ts":null}`, `{"TS":1}`, `{"t\"s":1,"ts":[{"}":"]"}]}`,
	} {
		checkTopLevelField(t, []byte(obj))
	}
}

func FuzzTopLevelField(f *testing.F) {
	for _, s := range []string{`{"ts":1}`, `{"a":{"ts":2},"ts":"x"}`, `{"\u0074s":5}`, `{"x":"\\","ts":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkTopLevelField(t, b) })
}
