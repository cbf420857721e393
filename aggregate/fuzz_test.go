package aggregate

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

var fieldPrefixes = []string{"pattern: ", "where: ", "stream: ", "from: ", "to: ", "window: ", "group_by: ", "aggregates: "}

// checkError fails unless err wraps pattern.ErrInvalid and starts with a
// request field.
func checkError(t *testing.T, what any, err error) {
	t.Helper()
	if !errors.Is(err, pattern.ErrInvalid) {
		t.Fatalf("%+v: error %v does not wrap pattern.ErrInvalid", what, err)
	}
	for _, p := range fieldPrefixes {
		if strings.HasPrefix(err.Error(), p) {
			return
		}
	}
	t.Fatalf("%+v: error %q does not start with a field name", what, err)
}

// checkAccepted checks that an accepted request's canonical form prepares to
// itself, through JSON and through query parameters, and that the plan
// answers for a few events.
func checkAccepted(t *testing.T, r Request, p *Plan) {
	t.Helper()
	c := p.Request()
	p2, err := Prepare(c)
	if err != nil {
		t.Fatalf("%+v: canonical form %+v refused: %v", r, c, err)
	}
	if got := p2.Request(); !reflect.DeepEqual(got, c) {
		t.Fatalf("%+v: canonical form %+v prepares to %+v", r, c, got)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Request
	if err := json.Unmarshal(b, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, c) {
		t.Fatalf("%+v: JSON round trip gives %+v, %v", c, fromJSON, err)
	}
	fromValues, err := RequestFromValues(c.Values())
	if err != nil {
		t.Fatalf("%+v: query parameters %v refused: %v", c, c.Values(), err)
	}
	if p3, err := Prepare(fromValues); err != nil || !reflect.DeepEqual(p3.Request(), c) {
		t.Fatalf("%+v: query parameters give %+v, %v", c, fromValues, err)
	}
	if p.Windows() < 1 || p.Windows() > MaxWindows {
		t.Fatalf("%+v: %d windows", c, p.Windows())
	}
	st := p.NewState([]string{"a", "b"})
	q := p.Query()
	for _, ev := range []stream.Event{
		{Node: "a", Stream: "s", TS: q.From, Data: json.RawMessage(`{"temp":1,"site":"n","gps":{"zone":"z","lat":2}}`)},
		{Node: "b", Stream: "s", TS: q.To - 1, Data: json.RawMessage(`{"temp":"x"}`)},
	} {
		if q.Matches(&ev) {
			if err := st.Add(&ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := json.Marshal(p.Result(st)); err != nil {
		t.Fatalf("%+v: answer does not marshal: %v", c, err)
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add("all", "", "", day0, day1, "1h", "node,site", "count,avg(temp),p95(temp)")
	f.Add("multiple(a,b)", "temp > 1", "s", "2026-11-25T00:00:30+02:00", "2026-11-25T00:02:10Z", "1d12h", "gps.zone", "MAX( gps.lat )")
	f.Add("any", "", "", day0, "2026-11-25T00:00:00.000000001Z", "1ms", "stream,,node", "count,count")
	f.Add("single(a)", "", "", "1678-01-01T00:00:00Z", "2261-12-31T23:59:59Z", "2562047h", "ts", "p50()")
	f.Add("all", "", "", day0, day1, "1.5ms", "node.x", "avg(ts)")
	f.Add("all", "", "", "", day1, "999999999999d", "a b", "median(x)")
	f.Fuzz(func(t *testing.T, pat, where, strm, from, to, window, groupBy, aggs string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		r := Request{Pattern: pat, Where: where, Stream: strm, From: from, To: to, Window: window,
			GroupBy: split(groupBy), Aggregates: split(aggs)}
		p, err := Prepare(r)
		if err != nil {
			checkError(t, r, err)
			return
		}
		checkAccepted(t, r, p)
	})
}

func FuzzRequestFromValues(f *testing.F) {
	f.Add("pattern=all&from=" + day0 + "&to=" + day1 + "&window=5m&group_by=node,site&aggregates=count,p99(temp)")
	f.Add("pattern=any&pattern=all")
	f.Add("group_by=a,,b&window=1m")
	f.Add("aggregates=%20count%20,%20&group_by=")
	f.Add("pattern=single(a)&from=" + day0 + "&to=" + day1 + "&window=1d&aggregates=sum(gps.lat)&aggregates=min(x)")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r, err := RequestFromValues(v)
		if err != nil {
			checkError(t, query, err)
			return
		}
		p, err := Prepare(r)
		if err != nil {
			checkError(t, query, err)
			return
		}
		checkAccepted(t, r, p)
	})
}
