package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

// Hub is what the hub's REST API needs; *hub.Hub implements it. The handlers
// call it from many goroutines at once.
type Hub interface {
	// Ready returns nil while the hub is connected to JetStream and
	// materializing.
	Ready() error
	// Nodes returns a page of the node registry with fleet totals; a bad
	// request is an error wrapping hub.ErrInvalidQuery.
	Nodes(ctx context.Context, q hub.NodeQuery) (hub.NodePage, error)
	// Gaps returns a node's dropped and missing ranges; an error wrapping
	// pattern.ErrUnknownNode for a node the hub never heard of.
	Gaps(ctx context.Context, node string) ([]stream.Drop, error)
	// CatchUp waits, for a strong read, until the hub holds what the nodes
	// in scope acknowledged; Answer then runs the query (see hub.Hub).
	CatchUp(ctx context.Context, q *pattern.Query) (map[string]pattern.Completeness, error)
	Answer(ctx context.Context, q *pattern.Query, caught map[string]pattern.Completeness) (*pattern.Result, error)
	// Completeness returns how complete the hub's data of a node is now.
	Completeness(node string) pattern.Completeness
	// Scope returns the nodes in a query's scope, refusing unknown named nodes.
	Scope(ctx context.Context, q *pattern.Query) ([]string, error)
	// Subscribe starts a live query.
	Subscribe(q *pattern.Query) *hub.Subscription
	// Aggregate answers a prepared aggregate, with Scanned, TookMS and
	// Certain set; an error wrapping pattern.ErrUnknownNode for a named node
	// the hub never heard of, pattern.ErrInvalid past the cell limit.
	Aggregate(ctx context.Context, p *aggregate.Plan) (*aggregate.Result, error)
	// Counters lists the distributed counters; Counter returns one, or an
	// error wrapping counters.ErrUnknownCounter.
	Counters(ctx context.Context) ([]counters.Counter, error)
	Counter(ctx context.Context, name string) (counters.Counter, error)
	// Stats returns the figures /metrics shows.
	Stats(ctx context.Context) hub.Stats
	// Cluster returns the hub's view of its cluster (a single hub: itself
	// alone); an error wrapping hub.ErrNotOpen before it has connected.
	Cluster(ctx context.Context) (hub.ClusterStatus, error)
	// ObserveDelivery makes the hub report each new event's delivery latency;
	// MountHub calls it before the hub opens.
	ObserveDelivery(o hub.Observer)
}

// Query admission. A query holds one of the index's readers while it runs, and
// a query beyond them used to wait for one: eight costly queries held every
// reader until the time-out and an ordinary one waited 58 s. Beyond these
// limits the hub answers 503 unavailable with Retry-After at once, so that
// the queries it takes finish as fast as they can.
const (
	// QueryConcurrency is the most queries that run at once: one per reader
	// of the index.
	QueryConcurrency = index.Readers
	// CostlyQueryConcurrency is how many of them may have a costly
	// predicate, so that the others keep most of the readers and the CPU.
	CostlyQueryConcurrency = 2
	// CostlyWhereSteps and CostlyWhereStepsPerByte make a predicate costly:
	// more steps per event, or per byte of its data, than this (see
	// pattern.MaxWhereCost; an ordinary predicate is a few dozen steps).
	CostlyWhereSteps        = 200
	CostlyWhereStepsPerByte = 8
	// LiveQueryLimit is the most live queries open at once, and
	// CostlyLiveQueryLimit how many of them may have a costly predicate:
	// the hub evaluates every live predicate on every event it indexes.
	LiveQueryLimit       = 64
	CostlyLiveQueryLimit = 1
	// RetryAfter is the Retry-After of a query refused for being one too
	// many, in seconds.
	RetryAfter = 1
)

// slots is a counting semaphore that never waits.
type slots chan struct{}

func (s slots) take() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) give() { <-s }

// costly reports whether q's predicate is costly (CostlyWhereSteps).
func costly(q *pattern.Query) bool {
	perEvent, perByte := q.Cost()
	return perEvent > CostlyWhereSteps || perByte > CostlyWhereStepsPerByte
}

// admit takes a slot of all, and one of few too when q is costly, or returns
// the 503 that says why not; release gives them back. field and noun name
// what is refused in the message: "query" and "queries".
func admit(q *pattern.Query, all, few slots, field, noun string) (release func(), err error) {
	busy := func(n int, what string) error {
		return &web.Error{Status: http.StatusServiceUnavailable, Code: web.CodeUnavailable, RetryAfter: RetryAfter,
			Message: fmt.Sprintf("%s: %d %s run at once, the most the hub takes; try again in %d s", field, n, what, RetryAfter)}
	}
	if !all.take() {
		return nil, busy(cap(all), noun)
	}
	if !costly(q) {
		return all.give, nil
	}
	if !few.take() {
		all.give()
		return nil, busy(cap(few), noun+" with a costly where-expression (loops over ranges or the event's data)")
	}
	return func() { few.give(); all.give() }, nil
}

// maxQueryBody is the largest POST /api/v1/query body accepted.
const maxQueryBody = 1 << 20

// MountHub registers the hub's REST API and its /metrics figures, and makes
// /healthz follow the hub's readiness.
func Mount(s *web.Server, h Hub) {
	a := &hubAPI{h: h, queries: make(slots, QueryConcurrency), costly: make(slots, CostlyQueryConcurrency),
		lives: make(slots, LiveQueryLimit), costlyLives: make(slots, CostlyLiveQueryLimit),
		queryTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tributary_hub_query_seconds",
			Help:    "Time to answer a pattern query, by pattern kind.",
			Buckets: web.LatencyBuckets,
		}, []string{"pattern"})}
	s.Registry().MustRegister(a.queryTime)
	h.ObserveDelivery(web.NewHistogram(s.Registry(), "tributary_hub_delivery_seconds",
		"Time from an event's ingest at the edge to its commit to the hub's index (events sent in wire format v2)."))
	s.Ready = h.Ready
	s.Collect(a.collect)
	g := s.Echo().Group("/api/v1")
	g.GET("/nodes", a.nodes)
	g.GET("/nodes/:node/gaps", a.gaps)
	g.POST("/query", a.queryPost)
	g.GET("/query", a.queryGet)
	g.GET("/query/live", a.live)
	g.GET("/counters", a.counterList)
	g.GET("/counters/:name", a.counterGet)
	g.GET("/cluster", a.cluster)
	mountAggregate(s, g, h, a)
}

type hubAPI struct {
	h                  Hub
	queries, costly    slots // QueryConcurrency, CostlyQueryConcurrency
	lives, costlyLives slots // LiveQueryLimit, CostlyLiveQueryLimit
	queryTime          *prometheus.HistogramVec
}

// nodes answers GET /api/v1/nodes?limit=&after=&online=&prefix=&sort=: one
// page of the registry and totals over the whole fleet.
func (a *hubAPI) nodes(c echo.Context) error {
	v := c.QueryParams()
	q := hub.NodeQuery{After: v.Get("after"), Prefix: v.Get("prefix"), Sort: hub.NodeSort(v.Get("sort"))}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return web.Invalid("limit: %q is not an integer", s)
		}
		if n <= 0 {
			return web.Invalid("limit: %d, want 1 to %d", n, hub.MaxNodeLimit)
		}
		q.Limit = n
	}
	if s := v.Get("online"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return web.Invalid("online: %q is not true or false", s)
		}
		q.Online = &b
	}
	if q.Prefix != "" && len(q.Prefix) > stream.MaxNameLen {
		return web.Invalid("prefix: longer than a node name (%d bytes)", stream.MaxNameLen)
	}
	page, err := a.h.Nodes(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (a *hubAPI) gaps(c echo.Context) error {
	node := c.Param("node")
	if err := stream.ValidateName("node", node); err != nil {
		return err
	}
	gaps, err := a.h.Gaps(c.Request().Context(), node)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"node": node, "gaps": gaps})
}

func (a *hubAPI) queryPost(c echo.Context) error {
	var req pattern.Request
	if err := readJSONBody(c, &req); err != nil {
		return err
	}
	return a.run(c, req)
}

func (a *hubAPI) queryGet(c echo.Context) error {
	req, err := requestFromQuery(c)
	if err != nil {
		return err
	}
	return a.run(c, req)
}

func requestFromQuery(c echo.Context) (pattern.Request, error) {
	q := c.QueryParams()
	req := pattern.Request{
		Pattern: q.Get("pattern"), Where: q.Get("where"), Stream: q.Get("stream"),
		From: q.Get("from"), To: q.Get("to"), After: q.Get("after"),
		Consistency: q.Get("consistency"), Wait: q.Get("wait"),
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, web.Invalid("limit: %q is not an integer", v)
		}
		req.Limit = n
	}
	if v := q.Get("count"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, web.Invalid("count: %q is not true or false", v)
		}
		req.Count = b
	}
	return req, nil
}

func (a *hubAPI) run(c echo.Context, req pattern.Request) error {
	start := time.Now()
	q, err := pattern.Prepare(req)
	if err != nil {
		return err
	}
	// A strong read waits for the nodes before it takes a slot: waiting
	// costs neither the index nor the CPU.
	ctx, cancel := context.WithTimeout(c.Request().Context(), web.QueryTimeout+q.Wait)
	defer cancel()
	caught, err := a.h.CatchUp(ctx, q)
	if err != nil {
		return err
	}
	admitted, err := admit(q, a.queries, a.costly, "query", "queries")
	if err != nil {
		return err
	}
	release := sync.OnceFunc(admitted)
	defer release()
	res, err := a.h.Answer(ctx, q, caught)
	// The slot is for the index and the CPU: a client slow to read the
	// answer must not hold it.
	release()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &web.Error{Status: http.StatusServiceUnavailable, Code: web.CodeUnavailable, Message: fmt.Sprintf("query: ran past %v; narrow the time range or the nodes", web.QueryTimeout)}
		}
		return err
	}
	took := time.Since(start)
	res.TookMS = float64(took.Microseconds()) / 1000
	a.queryTime.WithLabelValues(q.Kind.String()).Observe(took.Seconds())
	return writeResult(c, res)
}

// writeResult writes res as c.JSON would, through pattern.Result.AppendJSON,
// which writes the nodes of a fleet several times faster than encoding/json;
// ?pretty still gets c.JSON's indented form.
func writeResult(c echo.Context, res *pattern.Result) error {
	if _, pretty := c.QueryParams()["pretty"]; pretty {
		return c.JSON(http.StatusOK, res)
	}
	b, err := res.AppendJSON(make([]byte, 0, 256+96*len(res.Nodes)))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, append(b, '\n'))
}

// Live stream timing.
const (
	// LiveCompletenessEvery is how often a live stream says how complete the
	// hub's data of the nodes in scope is (an "event: completeness").
	LiveCompletenessEvery = 5 * time.Second
	// LiveIncompleteMax is the most incomplete nodes one such event names.
	LiveIncompleteMax = 100
	// SSEKeepAlive is how often a live stream with nothing to send sends a
	// comment, so that proxies keep it open and a dead client is noticed.
	SSEKeepAlive = 15 * time.Second
)

// live streams matches as server-sent events: one "data: EVENT" per match, a
// comment every SSEKeepAlive to keep proxies from closing the stream, and a
// final "event: error" when the subscriber fell behind.
func (a *hubAPI) live(c echo.Context) error {
	req, err := requestFromQuery(c)
	if err != nil {
		return err
	}
	q, err := pattern.Prepare(req)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := a.h.Scope(ctx, q); err != nil {
		return err
	}
	release, err := admit(q, a.lives, a.costlyLives, "live", "live queries")
	if err != nil {
		return err
	}
	defer release()
	sub := a.h.Subscribe(q)
	defer sub.Close()
	// Matches flush unless more are queued: a burst costs one flush.
	write, rc, err := web.StartSSE(c)
	if err != nil {
		return err
	}
	if !write(": live "+q.String()+"\n\n", true) {
		return nil
	}
	completeness := func() bool {
		b, err := json.Marshal(a.liveCompleteness(ctx, q))
		return err == nil && write("event: completeness\ndata: "+string(b)+"\n\n", true)
	}
	if !completeness() {
		return nil
	}
	keep := time.NewTicker(SSEKeepAlive)
	defer keep.Stop()
	compl := time.NewTicker(LiveCompletenessEvery)
	defer compl.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keep.C:
			if !write(": keepalive\n\n", true) {
				return nil
			}
		case <-compl.C:
			if !completeness() {
				return nil
			}
		case ev, ok := <-sub.C:
			if !ok {
				msg := "live query ended"
				if err := sub.Err(); err != nil {
					msg = err.Error() + ": read faster or narrow the query"
				}
				var body web.ErrorBody
				body.Error.Code, body.Error.Message = web.CodeUnavailable, msg
				b, _ := json.Marshal(body)
				if write("event: error\ndata: "+string(b)+"\n\n", true) {
					// A subscriber this far behind may have stopped reading
					// altogether: what it has not read must not stay queued
					// for it behind a kept-alive connection.
					web.EndStream(rc, c.Request().ProtoAtLeast(1, 1), web.SSEWriteTimeout)
				}
				return nil
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return nil
			}
			if !write("data: "+string(b)+"\n\n", len(sub.C) == 0) {
				return nil
			}
		}
	}
}

func (a *hubAPI) counterList(c echo.Context) error {
	list, err := a.h.Counters(c.Request().Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []counters.Counter{}
	}
	return c.JSON(http.StatusOK, map[string]any{"counters": list})
}

func (a *hubAPI) counterGet(c echo.Context) error {
	name := c.Param("name")
	if err := stream.ValidateName("counter", name); err != nil {
		return err
	}
	ctr, err := a.h.Counter(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ctr)
}

// jsonError turns a JSON decoding error into a message that says where.
func jsonError(err error, body []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return fmt.Sprintf("line %d column %d: %v", line, col, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: want %v, got JSON %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.EOF) {
		return "empty; want a JSON object"
	}
	return err.Error()
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// liveCompleteness is the body of a live stream's "event: completeness": how
// many nodes in scope are complete, and the incomplete ones (the first
// LiveIncompleteMax by name) with what is pending, so that a client knows
// which nodes may still send events that belong to what it has seen.
type liveCompleteness struct {
	Nodes      int                             `json:"nodes"`
	Complete   int                             `json:"complete"`
	Incomplete map[string]pattern.Completeness `json:"incomplete"`
	More       int                             `json:"more_incomplete"`
}

func (a *hubAPI) liveCompleteness(ctx context.Context, q *pattern.Query) liveCompleteness {
	out := liveCompleteness{Incomplete: map[string]pattern.Completeness{}}
	nodes, err := a.h.Scope(ctx, q)
	if err != nil {
		return out
	}
	out.Nodes = len(nodes)
	for _, n := range nodes {
		c := a.h.Completeness(n)
		switch {
		case c.Complete:
			out.Complete++
		case len(out.Incomplete) < LiveIncompleteMax:
			out.Incomplete[n] = c
		default:
			out.More++
		}
	}
	return out
}
