package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

func TestParseIngest(t *testing.T) {
	const now = int64(1_700_000_000_000_000_000)
	ts := func(s string) int64 {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UnixNano()
	}
	type ev struct {
		ts   int64
		data string
	}
	tests := []struct {
		name    string
		body    string
		ct      string
		max     int
		want    []ev
		wantErr error
		msg     string // substring of the error
	}{
		{name: "one object", body: `{"temp": 21.5, "site": "north"}`,
			want: []ev{{now, `{"temp":21.5,"site":"north"}`}}},
		{name: "object with surrounding space", body: "\n\t {\"a\":1}  \r\n", want: []ev{{now, `{"a":1}`}}},
		{name: "byte order mark", body: "\xef\xbb\xbf{\"a\":1}", want: []ev{{now, `{"a":1}`}}},
		{name: "array", body: `[{"a":1}, {"b":[1,2]} ,{"c":{"d":null}}]`,
			want: []ev{{now, `{"a":1}`}, {now, `{"b":[1,2]}`}, {now, `{"c":{"d":null}}`}}},
		{name: "ndjson", ct: "application/x-ndjson", body: "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n",
			want: []ev{{now, `{"a":1}`}, {now, `{"a":2}`}, {now, `{"a":3}`}}},
		{name: "ndjson with charset", ct: "application/x-ndjson; charset=utf-8", body: "{\"a\":1}\n{\"a\":2}",
			want: []ev{{now, `{"a":1}`}, {now, `{"a":2}`}}},
		{name: "several objects without ndjson type", ct: "application/json", body: "{\"a\":1}\n{\"a\":2}\n",
			want: []ev{{now, `{"a":1}`}, {now, `{"a":2}`}}},
		{name: "ts as RFC 3339", body: `{"ts":"2024-05-01T10:00:00.5Z","v":1}`,
			want: []ev{{ts("2024-05-01T10:00:00.5Z"), `{"ts":"2024-05-01T10:00:00.5Z","v":1}`}}},
		{name: "ts as Unix ms", body: `{"v":1,"ts":1714557600500}`,
			want: []ev{{ts("2024-05-01T10:00:00.5Z"), `{"v":1,"ts":1714557600500}`}}},
		{name: "ts spelled with an escape", body: `{"\u0074s":1714557600500}`,
			want: []ev{{ts("2024-05-01T10:00:00.5Z"), `{"\u0074s":1714557600500}`}}},
		{name: "ts null means now", body: `{"ts":null}`, want: []ev{{now, `{"ts":null}`}}},
		{name: "nested ts is not event time", body: `{"x":{"ts":5}}`, want: []ev{{now, `{"x":{"ts":5}}`}}},
		{name: "TS in other case is not event time", body: `{"TS":5}`, want: []ev{{now, `{"TS":5}`}}},
		{name: "strings kept verbatim", body: `{"s":"a  b\n\u00e9"}`, want: []ev{{now, `{"s":"a  b\n\u00e9"}`}}},

		{name: "empty body", body: "", wantErr: ErrBadBody, msg: "the body is empty"},
		{name: "only space", body: " \n ", wantErr: ErrBadBody, msg: "the body is empty"},
		{name: "empty array", body: "[]", wantErr: ErrBadBody, msg: "holds no events"},
		{name: "number", body: "42", wantErr: ErrBadBody, msg: "event 1 (line 1): not a JSON object"},
		{name: "string", body: `"hello"`, wantErr: ErrBadBody, msg: "event 1 (line 1): not a JSON object"},
		{name: "array element not an object", body: "[{\"a\":1},\n{\"a\":2},\n 3]",
			wantErr: ErrBadBody, msg: "event 3 (line 3): not a JSON object"},
		{name: "nested array", body: "[[{\"a\":1}]]", wantErr: ErrBadBody, msg: "event 1 (line 1): not a JSON object"},
		{name: "ndjson line not an object", ct: "application/x-ndjson", body: "{\"a\":1}\n{\"a\":2}\n\n[1]\n",
			wantErr: ErrBadBody, msg: "event 3 (line 4): not a JSON object"},
		{name: "ndjson array line", ct: "application/x-ndjson", body: "[{\"a\":1}]",
			wantErr: ErrBadBody, msg: "event 1 (line 1): not a JSON object"},
		{name: "syntax error", body: "{\"a\":1}\n{\"b\": x}", wantErr: ErrBadBody,
			msg: "line 2 column 7: invalid character 'x' looking for beginning of value"},
		{name: "syntax error in array", body: "[{\"a\":1},\n {\"a\" 2}]", wantErr: ErrBadBody,
			msg: "line 2 column 7: invalid character '2' after object key"},
		{name: "missing comma in array", body: `[{"a":1} {"a":2}]`, wantErr: ErrBadBody,
			msg: "line 1 column 10: invalid character '{' after array element"},
		{name: "truncated object", body: `{"a":`, wantErr: ErrBadBody, msg: "line 1 column 6: unexpected end of body"},
		{name: "truncated array", body: `[{"a":1}`, wantErr: ErrBadBody, msg: "unexpected end of body"},
		{name: "data after array", body: "[{\"a\":1}]\n{\"b\":2}", wantErr: ErrBadBody,
			msg: "line 2 column 1: unexpected data after the array"},
		{name: "bad ts string", body: "{\"a\":1}\n{\"ts\":\"yesterday\"}", wantErr: ErrBadBody,
			msg: `event 2 (line 2): ts "yesterday" is not an RFC 3339 time`},
		{name: "bad ts type", body: `{"ts":true}`, wantErr: ErrBadBody, msg: "event 1 (line 1): ts true is neither"},
		{name: "fractional ts", body: `{"ts":1.5}`, wantErr: ErrBadBody, msg: "event 1 (line 1): ts 1.5"},
		{name: "invalid UTF-8", body: "{\"a\":\"\xff\"}", wantErr: ErrBadBody, msg: "event 1 (line 1): not valid UTF-8"},
		{name: "event over the limit", body: `{"a":"0123456789"}` + "\n" + `{"a":"0123456789012345678901234567890"}`, max: 30,
			wantErr: ErrEventTooLarge, msg: "event 2 (line 2): 39 bytes is over the 30 byte limit"},
		{name: "number beyond float64", body: "{\"a\":1}\n{\"a\":{\"b\":[1,1e400]}}", wantErr: ErrBadBody,
			msg: "event 2 (line 2): the number 1e400 is outside the range of a 64-bit float (±1.798e+308)"},
		{name: "negative number beyond float64", body: `{"a":-1.7976931348623159e308}`, wantErr: ErrBadBody,
			msg: "the number -1.7976931348623159e308 is outside"},
		{name: "long integer beyond float64", body: `{"a":1` + strings.Repeat("0", 309) + `}`, wantErr: ErrBadBody,
			msg: "the number 1000000000000000000000000000000000000000… is outside"},
		{name: "numbers within float64", body: `{"a":1.7976931348623157e308,"b":-4.9e-324,"c":1e-400,"d":1` + strings.Repeat("0", 308) + `}`,
			want: []ev{{now, `{"a":1.7976931348623157e308,"b":-4.9e-324,"c":1e-400,"d":1` + strings.Repeat("0", 308) + `}`}}},
		{name: "big numbers in strings are text", body: `{"a":"1e400","b\"1e400":"\\","c":2}`,
			want: []ev{{now, `{"a":"1e400","b\"1e400":"\\","c":2}`}}},
		{name: "limit counts compacted bytes", body: `{ "a" : "0123456789" ,  "b" : 1 }`, max: 24,
			want: []ev{{now, `{"a":"0123456789","b":1}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIngest([]byte(tt.body), tt.ct, now, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %q does not say %q", err, tt.msg)
				}
				if got != nil {
					t.Fatalf("got %d events with an error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].TS != w.ts || string(got[i].Data) != w.data {
					t.Errorf("event %d = (%d, %s), want (%d, %s)", i, got[i].TS, got[i].Data, w.ts, w.data)
				}
			}
		})
	}
}

func TestParseIngestEventCap(t *testing.T) {
	body := []byte(strings.Repeat("{}\n", MaxIngestEvents))
	got, err := ParseIngest(body, "application/x-ndjson", 1, 0)
	if err != nil || len(got) != MaxIngestEvents {
		t.Fatalf("%d events: %d, %v", MaxIngestEvents, len(got), err)
	}
	for _, c := range []struct {
		body string
		line int
	}{{strings.Repeat("{}\n", MaxIngestEvents+1), MaxIngestEvents + 1}, {"[" + strings.Repeat("{},", MaxIngestEvents) + "{}]", 1}} {
		got, err = ParseIngest([]byte(c.body), "", 1, 0)
		want := fmt.Sprintf("event %d (line %d) is one more than the %d events one request may hold", MaxIngestEvents+1, c.line, MaxIngestEvents)
		if !errors.Is(err, ErrTooManyEvents) || got != nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("one event more: %d events, %v; want ErrTooManyEvents saying %q", len(got), err, want)
		}
	}
}

func TestParseIngestSharesCompactBodies(t *testing.T) {
	body := []byte("{\"a\":1}\n{ \"b\" : 2 }\n")
	got, err := ParseIngest(body, "", 1, 0)
	if err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
	// A compact event is the body's own bytes; a spaced one is a compacted copy.
	if &got[0].Data[0] != &body[0] || string(got[1].Data) != `{"b":2}` {
		t.Fatalf("events %q %q: the first does not share the body", got[0].Data, got[1].Data)
	}
	// ParseLine copies: the sources reuse their line buffers.
	line := []byte(`{"a":1}`)
	in, err := ParseLine(line, 1, 0)
	if err != nil || &in.Data[0] == &line[0] {
		t.Fatalf("ParseLine shares the line: %v", err)
	}
}

func TestParseIngestDataDoNotAlias(t *testing.T) {
	got, err := ParseIngest([]byte(`[{"a":1},{"b":2}]`), "", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one event's data must not overwrite the next one's.
	_ = append(got[0].Data, 'x', 'x', 'x')
	if string(got[1].Data) != `{"b":2}` {
		t.Fatalf("second event became %s", got[1].Data)
	}
}

func TestParseLine(t *testing.T) {
	in, err := ParseLine([]byte(` {"a": 1, "ts": 1000} `), 7, 0)
	if err != nil || in.TS != int64(time.Second) || string(in.Data) != `{"a":1,"ts":1000}` {
		t.Fatalf("parseLine = %+v, %v", in, err)
	}
	for _, bad := range []string{``, `[1]`, `{"a":1} {"b":2}`, `{"a":`, `{"ts":"x"}`} {
		if _, err := ParseLine([]byte(bad), 7, 0); !errors.Is(err, ErrBadBody) {
			t.Errorf("ParseLine(%q) error %v, want ErrBadBody", bad, err)
		}
	}
}

func FuzzParseIngest(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[{"a":1},{"b":2}]`, "{\"a\":1}\n{\"b\":2}\n", `{"ts":"2024-05-01T10:00:00Z"}`,
		`{"ts":1714557600500}`, `[1]`, `{"a":`, `"x"`, "\xef\xbb\xbf{}", `[{"a":1}] x`, `{"\u0074s":"bad"}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, nd bool) {
		ct := "application/json"
		if nd {
			ct = "application/x-ndjson"
		}
		got, err := ParseIngest(body, ct, 42, 256)
		if err != nil {
			if got != nil {
				t.Fatalf("events returned with error %v", err)
			}
			if !errors.Is(err, ErrBadBody) && !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no events and no error")
		}
		for i, in := range got {
			if !stream.IsObject(in.Data) {
				t.Fatalf("event %d is not a JSON object: %q", i, in.Data)
			}
			if len(in.Data) > 256 {
				t.Fatalf("event %d has %d bytes, over the limit", i, len(in.Data))
			}
			var v map[string]any
			if err := json.Unmarshal(in.Data, &v); err != nil {
				t.Fatalf("event %d does not decode: %v", i, err)
			}
		}
	})
}
