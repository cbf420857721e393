package aggregate

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

const (
	day0 = "2026-11-25T00:00:00Z"
	day1 = "2026-11-26T00:00:00Z"
)

// req returns a valid request over one day in 1h windows, changed by mod.
func req(mod func(r *Request)) Request {
	r := Request{Pattern: "all", From: day0, To: day1, Window: "1h"}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestPrepareErrors(t *testing.T) {
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name string
		mod  func(r *Request)
		want string // the whole message, or a prefix ending in "…"
	}{
		{"no pattern", func(r *Request) { r.Pattern = "" }, "pattern: …"},
		{"bad where", func(r *Request) { r.Where = "temp >" }, "where: unexpected end of expression at column 6"},
		{"bad stream", func(r *Request) { r.Stream = "a b" }, "stream: …"},
		{"bad from", func(r *Request) { r.From = "yesterday" }, `from: "yesterday" is not an RFC 3339 time such as 2024-05-01T12:00:00Z`},
		{"from after to", func(r *Request) { r.From, r.To = day1, day0 }, "from: …"},
		{"no from", func(r *Request) { r.From = "" },
			"from: required: aggregates need a bounded range; give an RFC 3339 time such as 2026-11-25T00:00:00Z"},
		{"no to", func(r *Request) { r.To = "" },
			"to: required: aggregates need a bounded range; give an RFC 3339 time such as 2026-11-25T01:00:00Z"},
		{"no window", func(r *Request) { r.Window = " " }, "window: required; give a duration such as 30s, 1m, 5m, 1h or 1d"},
		{"window not a duration", func(r *Request) { r.Window = "1x" }, `window: "1x" is not a duration such as 30s, 1m, 5m, 1h or 1d`},
		{"window without unit", func(r *Request) { r.Window = "60" }, `window: "60" is not a duration such as 30s, 1m, 5m, 1h or 1d`},
		{"window with signed rest", func(r *Request) { r.Window = "1d-1h" }, `window: "1d-1h" is not a duration such as 30s, 1m, 5m, 1h or 1d`},
		{"window signed days", func(r *Request) { r.Window = "+1d" }, `window: "+1d" is not a duration such as 30s, 1m, 5m, 1h or 1d`},
		{"window zero", func(r *Request) { r.Window = "0s" }, "window: 0s is not a positive duration"},
		{"window negative", func(r *Request) { r.Window = "-1m" }, "window: -1m is not a positive duration"},
		{"window under 1ms", func(r *Request) { r.Window = "999us" }, "window: 999us is under the minimum of 1ms"},
		{"window fraction of ms", func(r *Request) { r.Window = "1.5ms" }, "window: 1.5ms is not a whole number of milliseconds"},
		{"window too long", func(r *Request) { r.Window = "200000d" }, "window: 200000d is over the longest duration, about 290 years"},
		{"window too long in hours", func(r *Request) { r.Window = "9999999h" }, "window: 9999999h is over the longest duration, about 290 years"},
		{"window days overflow", func(r *Request) { r.Window = "106751d24h" }, "window: 106751d24h is over the longest duration, about 290 years"},
		{"too many windows", func(r *Request) { r.Window = "1s" },
			"window: 1s windows from 2026-11-25T00:00:00Z to 2026-11-26T00:00:00Z make 86400 windows, over the limit of 10000; use a longer window or a shorter range"},
		{"group by ts", func(r *Request) { r.GroupBy = []string{"node", "ts"} }, "group_by: ts is not allowed: windows already split the range by event time"},
		{"group by seq", func(r *Request) { r.GroupBy = []string{"seq"} }, "group_by: seq is not allowed: every event would be a group of its own"},
		{"group by twice", func(r *Request) { r.GroupBy = []string{"site", "node", " site"} }, "group_by: site appears twice"},
		{"group by empty item", func(r *Request) { r.GroupBy = []string{"node", ""} }, "group_by: item 2 is empty"},
		{"group by empty key", func(r *Request) { r.GroupBy = []string{"gps..zone"} },
			`group_by: "gps..zone" is not a field path such as site or gps.zone: key 2 is empty; write keys joined by dots, as in gps.zone`},
		{"group by space", func(r *Request) { r.GroupBy = []string{"a b"} },
			`group_by: "a b" is not a field path such as site or gps.zone: character ' ' at column 2 is not allowed in a field path`},
		{"group by envelope path", func(r *Request) { r.GroupBy = []string{"node.x"} },
			`group_by: "node.x" is not a field path such as site or gps.zone: node is the event's envelope, not a data object`},
		{"group by long path", func(r *Request) { r.GroupBy = []string{strings.Repeat("a", 257)} },
			`group_by: "` + strings.Repeat("a", 257) + `" is not a field path such as site or gps.zone: 257 bytes is over the limit of 256`},
		{"group by too many", func(r *Request) { r.GroupBy = many(9, func(i int) string { return "f" + strconv.Itoa(i) }) },
			"group_by: 9 fields is over the limit of 8"},
		{"unknown aggregate", func(r *Request) { r.Aggregates = []string{"count", "median(temp)"} },
			`aggregates: unknown aggregate "median(temp)"; want count, sum(f), min(f), max(f), avg(f), p50(f), p90(f), p95(f) or p99(f)`},
		{"unknown bare aggregate", func(r *Request) { r.Aggregates = []string{"total"} },
			`aggregates: unknown aggregate "total"; want count, sum(f), min(f), max(f), avg(f), p50(f), p90(f), p95(f) or p99(f)`},
		{"aggregate without field", func(r *Request) { r.Aggregates = []string{"avg"} }, "aggregates: avg needs a field, as in avg(temp)"},
		{"aggregate with empty field", func(r *Request) { r.Aggregates = []string{"p95( )"} }, "aggregates: p95( ) needs a field, as in p95(temp)"},
		{"count with field", func(r *Request) { r.Aggregates = []string{"count(temp)"} }, "aggregates: count(temp): count takes no field; write count"},
		{"unclosed", func(r *Request) { r.Aggregates = []string{"max(temp"} }, "aggregates: max(temp: expected ) at the end"},
		{"aggregate of envelope", func(r *Request) { r.Aggregates = []string{"max(ts)"} },
			"aggregates: max(ts): ts is the event's envelope; aggregates read numeric data fields"},
		{"aggregate bad path", func(r *Request) { r.Aggregates = []string{"avg(gps.)"} },
			`aggregates: avg(gps.): "gps." is not a field path such as temp or gps.lat: key 2 is empty; write keys joined by dots, as in gps.zone`},
		{"aggregate twice", func(r *Request) { r.Aggregates = []string{"avg(temp)", "AVG( temp )"} }, "aggregates: avg(temp) appears twice"},
		{"count twice", func(r *Request) { r.Aggregates = []string{"count", "COUNT"} }, "aggregates: count appears twice"},
		{"aggregate empty item", func(r *Request) { r.Aggregates = []string{"count", " "} }, "aggregates: item 2 is empty"},
		{"too many aggregates", func(r *Request) {
			r.Aggregates = many(33, func(i int) string { return "sum(f" + strconv.Itoa(i) + ")" })
		},
			"aggregates: 33 aggregates is over the limit of 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(req(tt.mod))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, pattern.ErrInvalid) {
				t.Errorf("%v does not wrap pattern.ErrInvalid", err)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("error %q, want it to start with %q", err, prefix)
				}
			} else if err.Error() != tt.want {
				t.Errorf("error\n %q, want\n %q", err, tt.want)
			}
		})
	}
}

func TestPrepareCanonical(t *testing.T) {
	p, err := Prepare(Request{Pattern: " MULTIPLE( b , a, b )", Where: "temp > 1", Stream: "s", From: "2026-11-25T01:00:00+01:00",
		To: "2026-11-25T02:30:00.5Z", Window: " 1d12h ", GroupBy: []string{" node", "gps.zone "},
		Aggregates: []string{"AVG( temp )", "P99(gps.lat)", " count"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Pattern: "multiple(b,a)", Where: "temp > 1", Stream: "s", From: "2026-11-25T00:00:00Z",
		To: "2026-11-25T02:30:00.5Z", Window: "36h0m0s", GroupBy: []string{"node", "gps.zone"},
		Aggregates: []string{"avg(temp)", "p99(gps.lat)", "count"}}
	if got := p.Request(); !reflect.DeepEqual(got, want) {
		t.Fatalf("canonical request\n %+v, want\n %+v", got, want)
	}
	if p.Window() != 36*time.Hour || p.Windows() != 1 || p.Query().String() != "multiple(b,a)" {
		t.Fatalf("window %v, windows %d, query %v", p.Window(), p.Windows(), p.Query())
	}
	p2, err := Prepare(want)
	if err != nil || !reflect.DeepEqual(p2.Request(), want) {
		t.Fatalf("canonical request prepares to %+v, %v", p2.Request(), err)
	}
	// No aggregates means count.
	p, err = Prepare(req(nil))
	if err != nil || !reflect.DeepEqual(p.Request().Aggregates, []string{"count"}) {
		t.Fatalf("default aggregates %v, %v", p.Request().Aggregates, err)
	}
}

func TestWindowAlignment(t *testing.T) {
	tests := []struct {
		name, from, to, window string
		first, lastEnd         string
		n                      int
	}{
		{"off boundaries", "2026-11-25T00:00:30Z", "2026-11-25T00:02:10Z", "1m", "2026-11-25T00:00:00Z", "2026-11-25T00:03:00Z", 3},
		{"on boundaries", "2026-11-25T00:00:00Z", "2026-11-25T00:02:00Z", "1m", "2026-11-25T00:00:00Z", "2026-11-25T00:02:00Z", 2},
		{"to just past a boundary", "2026-11-25T00:00:00Z", "2026-11-25T00:02:00.000000001Z", "1m", "2026-11-25T00:00:00Z", "2026-11-25T00:03:00Z", 3},
		{"inside one window", "2026-11-25T00:00:10Z", "2026-11-25T00:00:20Z", "1m", "2026-11-25T00:00:00Z", "2026-11-25T00:01:00Z", 1},
		{"1ms", "2026-11-25T00:00:00.0005Z", "2026-11-25T00:00:00.0025Z", "1ms", "2026-11-25T00:00:00Z", "2026-11-25T00:00:00.003Z", 3},
		{"30s", "2026-11-25T00:00:45Z", "2026-11-25T00:01:01Z", "30s", "2026-11-25T00:00:30Z", "2026-11-25T00:01:30Z", 2},
		{"1h", "2026-11-25T10:59:59.999Z", "2026-11-25T12:00:00Z", "1h", "2026-11-25T10:00:00Z", "2026-11-25T12:00:00Z", 2},
		{"1d is UTC days", "2026-11-25T13:00:00+05:00", "2026-11-27T01:00:00Z", "1d", "2026-11-25T00:00:00Z", "2026-11-28T00:00:00Z", 3},
		{"24h as 1d", "2026-11-25T13:00:00Z", "2026-11-26T00:00:00Z", "24h", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", 1},
		{"7d from the epoch, a Thursday", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", "7d", "2026-11-19T00:00:00Z", "2026-11-26T00:00:00Z", 1},
		{"before the epoch", "1969-12-31T23:59:30Z", "1970-01-01T00:00:30Z", "1m", "1969-12-31T23:59:00Z", "1970-01-01T00:01:00Z", 2},
		{"7ms before the epoch", "1969-12-31T23:59:59.990Z", "1969-12-31T23:59:59.999Z", "7ms", "1969-12-31T23:59:59.986Z", "1970-01-01T00:00:00Z", 2},
		{"exactly the limit", "2026-01-01T00:00:00Z", "2026-01-07T22:40:00Z", "1m", "2026-01-01T00:00:00Z", "2026-01-07T22:40:00Z", MaxWindows},
		{"longest window over the widest range", "1678-01-01T00:00:00Z", "2261-12-31T23:59:59Z", "2562047h",
			"1677-09-21T01:00:00Z", "2262-04-11T23:00:00Z", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(Request{Pattern: "any", From: tt.from, To: tt.to, Window: tt.window})
			if err != nil {
				t.Fatal(err)
			}
			res := p.Result(p.NewState(nil))
			if len(res.Windows) != tt.n || p.Windows() != tt.n {
				t.Fatalf("%d windows (Windows says %d), want %d", len(res.Windows), p.Windows(), tt.n)
			}
			first, last := res.Windows[0], res.Windows[len(res.Windows)-1]
			if got := first.Start.Format(time.RFC3339Nano); got != tt.first {
				t.Errorf("first window starts at %s, want %s", got, tt.first)
			}
			if got := last.End.Format(time.RFC3339Nano); got != tt.lastEnd {
				t.Errorf("last window ends at %s, want %s", got, tt.lastEnd)
			}
			for i, w := range res.Windows {
				if w.End.Sub(w.Start) != p.Window() || i > 0 && !w.Start.Equal(res.Windows[i-1].End) || w.Start.Location() != time.UTC {
					t.Fatalf("window %d: [%v, %v) does not follow on", i, w.Start, w.End)
				}
			}
		})
	}
	// Whether the last window's end is representable in Unix nanoseconds or
	// not, the range's ends land in the first and last windows.
	p, _ := Prepare(Request{Pattern: "all", From: "2026-11-25T00:00:30Z", To: "2026-11-25T00:02:10Z", Window: "1m"})
	st := p.NewState([]string{"a"})
	from, to := p.Query().From, p.Query().To
	for _, ts := range []int64{from - 1, from, to - 1, to} {
		if err := st.Add(&stream.Event{Node: "a", TS: ts}); err != nil {
			t.Fatal(err)
		}
	}
	res := p.Result(st)
	counts := []int{len(res.Windows[0].Groups), len(res.Windows[1].Groups), len(res.Windows[2].Groups)}
	if !reflect.DeepEqual(counts, []int{1, 0, 1}) || res.Windows[0].Groups[0].Values[0].Value != 1 || res.Windows[2].Groups[0].Values[0].Value != 1 {
		t.Fatalf("events at from-1ns, from, to-1ns and to: groups per window %v", counts)
	}
}

func TestWindowLimit(t *testing.T) {
	tests := []struct {
		name, from, to string
		n              int64 // 0 for accepted
	}{
		{"10000 aligned", "2026-01-01T00:00:00Z", "2026-01-07T22:40:00Z", 0},
		{"10001 by a nanosecond", "2026-01-01T00:00:00Z", "2026-01-07T22:40:00.000000001Z", 10001},
		{"10000 minutes long but unaligned", "2026-01-01T00:00:30Z", "2026-01-07T22:40:30Z", 10001},
		{"a year", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 525600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(Request{Pattern: "all", From: tt.from, To: tt.to, Window: "1m"})
			if tt.n == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			want := "make " + strconv.FormatInt(tt.n, 10) + " windows, over the limit of 10000"
			if err == nil || !errors.Is(err, pattern.ErrInvalid) || !strings.HasPrefix(err.Error(), "window: ") || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want a window error saying %q", err, want)
			}
		})
	}
}

func TestRequestFromValues(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  Request
		err   string
	}{
		{"every field", "pattern=all&where=temp+%3E+1&stream=s&from=" + day0 + "&to=" + day1 + "&window=5m&group_by=node,+gps.zone&aggregates=count,avg(temp),p95(temp)",
			Request{Pattern: "all", Where: "temp > 1", Stream: "s", From: day0, To: day1, Window: "5m",
				GroupBy: []string{"node", "gps.zone"}, Aggregates: []string{"count", "avg(temp)", "p95(temp)"}}, ""},
		{"repeated lists append", "group_by=node&group_by=site&aggregates=count&aggregates=max(temp)",
			Request{GroupBy: []string{"node", "site"}, Aggregates: []string{"count", "max(temp)"}}, ""},
		{"empty lists", "group_by=&aggregates=+", Request{}, ""},
		{"other parameters are the caller's", "consistency=strong&wait=5s", Request{}, ""},
		{"pattern twice", "pattern=all&pattern=any", Request{}, "pattern: given 2 times; give it once"},
		{"window twice", "window=1m&window=1m", Request{}, "window: given 2 times; give it once"},
		{"empty group", "group_by=node,,site", Request{}, `group_by: item 2 of "node,,site" is empty`},
		{"trailing comma", "aggregates=count,", Request{}, `aggregates: item 2 of "count," is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RequestFromValues(v)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !errors.Is(err, pattern.ErrInvalid) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			back, err := RequestFromValues(got.Values())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("Values round trip: %+v, %v", back, err)
			}
		})
	}
}
