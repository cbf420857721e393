package pattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

func mustTime(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

var sampleEvent = stream.Event{
	Node: "pi-1", Epoch: "e1", Seq: 7, Stream: "temps", TS: mustTime("2024-05-01T12:00:00Z"),
	Data: json.RawMessage(`{"temp":31.5,"site":"north","count":4,"gps":{"lat":45.5,"lon":7},
		"tags":["a","b"],"node":"data-node","ts":"not a time","nothing":null,"deep":{"a":{"b":{"c":1}}},
		"big":9007199254740993,"esc\u0061ped":"y\u00e9s"}`),
}

func TestWhereEval(t *testing.T) {
	tests := []struct {
		where string
		want  bool
	}{
		{"", true},
		{"true", true},
		{"false", false},
		{"temp > 30", true},
		{"temp > 40", false},
		{`temp > 30 && site == "north"`, true},
		{`temp > 30 && site == "south"`, false},
		{`temp > 30 and site in ["south", "north"]`, true},
		{"count % 2 == 0", true},
		{"count == 4.0", true},
		{"count / 3 > 1.3", true},
		{"count > 3 && len(tags) == 2 && count(tags, # == \"a\") == 1", true},
		{"let c = count; c > 3", true},
		{"$env.count == 4", true},
		{"big == 9007199254740993", true},
		{`escaped == "yés"`, true},

		// nested paths
		{"gps.lat > 45", true},
		{`gps["lat"] > 45`, true},
		{"gps.lat > 46", false},
		{"gps.lon == 7", true},
		{"deep.a.b.c == 1", true},
		{`deep["a"].b["c"] == 1`, true},

		// missing fields never match, whatever the operator
		{"missing > 1", false},
		{"missing == nil", false},
		{"missing != 5", false},
		{"!(missing == 5)", false},
		{"not (missing > 5)", false},
		{`site == "north" || missing > 1`, false},
		{"gps.alt > 1", false},
		{"gps.alt == nil", false},
		{"gps.lat.deeper == nil", false},
		{"site.x == nil", false},
		{"nogps.lat == nil", false},
		{"temp > 30 ? true : missing", false},
		{"let m = missing; true", false},
		// ... unless the expression opts out with ?. or ??
		{"gps?.alt == nil", true},
		{"nogps?.lat == nil", true},
		{"(missing ?? 0) == 0", true},
		{"(gps.alt ?? 3) == 3", true},
		{"(missing ?? temp) > 30", true},
		{"$env?.missing == nil", true},
		// JSON null is present
		{"nothing == nil", true},
		{"nothing != nil", false},
		{"nothing.x == nil", false},

		// envelope
		{`node == "pi-1"`, true},
		{`node == "data-node"`, false},
		{`stream == "temps"`, true},
		{"seq == 7", true},
		{"seq > 6 && seq < 8", true},
		{"seq % 7 == 0", true},
		{`ts > date("2024-01-01T00:00:00Z")`, true},
		{`ts >= date("2024-05-01T12:00:00Z") && ts < date("2024-05-01T12:00:00.000000001Z")`, true},
		{`ts < date("2024-01-01")`, false},
		{`ts > date("2024-05-01 11:30", "2006-01-02 15:04")`, true},
		{"ts.Year() == 2024", true},
		{`node == "pi-1" && $env.node == "pi-1"`, true},

		// the rest of expr
		{`"a" in tags`, true},
		{`"z" in tags`, false},
		{"len(tags) == 2", true},
		{`any(tags, # == "b")`, true},
		{`all(tags, # == "b")`, false},
		{`tags[0] == "a"`, true},
		{`tags[5] == "a"`, false},
		{"let t = temp; t > 30", true},
		{`site matches "^no"`, true},
		{`site startsWith "no" && upper(site) == "NORTH"`, true},
		{"$env.temp > 30", true},
		{`"temp" in $env`, true},
		{`"missing" in $env`, false},
		{"temp > 30 ? site == \"north\" : false", true},

		// runtime errors do not match
		{`temp + "x" == "y"`, false},
		{"site > 3", false},
		{"gps > 3", false},
		{"tags.x == 1", false},
		{"nothing > 30", false},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			q, err := Prepare(Request{Pattern: "all", Where: tt.where})
			if err != nil {
				t.Fatal(err)
			}
			ev := sampleEvent
			if got := q.Matches(&ev); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWhereData(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		where string
		want  bool
	}{
		{"not an object", `[1,2]`, "temp > 1", false},
		{"malformed", `{"temp": 5`, "temp > 1", false},
		{"empty data", ``, "temp > 1", false},
		{"empty data, envelope only", ``, `node == "n"`, true},
		{"malformed, envelope only", `{"temp": `, `node == "n"`, true},
		{"malformed elsewhere", `{"temp": 5, "x": [}`, "temp > 1", false},
		{"duplicate key, last wins", `{"temp": 1, "temp": 50}`, "temp > 30", true},
		{"integer temp", `{"temp": 31}`, "temp > 30.5", true},
		{"huge number", `{"temp": 1e308}`, "temp > 30", true},
		{"string temp", `{"temp": "31"}`, "temp > 30", false},
		{"bool field", `{"on": true}`, "on", true},
		{"bool field false", `{"on": false}`, "on", false},
		{"non-bool result", `{"on": 1}`, "on", false},
		{"null result", `{"on": null}`, "on", false},
		{"escaped key", `{"t\u0065mp": 40}`, "temp > 30", true},
		{"nested array path", `{"a": [{"b": 1}]}`, "a[0].b == 1", true},
		{"unicode value", `{"site": "Zürich"}`, `site == "Zürich"`, true},
		{"deep nesting elsewhere", `{"temp": 40, "x": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "temp > 30", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Prepare(Request{Pattern: "all", Where: tt.where})
			if err != nil {
				t.Fatal(err)
			}
			ev := stream.Event{Node: "n", Epoch: "e", Seq: 1, Stream: "s", Data: json.RawMessage(tt.data)}
			if got := q.Matches(&ev); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWhereErrors(t *testing.T) {
	tests := []struct {
		where string
		want  string
	}{
		{"temp >", "where: unexpected end of expression at column 6"},
		{"temp > > 3", `where: unexpected token ">" at column 8`},
		{"temp > 30 &&& x", `where: unexpected token "&" at column 13`},
		{"node > 3", "where: invalid operation: > (mismatched types string and int) at column 6"},
		{"ts > 5", "where: invalid operation: > (mismatched types time.Time and int) at column 4"},
		{`seq == "a"`, "where: invalid operation: == (mismatched types uint64 and string) at column 5"},
		{"foo(1)", "where: unknown function foo() at column 1"},
		{"temp > 1 && bar(temp)", "where: unknown function bar() at column 13"},
		{"now() > ts", "where: now() is not available; use from and to for time ranges at column 1"},
		{"1", "where: the expression gives int; it must give a boolean"},
		{`"abc"`, "where: the expression gives string; it must give a boolean"},
		{`"abc`, "where: literal not terminated at column 5"},
		{"temp > 1 &&\n  ) ", `where: unexpected token ")" at line 2, column 3`},
		{"len()", "where: invalid number of arguments (expected 1, got 0) at column 1"},
		{`x matches "("`, "where: error parsing regexp: missing closing ): `(` at column 3"},
		{"🙂 > 1", "where: unrecognized character: U+1F642 '🙂' at column 1"},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			_, err := Prepare(Request{Pattern: "all", Where: tt.where})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	_, err := Prepare(Request{Pattern: "all", Where: strings.Repeat("x", MaxWhereBytes+1)})
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "where: ") {
		t.Fatalf("long where: %v", err)
	}
}

func TestRequiredPaths(t *testing.T) {
	tests := []struct {
		where string
		want  string // required paths, keep set
	}{
		{"temp > 1", "[[temp]] keep=[temp]"},
		{"temp > 1 && temp < 5", "[[temp]] keep=[temp]"},
		{"gps.lat > 1 && gps.lon > 1 && gps != nil", "[[gps lat] [gps lon]] keep=[gps]"},
		{"a?.b.c == nil", "[] keep=[a]"},
		{"a.b?.c == nil", "[[a]] keep=[a]"},
		{"a.b.c?.d == nil", "[[a b]] keep=[a]"},
		{"count > 1 && max == 2", "[[count] [max]] keep=[count max]"},
		{"(a.b ?? 1) == 1", "[] keep=[a]"},
		{"a[k] == 1", "[[a] [k]] keep=[a k]"},
		{"a[0].b == 1", "[[a]] keep=[a]"},
		{`$env.t > 1 && $env["u"] > 1`, "[[t] [u]] keep=[t u]"},
		{"$env?.t == nil", "[] keep=[t]"},
		{`$env[k] == 1`, "[[k]] keep=all"},
		{`node == "a" && ts.Year() > 1 && seq > 1 && stream == "s"`, "[] keep=[]"},
		{"let x = 1; x > 0", "[] keep=[]"},
		{"all(items, .v > 1 && # != nil)", "[[items]] keep=[items]"},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			p, err := compileWhere(tt.where)
			if err != nil {
				t.Fatal(err)
			}
			keep := "all"
			if p.keep != nil {
				keep = fmt.Sprint(p.keep.names)
			}
			got := fmt.Sprintf("%v keep=%s", p.required, keep)
			if p.required == nil {
				got = "[] keep=" + keep
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMatchesFilters(t *testing.T) {
	ev := sampleEvent // node pi-1, stream temps, 2024-05-01T12:00:00Z
	tests := []struct {
		req  Request
		want bool
	}{
		{Request{Pattern: "all"}, true},
		{Request{Pattern: "any"}, true},
		{Request{Pattern: "single(pi-1)"}, true},
		{Request{Pattern: "single(pi-2)"}, false},
		{Request{Pattern: "single(PI-1)"}, false},
		{Request{Pattern: "multiple(pi-2,pi-1)"}, true},
		{Request{Pattern: "all", Stream: "temps"}, true},
		{Request{Pattern: "all", Stream: "other"}, false},
		{Request{Pattern: "all", From: "2024-05-01T12:00:00Z"}, true},
		{Request{Pattern: "all", From: "2024-05-01T12:00:00.000000001Z"}, false},
		{Request{Pattern: "all", To: "2024-05-01T12:00:00Z"}, false},
		{Request{Pattern: "all", To: "2024-05-01T12:00:00.000000001Z"}, true},
		{Request{Pattern: "all", From: "2024-05-01T13:00:00+02:00", To: "2024-05-01T15:00:00+02:00"}, true},
		{Request{Pattern: "all", From: "2024-05-01T13:00:00+02:00", To: "2024-05-01T14:00:00+02:00"}, false},
		{Request{Pattern: "single(pi-1)", Where: "temp > 30", Stream: "temps"}, true},
		{Request{Pattern: "single(pi-1)", Where: "temp > 40", Stream: "temps"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.req), func(t *testing.T) {
			q, err := Prepare(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Matches(&ev); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchesConcurrent(t *testing.T) {
	q, err := Prepare(Request{Pattern: "all", Where: "temp > 30 && site == \"north\""})
	if err != nil {
		t.Fatal(err)
	}
	hot := stream.Event{Node: "a", Data: json.RawMessage(`{"temp":35,"site":"north"}`)}
	cold := stream.Event{Node: "a", Data: json.RawMessage(`{"temp":5,"site":"north"}`)}
	var wg sync.WaitGroup
	var bad sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if q.Matches(&hot) != true || q.Matches(&cold) != false {
					bad.Store(g, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("goroutine %v: wrong answer at %v", k, v)
		return true
	})
}
