package web

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge/agent"
)

// TestEdgeCounterKinds writes max, min and last counters through the local API:
// each answers with its kind and this node's value, a last write with the time
// it was stamped, and the kind fixed by a name's first write turns a write of
// another kind into a 409 conflict that changes nothing.
func TestEdgeCounterKinds(t *testing.T) {
	e := newEdgeServer(t, func(a *agent.Agent) {
		a.Now = func() time.Time { return time.UnixMilli(1_700_000_000_123) }
	})
	for _, step := range []struct{ name, body, want string }{
		{"pressure", `{"kind": "max", "value": 4.5}`, `{"name":"pressure","node":"n1","kind":"max","value":4.5}`},
		{"pressure", `{"kind": "max", "value": 3}`, `{"name":"pressure","node":"n1","kind":"max","value":4.5}`},
		{"pressure", `{"kind": "max", "value": 1e3}`, `{"name":"pressure","node":"n1","kind":"max","value":1000}`},
		{"battery", `{"kind": "min", "value": 80}`, `{"name":"battery","node":"n1","kind":"min","value":80}`},
		{"battery", `{"kind": "min", "value": -0.25}`, `{"name":"battery","node":"n1","kind":"min","value":-0.25}`},
		{"firmware", `{"kind": "last", "value": 7}`, `{"name":"firmware","node":"n1","kind":"last","value":7,"updated":"2023-11-14T22:13:20.123Z"}`},
		{"firmware", `{"kind": "last", "value": 6}`, `{"name":"firmware","node":"n1","kind":"last","value":6,"updated":"2023-11-14T22:13:20.123Z"}`},
		{"doors", `{"delta": 2}`, `{"name":"doors","node":"n1","kind":"sum","value":2}`},
	} {
		code, b := e.do("POST", "/api/v1/counters/"+step.name, "application/json", step.body)
		if code != 200 || strings.TrimSpace(string(b)) != step.want {
			t.Fatalf("POST %s %s: %d %s, want %s", step.name, step.body, code, b, step.want)
		}
	}
	for name, want := range map[string]string{
		"pressure": `{"name":"pressure","node":"n1","kind":"max","value":1000}`,
		"firmware": `{"name":"firmware","node":"n1","kind":"last","value":6,"updated":"2023-11-14T22:13:20.123Z"}`,
	} {
		if code, b := e.do("GET", "/api/v1/counters/"+name, "", ""); code != 200 || strings.TrimSpace(string(b)) != want {
			t.Fatalf("GET %s: %d %s, want %s", name, code, b, want)
		}
	}

	for _, c := range []struct{ name, body, msg string }{
		{"pressure", `{"delta": 1}`, `counter "pressure" is a max counter, not a sum`},
		{"pressure", `{"kind": "min", "value": 1}`, `counter "pressure" is a max counter, not a min`},
		{"doors", `{"kind": "last", "value": 1}`, `counter "doors" is a sum counter, not a last`},
		{"firmware", `{"kind": "max", "value": 1}`, "fixed by its first write"},
	} {
		e.wantError("POST", "/api/v1/counters/"+c.name, "application/json", c.body, 409, CodeConflict, c.msg)
	}
	if code, b := e.do("GET", "/api/v1/counters/pressure", "", ""); code != 200 || !strings.Contains(string(b), `"value":1000`) {
		t.Fatalf("pressure after refused writes: %d %s", code, b)
	}

	for body, msg := range map[string]string{
		`{"kind": "avg", "value": 1}`:               `kind: counters: unknown kind "avg", want sum, max, min or last`,
		`{"kind": "", "delta": 1}`:                  `unknown kind ""`,
		`{"kind": 3, "value": 1}`:                   "cannot unmarshal number",
		`{"kind": "max"}`:                           `value is missing; want {"kind": "max", "value": NUMBER}`,
		`{"kind": "max", "value": null}`:            "value is missing",
		`{"kind": "max", "value": "3"}`:             `value "3" is not a number`,
		`{"kind": "max", "value": true}`:            "value true is not a number",
		`{"kind": "max", "value": 1e400}`:           "value 1e400 does not fit in a 64-bit float",
		`{"kind": "max", "value": 1, "delta": 1}`:   `a max counter takes "value", not "delta"`,
		`{"value": 1}`:                              `a sum takes "delta", not "value"`,
		`{"kind": "sum", "delta": 1, "value": 2}`:   `a sum takes "delta", not "value"`,
		`{"kind": "last", "value": 1, "at": "now"}`: `unknown field "at"`,
	} {
		e.wantError("POST", "/api/v1/counters/fresh", "application/json", body, 400, CodeInvalid, msg)
	}
	e.wantError("GET", "/api/v1/counters/fresh", "", "", 404, CodeNotFound, "never written")
}

// FuzzParseCounterWrite feeds arbitrary bodies to the counter write parser: it
// never panics, refuses with a 400 invalid error, and what it accepts is a sum
// with a delta or a register with a finite value, which reads back the same
// from the body it would be written as.
func FuzzParseCounterWrite(f *testing.F) {
	for _, seed := range []string{`{"delta": 5}`, `{"kind": "sum", "delta": -3}`, `{"kind": "max", "value": 2.5}`,
		`{"kind": "last", "value": -1e300}`, `{"kind": "min", "value": null}`, `{"value": 1}`, `{"delta": 1.5}`, `[]`, ``, `{"kind": "max", "value": 1e999}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := parseCounterWrite(body)
		if err != nil {
			if e := Classify(err); e.Status != 400 || e.Code != CodeInvalid {
				t.Fatalf("refused %q with %d %s", body, e.Status, e.Code)
			}
			return
		}
		var again []byte
		if w.kind == counters.KindSum {
			if w.value != 0 {
				t.Fatalf("a sum with a value from %q", body)
			}
			again, _ = json.Marshal(map[string]any{"delta": w.delta})
		} else {
			if !w.kind.Valid() || math.IsNaN(w.value) || math.IsInf(w.value, 0) || w.delta != 0 {
				t.Fatalf("accepted %q as %+v", body, w)
			}
			again, _ = json.Marshal(map[string]any{"kind": w.kind, "value": w.value})
		}
		if w2, err := parseCounterWrite(again); err != nil || w2 != w {
			t.Fatalf("%q read as %+v, but its body %s reads as %+v, %v", body, w, again, w2, err)
		}
	})
}
