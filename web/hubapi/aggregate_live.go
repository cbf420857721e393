package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

// Live aggregates.
const (
	// DefaultLateness is how long after a window's end a live aggregate
	// still revises it when late events change it; MaxLateness the most a
	// request may ask for. Later events are counted by POST /api/v1/aggregate
	// all the same.
	DefaultLateness = 5 * time.Minute
	MaxLateness     = 24 * time.Hour
	// MaxLiveWindows is the most windows a live aggregate keeps for
	// revision: lateness over window may not exceed it.
	MaxLiveWindows = 1000
	// LiveSettle is how long after its end a window is first sent, so that
	// the events in flight from the edges (a batch or two) are in it.
	LiveSettle = time.Second
	// liveTick is how often a live aggregate looks for windows to close, and
	// liveRevise the least time between two revisions.
	liveTick   = 250 * time.Millisecond
	liveRevise = time.Second
)

// liveWindow is one event of a live aggregate: a window, and whether it was
// sent before.
type liveWindow struct {
	aggregate.Window
	Revised bool `json:"revised"`
}

// live streams a live aggregate as server-sent events: "data: WINDOW" for
// each window LiveSettle after it closes, again with "revised": true when
// late events change it (until lateness after its end), a comment every
// SSEKeepAlive, and a final "event: error" when it cannot go on. It takes a
// live query's slot.
func (a *aggregateAPI) live(c echo.Context) error {
	lr, err := parseLive(c.QueryParams(), a.now())
	if err != nil {
		return err
	}
	if _, err := a.h.Scope(c.Request().Context(), lr.q); err != nil {
		return err
	}
	release, err := admit(lr.q, a.q.lives, a.q.costlyLives, "live", "live queries")
	if err != nil {
		return err
	}
	defer release()
	l := &liveAgg{api: a, req: lr.req, window: lr.window, lateness: lr.lateness, next: lr.start, sent: map[int64][]byte{}, dirty: map[int64]bool{}}
	return l.serve(c, lr.q)
}

// liveRequest is a checked live aggregate request.
type liveRequest struct {
	req      aggregate.Request // without from and to
	q        *pattern.Query    // pattern, where and stream, for the live events
	window   time.Duration
	lateness time.Duration
	start    time.Time // the first window's start
}

// parseLive reads a live aggregate request: the fields of GET
// /api/v1/aggregate without to, from optional (the window that holds it is
// the first; by default the one open at now, and at most MaxWindows windows
// back), and lateness. token is the API token's, and ignored. Every error is
// a 400 that names the parameter.
func parseLive(v url.Values, now time.Time) (*liveRequest, error) {
	if v.Has("to") {
		return nil, web.Invalid("to: a live aggregate has no end; leave to out (from may set where it starts)")
	}
	lr := &liveRequest{lateness: DefaultLateness}
	if s := v.Get("lateness"); s != "" {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			return nil, web.Invalid("lateness: %q is not a duration such as 30s, 5m or 1h", s)
		case d < 0:
			return nil, web.Invalid("lateness: %s is negative", s)
		case d > MaxLateness:
			return nil, web.Invalid("lateness: %s is over the limit of %s", s, MaxLateness)
		}
		lr.lateness = d
	}
	v = maps.Clone(v)
	v.Del("lateness")
	v.Del("token")
	req, err := aggregate.RequestFromValues(v)
	if err != nil {
		return nil, err
	}
	// Checked as a plain aggregate of one nanosecond at from, which also
	// gives the window.
	probe := req
	if probe.From == "" {
		probe.From = stream.FormatTime(now.UnixNano())
	}
	if t, err := time.Parse(time.RFC3339Nano, probe.From); err == nil && t.Year() < 2262 {
		probe.To = stream.FormatTime(t.UnixNano() + 1)
	}
	p, err := aggregate.Prepare(probe)
	if err != nil {
		return nil, err
	}
	lr.window = p.Window()
	if n := lr.lateness / lr.window; n > MaxLiveWindows {
		return nil, web.Invalid("lateness: %s is %d windows of %s, over the limit of %d windows kept for revision; use a shorter lateness or a longer window",
			lr.lateness, n, lr.window, MaxLiveWindows)
	}
	lr.start = floorTime(time.Unix(0, p.Query().From), lr.window)
	if back := now.Sub(lr.start) / lr.window; back > aggregate.MaxWindows {
		return nil, web.Invalid("from: %s is %d windows of %s ago, over the limit of %d; start later or use a longer window",
			req.From, back, lr.window, aggregate.MaxWindows)
	}
	if lr.q, err = pattern.Prepare(pattern.Request{Pattern: req.Pattern, Where: req.Where, Stream: req.Stream}); err != nil {
		return nil, err
	}
	lr.req = req
	return lr, nil
}

// floorTime is the start of the window of length w that holds t.
func floorTime(t time.Time, w time.Duration) time.Time {
	ns, wn := t.UnixNano(), int64(w)
	s := ns / wn * wn
	if ns%wn < 0 {
		s -= wn
	}
	return time.Unix(0, s).UTC()
}

// liveAgg is one live aggregate's state: the windows sent and still open to
// revision, with the JSON last sent of each, and those late events touched.
type liveAgg struct {
	api      *aggregateAPI
	req      aggregate.Request
	window   time.Duration
	lateness time.Duration
	next     time.Time          // the start of the first window not yet sent
	sent     map[int64][]byte   // window start (ns) → its last JSON, for windows still revised
	dirty    map[int64]bool     // window starts that late events touched
	revised  time.Time          // the last revision
	write    func(string) error // one SSE write with its deadline
}

func (l *liveAgg) serve(c echo.Context, q *pattern.Query) error {
	ctx := c.Request().Context()
	watch := watchLate(l.api.h.Subscribe(q), l.window)
	defer func() { watch.close() }()
	write, _, err := web.StartSSE(c)
	if err != nil {
		return err
	}
	l.write = func(s string) error {
		if !write(s, true) {
			return errClientGone
		}
		return nil
	}
	if l.write(fmt.Sprintf(": live aggregate %s every %s, revised until %s after a window's end\n\n", q.String(), l.window, l.lateness)) != nil {
		return nil
	}
	tick := time.NewTicker(liveTick)
	defer tick.Stop()
	keep := time.NewTicker(SSEKeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keep.C:
			if l.write(": keepalive\n\n") != nil {
				return nil
			}
		case <-tick.C:
			marks, ended, all := watch.take()
			if ended {
				// Too far behind to have seen every late event: start anew.
				watch.close()
				watch = watchLate(l.api.h.Subscribe(q), l.window)
				watch.bound(l.oldest())
			}
			if all {
				for ws := range l.sent {
					l.dirty[ws] = true
				}
			}
			for ws := range marks {
				if _, ok := l.sent[ws]; ok {
					l.dirty[ws] = true
				}
			}
			err := l.step(ctx)
			watch.bound(l.oldest())
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, errClientGone) {
					l.fail(err)
				}
				return nil
			}
		}
	}
}

// errClientGone is a write that failed: the client left or stopped reading.
var errClientGone = errors.New("live aggregate: client gone")

// oldest is the start of the oldest window still revised.
func (l *liveAgg) oldest() int64 {
	return l.next.Add(-l.lateness - l.window).UnixNano()
}

// lateWatch reads a live subscription on a goroutine of its own, so that a
// stream busy with an aggregate never makes it fall behind, and keeps the
// starts of the windows its events fall in, from the oldest window still
// revised on. Those of windows not yet sent are kept too: an event indexed
// while its window is being read is late by the time take returns it, and
// the stream keeps only the marks of windows it has sent.
type lateWatch struct {
	sub  *hub.Subscription
	done chan struct{}

	mu    sync.Mutex
	after int64          // window starts from it on are kept
	marks map[int64]bool // window starts of late events
	lost  bool           // the subscription ended by itself
}

func watchLate(sub *hub.Subscription, window time.Duration) *lateWatch {
	lw := &lateWatch{sub: sub, done: make(chan struct{}), marks: map[int64]bool{}}
	go func() {
		defer close(lw.done)
		for ev := range sub.C {
			ws := floorTime(time.Unix(0, ev.TS), window).UnixNano()
			lw.mu.Lock()
			switch {
			case ws < lw.after:
			case len(lw.marks) < 2*MaxLiveWindows:
				lw.marks[ws] = true
			default:
				// Events of too many windows at once (times all over the
				// place): look again at every window rather than keep them.
				lw.lost = true
			}
			lw.mu.Unlock()
		}
		lost := sub.Err() != nil
		lw.mu.Lock()
		lw.lost = lw.lost || lost
		lw.mu.Unlock()
	}()
	return lw
}

// take returns the window starts marked since the last take, whether the
// subscription ended, and whether every window must be looked at again
// (events may have gone unseen).
func (lw *lateWatch) take() (marks map[int64]bool, ended, all bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	marks, lost := lw.marks, lw.lost
	lw.marks = map[int64]bool{}
	if lost && lw.sub.Err() == nil {
		// Too many marks, but the subscription goes on: the stream looks
		// again at every window, and the watch starts afresh.
		lw.lost = false
		return marks, false, true
	}
	return marks, lost, lost
}

// bound makes the watch keep, from now on, the window starts from after on.
func (lw *lateWatch) bound(after int64) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.after = after
}

// close ends the subscription and waits for the goroutine.
func (lw *lateWatch) close() {
	lw.sub.Close()
	<-lw.done
}

// step sends the windows that closed and revises those late events touched,
// with one aggregate over the span they cover, then forgets the windows past
// their lateness.
func (l *liveAgg) step(ctx context.Context) error {
	now := l.api.now()
	w := l.window
	closedTo := l.next // the end of the windows to send now
	for !closedTo.Add(w + LiveSettle).After(now) {
		closedTo = closedTo.Add(w)
	}
	revise := len(l.dirty) > 0 && now.Sub(l.revised) >= liveRevise
	if closedTo.Equal(l.next) && !revise {
		return nil
	}
	from, to := l.next, closedTo
	if revise {
		for ws := range l.dirty {
			t := time.Unix(0, ws).UTC()
			if t.Before(from) {
				from = t
			}
			if end := t.Add(w); end.After(to) {
				to = end
			}
		}
		l.revised = now
	}
	// Never more windows than a request may have: the oldest first.
	if max := time.Duration(aggregate.MaxWindows) * w; to.Sub(from) > max {
		to = from.Add(max)
	}
	r := l.req
	r.From, r.To = stream.FormatTime(from.UnixNano()), stream.FormatTime(to.UnixNano())
	p, err := aggregate.Prepare(r)
	if err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, web.QueryTimeout)
	res, err := l.api.h.Aggregate(qctx, p)
	cancel()
	if err != nil {
		return aggregateError(err)
	}
	for _, win := range res.Windows {
		ws := win.Start.UnixNano()
		prev, tracked := l.sent[ws]
		fresh := !win.Start.Before(l.next)
		if !fresh && !tracked {
			continue
		}
		b, err := json.Marshal(win)
		if err != nil {
			return err
		}
		delete(l.dirty, ws)
		if tracked && string(prev) == string(b) {
			continue
		}
		out, err := json.Marshal(liveWindow{Window: win, Revised: !fresh})
		if err != nil {
			return err
		}
		if l.write("data: "+string(out)+"\n\n") != nil {
			return errClientGone
		}
		l.sent[ws] = b
	}
	// Every window in [next, to) has been sent; to is at most closedTo.
	if to.After(l.next) {
		l.next = to
	}
	// Windows past their lateness are final.
	for ws := range l.sent {
		if time.Unix(0, ws).Add(w + l.lateness).Before(now) {
			delete(l.sent, ws)
			delete(l.dirty, ws)
		}
	}
	return nil
}

// fail sends the final error event.
func (l *liveAgg) fail(err error) {
	ae := web.Classify(err)
	var body web.ErrorBody
	body.Error.Code, body.Error.Message = ae.Code, ae.Message
	if ae.Code == web.CodeInternal {
		l.api.srv.Logger.Error().Err(err).Str("path", "/api/v1/aggregate/live").Msg("live aggregate ended by an internal error")
		body.Error.Message = "live aggregate: internal error"
	}
	b, _ := json.Marshal(body)
	_ = l.write("event: error\ndata: " + string(b) + "\n\n")
}
