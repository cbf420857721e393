package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

func init() {
	registerError(pattern.ErrUnknownNode, http.StatusNotFound, CodeNotFound)
	registerError(pattern.ErrInvalid, http.StatusBadRequest, CodeInvalid)
	registerError(counters.ErrUnknownCounter, http.StatusNotFound, CodeNotFound)
	registerError(counters.ErrInvalid, http.StatusBadRequest, CodeInvalid)
	registerError(counters.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable)
	registerError(counters.ErrClosed, http.StatusServiceUnavailable, CodeUnavailable)
}

// QueryTimeout bounds one query's run time.
const QueryTimeout = 60 * time.Second

// maxQueryBody is the largest POST /api/v1/query body accepted.
const maxQueryBody = 1 << 20

// MountHub registers the hub's REST API and its /metrics figures, and makes
// /healthz follow the hub's readiness.
func (s *Server) MountHub(h *hub.Hub) {
	a := &hubAPI{h: h}
	s.Ready = h.Ready
	s.Collectors = append(s.Collectors, a.collect)
	g := s.echo.Group("/api/v1")
	g.GET("/nodes", a.nodes)
	g.GET("/nodes/:node/gaps", a.gaps)
	g.POST("/query", a.queryPost)
	g.GET("/query", a.queryGet)
	g.GET("/query/live", a.live)
	g.GET("/counters", a.counterList)
	g.GET("/counters/:name", a.counterGet)
}

type hubAPI struct{ h *hub.Hub }

func (a *hubAPI) nodes(c echo.Context) error {
	nodes, err := a.h.Nodes(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"nodes": nodes})
}

func (a *hubAPI) gaps(c echo.Context) error {
	node := c.Param("node")
	if err := stream.ValidateName("node", node); err != nil {
		return err
	}
	gaps, err := a.h.Index.Gaps(c.Request().Context(), node)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"node": node, "gaps": gaps})
}

func (a *hubAPI) queryPost(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxQueryBody+1))
	if err != nil {
		return Invalid("body: %v", err)
	}
	if len(body) > maxQueryBody {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("body: over the %d byte limit", maxQueryBody)}
	}
	var req pattern.Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Invalid("body: %s", jsonError(err, body))
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
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, Invalid("limit: %q is not an integer", v)
		}
		req.Limit = n
	}
	if v := q.Get("count"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, Invalid("count: %q is not true or false", v)
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
	ctx, cancel := context.WithTimeout(c.Request().Context(), QueryTimeout)
	defer cancel()
	res, err := a.h.Query(ctx, q)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf("query: ran past %v; narrow the time range or the nodes", QueryTimeout)}
		}
		return err
	}
	res.TookMS = float64(time.Since(start).Microseconds()) / 1000
	return c.JSON(http.StatusOK, res)
}

// live streams matches as server-sent events: one "data: EVENT" per match, a
// comment every 15 s to keep proxies from closing the stream, and a final
// "event: error" when the subscriber fell behind.
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
	if _, err := pattern.Scope(ctx, a.h.Index, q); err != nil {
		return err
	}
	sub := a.h.Live.Subscribe(q)
	defer sub.Close()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, ": live "+q.String()+"\n\n"); err != nil {
		return nil
	}
	w.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case ev, ok := <-sub.C:
			if !ok {
				msg := "live query ended"
				if err := sub.Err(); err != nil {
					msg = err.Error() + ": read faster or narrow the query"
				}
				var body errorBody
				body.Error.Code, body.Error.Message = CodeUnavailable, msg
				b, _ := json.Marshal(body)
				fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
				w.Flush()
				return nil
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return nil
			}
			// Send what is already queued before flushing, so a burst costs one flush.
			if len(sub.C) == 0 {
				w.Flush()
			}
		}
	}
}

func (a *hubAPI) counterList(c echo.Context) error {
	list, err := a.h.Counters.List(c.Request().Context())
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
	ctr, err := a.h.Counters.Get(c.Request().Context(), name)
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
