package hubapi

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/web"
)

// FuzzParseLive: whatever the query string, a live aggregate request is
// either checked, with a window of at least 1ms, a lateness within its
// limits and a start aligned to the window, or refused with a 400.
func FuzzParseLive(f *testing.F) {
	f.Add("pattern=all&window=1m")
	f.Add("pattern=single(a)&window=2s&group_by=node,site&aggregates=count,avg(temp)&lateness=1m&token=x")
	f.Add("pattern=all&window=1m&to=2026-11-25T00:00:00Z")
	f.Add("pattern=all&window=1s&lateness=2h")
	f.Add("pattern=any&window=1d&from=1678-01-01T00:00:00Z")
	f.Add("pattern=all&window=1ms&from=2261-12-31T23:59:59.999999999Z&lateness=-1s")
	f.Add("pattern=all&window=1m&where=temp+%3E&lateness=soon")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		lr, err := parseLive(v, now)
		if err != nil {
			ae := web.Classify(err)
			if ae.Status != http.StatusBadRequest && !errors.Is(err, pattern.ErrInvalid) {
				t.Fatalf("%q: %v answers %d, want 400", query, err, ae.Status)
			}
			return
		}
		if lr.window < time.Millisecond || lr.lateness < 0 || lr.lateness > MaxLateness || lr.lateness/lr.window > MaxLiveWindows {
			t.Fatalf("%q: window %v lateness %v", query, lr.window, lr.lateness)
		}
		if lr.start.UnixNano()%int64(lr.window) != 0 || lr.q == nil {
			t.Fatalf("%q: start %v is not aligned to %v", query, lr.start, lr.window)
		}
		if now.Sub(lr.start) > time.Duration(10_000)*lr.window {
			t.Fatalf("%q: start %v is more than 10,000 windows back", query, lr.start)
		}
	})
}

// FuzzAggregateBody: whatever the body of POST /api/v1/aggregate, decoding
// and checking it either gives a plan or a 400 (never a panic, never another
// status).
func FuzzAggregateBody(f *testing.F) {
	f.Add(`{"pattern":"all","from":"2026-11-25T00:00:00Z","to":"2026-11-25T01:00:00Z","window":"1m","group_by":["node","site"],"aggregates":["count","avg(temp)","p95(temp)"]}`)
	f.Add(`{"pattern":"all","windw":"1m"}`)
	f.Add(`{"pattern":"single(a)","from":"2026-11-25T00:00:00Z","to":"2026-11-26T00:00:00Z","window":"1ms"}`)
	f.Add(`{"pattern":"any","group_by":"node"}`)
	f.Add(`{"pattern":`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var req aggregate.Request
		err := decodeJSONBody([]byte(body), &req)
		if err == nil {
			if _, err = aggregate.Prepare(req); err == nil {
				return
			}
		}
		if ae := web.Classify(err); ae.Status != http.StatusBadRequest || ae.Message == "" {
			t.Fatalf("%q: %v answers %d %q, want a 400 that says why", body, err, ae.Status, ae.Message)
		}
	})
}
