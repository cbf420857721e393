package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

func init() {
	registerError(edge.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge)
	registerError(edge.ErrEventTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge)
	registerError(edge.ErrBadBody, http.StatusBadRequest, CodeInvalid)
	registerError(edge.ErrInvalidData, http.StatusBadRequest, CodeInvalid)
	registerError(edge.ErrBufferFull, http.StatusServiceUnavailable, CodeUnavailable)
	registerError(edge.ErrDiskFull, http.StatusServiceUnavailable, CodeUnavailable)
	registerError(edge.ErrClosed, http.StatusServiceUnavailable, CodeUnavailable)
	registerError(edge.ErrNotReady, http.StatusServiceUnavailable, CodeUnavailable)
	registerError(counters.ErrOverflow, http.StatusBadRequest, CodeInvalid)
}

// EdgeAgent is what the edge agent's local API needs; *edge.Agent implements it.
// The handlers call it from many goroutines at once.
type EdgeAgent interface {
	// Ready returns nil once the agent takes events.
	Ready() error
	// Ingest commits an ingest body to a stream and returns after the commit.
	Ingest(ctx context.Context, streamName string, body io.Reader, contentType string) (edge.IngestResult, error)
	// Status returns the agent's state.
	Status() edge.Status
	// Metrics returns the agent's figures.
	Metrics() edge.Metrics
	// Incr adds delta to this node's state of a counter.
	Incr(ctx context.Context, name string, delta int64) (counters.PN, error)
	// Counter returns this node's state of a counter; ok is false when the node
	// never incremented it.
	Counter(ctx context.Context, name string) (pn counters.PN, ok bool, err error)
}

// MountEdge registers the edge agent's local API (ingest, status, counters) and
// its /metrics figures, and makes /healthz follow the agent's readiness.
func (s *Server) MountEdge(a EdgeAgent) {
	api := &edgeAPI{a: a, byStatus: map[int]uint64{}}
	s.Ready = a.Ready
	s.Collectors = append(s.Collectors, api.collect)
	g := s.echo.Group("/api/v1")
	g.POST("/events", api.ingest)
	g.GET("/status", api.status)
	g.POST("/counters/:name", api.counterIncr)
	g.GET("/counters/:name", api.counterGet)
}

type edgeAPI struct {
	a EdgeAgent

	mu       sync.Mutex
	byStatus map[int]uint64 // ingest requests by HTTP status
}

func (api *edgeAPI) ingest(c echo.Context) error {
	err := api.doIngest(c)
	status := c.Response().Status
	if err != nil {
		status = toAPIError(err).Status
	}
	api.mu.Lock()
	api.byStatus[status]++
	api.mu.Unlock()
	return err
}

func (api *edgeAPI) doIngest(c echo.Context) error {
	name := c.QueryParam("stream")
	if name == "" {
		name = edge.DefaultStream
	}
	if err := api.a.Ready(); err != nil {
		return err
	}
	res, err := api.a.Ingest(c.Request().Context(), name, c.Request().Body, c.Request().Header.Get(echo.HeaderContentType))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, res)
}

// status answers 503 until the buffer is open: before that there is no epoch
// or seq to report.
func (api *edgeAPI) status(c echo.Context) error {
	if err := api.a.Ready(); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.a.Status())
}

// counterReply is the answer of both counter endpoints: value is this node's
// contribution.
type counterReply struct {
	Name  string `json:"name"`
	Node  string `json:"node"`
	Value int64  `json:"value"`
}

// maxCounterBody is the largest POST /api/v1/counters/{name} body accepted.
const maxCounterBody = 4 << 10

func (api *edgeAPI) counterIncr(c echo.Context) error {
	name := c.Param("name")
	if err := stream.ValidateName("counter", name); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxCounterBody+1))
	if err != nil {
		return Invalid("body: %v", err)
	}
	if len(body) > maxCounterBody {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "body: over the 4096 byte limit"}
	}
	delta, err := parseDelta(body)
	if err != nil {
		return err
	}
	if err := api.a.Ready(); err != nil {
		return err
	}
	pn, err := api.a.Incr(c.Request().Context(), name, delta)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counterReply{Name: name, Node: api.a.Status().Node, Value: pn.Value()})
}

// parseDelta reads {"delta": INT}: the field is required, must be an integer
// that fits in int64, and no other field is allowed.
func parseDelta(body []byte) (int64, error) {
	var req struct {
		Delta *json.RawMessage `json:"delta"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, Invalid("body: %v; want {\"delta\": INTEGER}", err)
	}
	if dec.More() {
		return 0, Invalid("body: unexpected data after the JSON object")
	}
	if req.Delta == nil || string(*req.Delta) == "null" {
		return 0, Invalid("body: delta is missing; want {\"delta\": INTEGER}")
	}
	raw := string(*req.Delta)
	delta, err := strconv.ParseInt(raw, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, Invalid("delta %s does not fit in a 64-bit integer", raw)
	}
	if err != nil {
		return 0, Invalid("delta %.40s is not an integer", raw)
	}
	return delta, nil
}

func (api *edgeAPI) counterGet(c echo.Context) error {
	name := c.Param("name")
	if err := stream.ValidateName("counter", name); err != nil {
		return err
	}
	if err := api.a.Ready(); err != nil {
		return err
	}
	pn, ok, err := api.a.Counter(c.Request().Context(), name)
	if err != nil {
		return err
	}
	if !ok {
		return NotFound("counter %q was never incremented on this node", name)
	}
	return c.JSON(http.StatusOK, counterReply{Name: name, Node: api.a.Status().Node, Value: pn.Value()})
}

// collect returns the edge's figures for /metrics.
func (api *edgeAPI) collect() []Sample {
	m := api.a.Metrics()
	b, f := m.Buffer, m.Forwarder
	connected := 0.0
	if f.Connected {
		connected = 1
	}
	out := []Sample{
		{Name: "tributary_edge_buffered_events", Help: "Events held in the buffer, not yet acknowledged by the hub.", Type: "gauge", Value: float64(b.Buffered)},
		{Name: "tributary_edge_buffered_bytes", Help: "Data bytes of the buffered events.", Type: "gauge", Value: float64(b.BufferedBytes)},
		{Name: "tributary_edge_buffer_file_bytes", Help: "Size on disk of the buffer database and its write-ahead log.", Type: "gauge", Value: float64(b.FileBytes)},
		{Name: "tributary_edge_last_seq", Help: "Seq of the newest event appended in this epoch.", Type: "gauge", Value: float64(b.LastSeq)},
		{Name: "tributary_edge_acked_seq", Help: "Seq at and below which every event is acknowledged or dropped.", Type: "gauge", Value: float64(b.AckedSeq)},
		{Name: "tributary_edge_dropped_events_total", Help: "Events the buffer discarded under its policy or max age.", Type: "counter", Value: float64(b.Dropped)},
		{Name: "tributary_edge_ingested_events_total", Help: "Events committed to the buffer since start, from every source.", Type: "counter", Value: float64(m.Ingested)},
		{Name: "tributary_edge_sent_events_total", Help: "Events acknowledged by the hub since start.", Type: "counter", Value: float64(f.Sent)},
		{Name: "tributary_edge_sent_batches_total", Help: "Batches acknowledged by the hub since start.", Type: "counter", Value: float64(f.Batches)},
		{Name: "tributary_edge_publish_errors_total", Help: "Forwarding sessions ended by a failed publish or a lost connection.", Type: "counter", Value: float64(f.PublishErrors)},
		{Name: "tributary_edge_heartbeats_total", Help: "Heartbeats sent to the hub.", Type: "counter", Value: float64(f.Heartbeats)},
		{Name: "tributary_edge_reconnects_total", Help: "Reconnections to the hub.", Type: "counter", Value: float64(f.Reconnects)},
		{Name: "tributary_edge_inflight_batches", Help: "Batches published and waiting for their ack.", Type: "gauge", Value: float64(f.Inflight)},
		{Name: "tributary_edge_hub_connected", Help: "1 while the connection to the hub is up.", Type: "gauge", Value: connected},
	}
	api.mu.Lock()
	codes := make([]int, 0, len(api.byStatus))
	for code := range api.byStatus {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for _, code := range codes {
		out = append(out, Sample{Name: "tributary_edge_ingest_requests_total", Help: "Ingest requests by HTTP status.", Type: "counter",
			Labels: [][2]string{{"status", strconv.Itoa(code)}}, Value: float64(api.byStatus[code])})
	}
	api.mu.Unlock()
	return out
}
