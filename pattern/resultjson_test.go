package pattern

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// plainResult is Result without its MarshalJSON: encoding/json's own form,
// which AppendJSON must write byte for byte.
type plainResult Result

func TestResultJSONIsEncodingJSONs(t *testing.T) {
	count := int64(42)
	asOf := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		res  Result
	}{
		{"empty", Result{Pattern: "all", Nodes: map[string]NodeResult{}, Matches: []stream.Event{}}},
		{"nil nodes and matches", Result{Pattern: "any"}},
		{"fleet", Result{Pattern: "all", Holds: true, Certain: true, Next: "abc_-=", Count: &count, Scanned: 1 << 40, TookMS: 12.345,
			Nodes: map[string]NodeResult{
				"b": {Matched: 3, Completeness: Completeness{Complete: true, AsOf: asOf}},
				"a": {Matched: 0, Completeness: Completeness{Pending: 7}},
				"c": {Matched: -1, Completeness: Completeness{AsOf: asOf.In(time.FixedZone("x", 3600))}},
			},
			Matches: []stream.Event{
				{Node: "a", Epoch: "e", Seq: 1, Stream: "s", TS: 1, Received: 2, Data: json.RawMessage(`{"x": "<&>", "y":[1, 2]}`)},
				{Node: "b", Epoch: "e", Seq: 2, Stream: "s", TS: 3},
			}}},
		{"odd strings", Result{Pattern: "single(\"<é>\\\n\u2028)", Next: "\x01", TookMS: 1e-9,
			Nodes: map[string]NodeResult{"<ü>\"": {}, "\t": {Matched: 1}}}},
		{"large took", Result{Pattern: "all", TookMS: 1e22}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As the API writes it: no HTML escaping.
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode((*plainResult)(&tt.res)); err != nil {
				t.Fatal(err)
			}
			got, err := tt.res.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got)+"\n" != want.String() {
				t.Fatalf("AppendJSON\n got %s\nwant %s", got, want.Bytes())
			}
			// Through json.Marshal, which escapes HTML.
			wantM, _ := json.Marshal((*plainResult)(&tt.res))
			gotM, err := json.Marshal(&tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotM, wantM) {
				t.Fatalf("json.Marshal\n got %s\nwant %s", gotM, wantM)
			}
		})
	}
}
