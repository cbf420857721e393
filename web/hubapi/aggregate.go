package hubapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/web"
)

// aggregateAPI serves POST and GET /api/v1/aggregate and the live stream of
// GET /api/v1/aggregate/live.
type aggregateAPI struct {
	h    Hub
	srv  *web.Server // for its Logger
	q    *hubAPI     // for its query and live slots
	took *prometheus.HistogramVec
	// now is the clock that closes live windows.
	now func() time.Time
}

// mountAggregate registers the aggregate routes under g and their histogram
// tributary_hub_aggregate_seconds{pattern}. Aggregates take q's query slots
// and live aggregates its live ones, as pattern queries do.
func mountAggregate(s *web.Server, g *echo.Group, h Hub, q *hubAPI) {
	a := &aggregateAPI{h: h, srv: s, q: q, now: time.Now, took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tributary_hub_aggregate_seconds",
		Help:    "Time to answer an aggregate, by pattern kind.",
		Buckets: web.LatencyBuckets,
	}, []string{"pattern"})}
	s.Registry().MustRegister(a.took)
	g.POST("/aggregate", a.post)
	g.GET("/aggregate", a.get)
	g.GET("/aggregate/live", a.live)
}

// post answers POST /api/v1/aggregate with a JSON body of aggregate.Request's
// fields; an unknown field is a 400 that names it.
func (a *aggregateAPI) post(c echo.Context) error {
	var req aggregate.Request
	if err := readJSONBody(c, &req); err != nil {
		return err
	}
	return a.run(c, req)
}

// readJSONBody decodes a request body of at most maxQueryBody bytes, one JSON
// object with no unknown field, into v; its errors are the 400 or 413 that
// say what and where.
func readJSONBody(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxQueryBody+1))
	if err != nil {
		return web.Invalid("body: %v", err)
	}
	if len(body) > maxQueryBody {
		return &web.Error{Status: http.StatusRequestEntityTooLarge, Code: web.CodeTooLarge, Message: fmt.Sprintf("body: over the %d byte limit", maxQueryBody)}
	}
	return decodeJSONBody(body, v)
}

// decodeJSONBody decodes one JSON object with no unknown field into v; its
// errors are 400s that say where.
func decodeJSONBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return web.Invalid("body: %s", jsonError(err, body))
	}
	return nil
}

// get answers GET /api/v1/aggregate with the same fields as query
// parameters, group_by and aggregates comma-separated.
func (a *aggregateAPI) get(c echo.Context) error {
	req, err := aggregate.RequestFromValues(c.QueryParams())
	if err != nil {
		return err
	}
	return a.run(c, req)
}

func (a *aggregateAPI) run(c echo.Context, req aggregate.Request) error {
	start := time.Now()
	p, err := aggregate.Prepare(req)
	if err != nil {
		return err
	}
	release, err := admit(p.Query(), a.q.queries, a.q.costly, "aggregate", "queries")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), web.QueryTimeout)
	defer cancel()
	res, err := a.h.Aggregate(ctx, p)
	// The slot is for the index and the CPU, not for a slow reader.
	release()
	if err != nil {
		return aggregateError(err)
	}
	a.took.WithLabelValues(p.Query().Kind.String()).Observe(time.Since(start).Seconds())
	return c.JSON(http.StatusOK, res)
}

// aggregateError turns an aggregate that ran out of time into a 503 that
// says what to do; other errors go through the error table.
func aggregateError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &web.Error{Status: http.StatusServiceUnavailable, Code: web.CodeUnavailable,
			Message: fmt.Sprintf("aggregate: ran past %v; narrow the time range or the nodes", web.QueryTimeout)}
	}
	return err
}
