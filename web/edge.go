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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/stream"
)

// EdgeAgent is what the edge agent's local API needs; *agent.Agent implements it.
// The handlers call it from many goroutines at once.
type EdgeAgent interface {
	// Ready returns nil once the agent takes events.
	Ready() error
	// ObserveCommits makes the agent report each ingest's time to commit;
	// MountEdge calls it before the agent opens.
	ObserveCommits(o edge.Observer)
	// Ingest commits an ingest body of size bytes (-1 when unknown) to a
	// stream and returns after the commit.
	Ingest(ctx context.Context, streamName string, body io.Reader, size int64, contentType string) (edge.IngestResult, error)
	// Status returns the agent's state.
	Status() edge.Status
	// Metrics returns the agent's figures.
	Metrics() edge.Metrics
	// Incr adds delta to this node's state of a sum counter; an error wrapping
	// edge.ErrKindConflict when the counter is of another kind.
	Incr(ctx context.Context, name string, delta int64) (counters.PN, error)
	// Set puts a value into this node's register of a max, min or last
	// counter; an error wrapping edge.ErrKindConflict when the counter is of
	// another kind.
	Set(ctx context.Context, name string, kind counters.Kind, v float64) (counters.Register, error)
	// Counter returns this node's state of a counter of any kind; ok is false
	// when the node never wrote it.
	Counter(ctx context.Context, name string) (r counters.Register, ok bool, err error)
}

// MountEdge registers the edge agent's local API (ingest, status, counters) and
// its /metrics figures, and makes /healthz follow the agent's readiness.
func (s *Server) MountEdge(a EdgeAgent) {
	api := &edgeAPI{a: a, byStatus: map[int]uint64{}}
	s.Ready = a.Ready
	s.Collect(api.collect)
	a.ObserveCommits(NewHistogram(s.reg, "tributary_edge_commit_seconds",
		"Time from an append (an ingest request or a source's batch) to its commit to the buffer, group commit and fsync included."))
	g := s.echo.Group("/api/v1")
	g.POST("/events", api.ingest)
	g.GET("/status", api.status)
	g.POST("/counters/:name", api.counterWrite)
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
		status = Classify(err).Status
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
	req := c.Request()
	res, err := api.a.Ingest(req.Context(), name, req.Body, req.ContentLength, req.Header.Get(echo.HeaderContentType))
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
// own (its contribution to a sum, its register's value otherwise), and
// updated, for a last counter, the time its write was stamped with.
type counterReply struct {
	Name    string         `json:"name"`
	Node    string         `json:"node"`
	Kind    counters.Kind  `json:"kind"`
	Value   counters.Value `json:"value"`
	Updated string         `json:"updated,omitempty"`
}

func (api *edgeAPI) reply(c echo.Context, name string, r counters.Register) error {
	out := counterReply{Name: name, Node: api.a.Status().Node, Kind: r.Kind, Value: r.NodeValue()}
	if r.Kind == counters.KindLast && r.Set {
		out.Updated = counters.FormatTime(r.Stamp.Wall)
	}
	return c.JSON(http.StatusOK, out)
}

// maxCounterBody is the largest POST /api/v1/counters/{name} body accepted.
const maxCounterBody = 4 << 10

func (api *edgeAPI) counterWrite(c echo.Context) error {
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
	w, err := parseCounterWrite(body)
	if err != nil {
		return err
	}
	if err := api.a.Ready(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if w.kind == counters.KindSum {
		pn, err := api.a.Incr(ctx, name, w.delta)
		if err != nil {
			return err
		}
		return api.reply(c, name, counters.Register{PN: pn})
	}
	r, err := api.a.Set(ctx, name, w.kind, w.value)
	if err != nil {
		return err
	}
	return api.reply(c, name, r)
}

// counterWrite is one parsed counter write: a delta to a sum, or a value for a
// register of kind.
type counterWrite struct {
	kind  counters.Kind
	delta int64
	value float64
}

// wantCounterBody is what the errors of parseCounterWrite say a body is.
const wantCounterBody = `want {"delta": INTEGER} or {"kind": "max"|"min"|"last", "value": NUMBER}`

// parseCounterWrite reads {"delta": INT} or {"kind": "sum", "delta": INT} for
// a sum, and {"kind": "max"|"min"|"last", "value": NUMBER} for a register. A sum
// takes no value and a register no delta; the field its kind needs is
// required, must be an integer that fits in int64 or a number that fits in a
// float64, and no other field is allowed.
func parseCounterWrite(body []byte) (counterWrite, error) {
	var req struct {
		Kind  *string          `json:"kind"`
		Delta *json.RawMessage `json:"delta"`
		Value *json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return counterWrite{}, Invalid("body: %v; %s", err, wantCounterBody)
	}
	if dec.More() {
		return counterWrite{}, Invalid("body: unexpected data after the JSON object")
	}
	var w counterWrite
	if req.Kind != nil {
		k, err := counters.ParseKind(*req.Kind)
		if err != nil {
			return counterWrite{}, Invalid("kind: %v", err)
		}
		w.kind = k
	}
	present := func(f *json.RawMessage) bool { return f != nil && string(*f) != "null" }
	if w.kind == counters.KindSum {
		if present(req.Value) {
			return counterWrite{}, Invalid(`body: a sum takes "delta", not "value"; for a register give "kind": "max", "min" or "last"`)
		}
		if !present(req.Delta) {
			return counterWrite{}, Invalid(`body: delta is missing; want {"delta": INTEGER}`)
		}
		raw := string(*req.Delta)
		delta, err := strconv.ParseInt(raw, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return counterWrite{}, Invalid("delta %s does not fit in a 64-bit integer", raw)
		}
		if err != nil {
			return counterWrite{}, Invalid("delta %.40s is not an integer", raw)
		}
		w.delta = delta
		return w, nil
	}
	if present(req.Delta) {
		return counterWrite{}, Invalid(`body: a %v counter takes "value", not "delta"`, w.kind)
	}
	if !present(req.Value) {
		return counterWrite{}, Invalid(`body: value is missing; want {"kind": %q, "value": NUMBER}`, w.kind.String())
	}
	// The decoder has checked the JSON, so a number here always parses; anything
	// else (a string, a boolean, an object) does not.
	raw := string(*req.Value)
	v, err := strconv.ParseFloat(raw, 64)
	if errors.Is(err, strconv.ErrRange) {
		return counterWrite{}, Invalid("value %.40s does not fit in a 64-bit float", raw)
	}
	if err != nil {
		return counterWrite{}, Invalid("value %.40s is not a number", raw)
	}
	w.value = v
	return w, nil
}

func (api *edgeAPI) counterGet(c echo.Context) error {
	name := c.Param("name")
	if err := stream.ValidateName("counter", name); err != nil {
		return err
	}
	if err := api.a.Ready(); err != nil {
		return err
	}
	r, ok, err := api.a.Counter(c.Request().Context(), name)
	if err != nil {
		return err
	}
	if !ok {
		return NotFound("counter %q was never written on this node", name)
	}
	return api.reply(c, name, r)
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
		{Name: "tributary_edge_buffered_events", Help: "Events held in the buffer, not yet acknowledged by the hub.", Type: prometheus.GaugeValue, Value: float64(b.Buffered)},
		{Name: "tributary_edge_buffered_bytes", Help: "Data bytes of the buffered events.", Type: prometheus.GaugeValue, Value: float64(b.BufferedBytes)},
		{Name: "tributary_edge_buffer_file_bytes", Help: "Size on disk of the buffer database and its write-ahead log.", Type: prometheus.GaugeValue, Value: float64(b.FileBytes)},
		{Name: "tributary_edge_last_seq", Help: "Seq of the newest event appended in this epoch.", Type: prometheus.GaugeValue, Value: float64(b.LastSeq)},
		{Name: "tributary_edge_acked_seq", Help: "Seq at and below which every event is acknowledged or dropped.", Type: prometheus.GaugeValue, Value: float64(b.AckedSeq)},
		{Name: "tributary_edge_dropped_events_total", Help: "Events the buffer discarded under its policy or max age.", Type: prometheus.CounterValue, Value: float64(b.Dropped)},
		{Name: "tributary_edge_ingested_events_total", Help: "Events committed to the buffer since start, from every source.", Type: prometheus.CounterValue, Value: float64(m.Ingested)},
		{Name: "tributary_edge_sent_events_total", Help: "Events acknowledged by the hub since start.", Type: prometheus.CounterValue, Value: float64(f.Sent)},
		{Name: "tributary_edge_sent_batches_total", Help: "Batches acknowledged by the hub since start.", Type: prometheus.CounterValue, Value: float64(f.Batches)},
		{Name: "tributary_edge_publish_errors_total", Help: "Forwarding sessions ended by a failed publish or a lost connection.", Type: prometheus.CounterValue, Value: float64(f.PublishErrors)},
		{Name: "tributary_edge_heartbeats_total", Help: "Heartbeats sent to the hub.", Type: prometheus.CounterValue, Value: float64(f.Heartbeats)},
		{Name: "tributary_edge_reconnects_total", Help: "Reconnections to the hub.", Type: prometheus.CounterValue, Value: float64(f.Reconnects)},
		{Name: "tributary_edge_inflight_batches", Help: "Batches published and waiting for their ack.", Type: prometheus.GaugeValue, Value: float64(f.Inflight)},
		{Name: "tributary_edge_uplink_bytes_total", Help: "Bytes written to the connection with the hub: frames, heartbeats, protocol, TLS, re-sends.", Type: prometheus.CounterValue, Value: float64(f.UplinkBytes)},
		{Name: "tributary_edge_uplink_events_total", Help: "Events in the batches published to the hub, re-sends included.", Type: prometheus.CounterValue, Value: float64(f.UplinkEvents)},
		{Name: "tributary_edge_hub_connected", Help: "1 while the connection to the hub is up.", Type: prometheus.GaugeValue, Value: connected},
	}
	api.mu.Lock()
	codes := make([]int, 0, len(api.byStatus))
	for code := range api.byStatus {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for _, code := range codes {
		out = append(out, Sample{Name: "tributary_edge_ingest_requests_total", Help: "Ingest requests by HTTP status.", Type: prometheus.CounterValue,
			Labels: [][2]string{{"status", strconv.Itoa(code)}}, Value: float64(api.byStatus[code])})
	}
	api.mu.Unlock()
	return out
}
