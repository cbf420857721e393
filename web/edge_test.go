package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/edge/agent"
	"github.com/tributary-edge/tributary/edge/buffer"
)

// edgeServer is an edge agent (with a hub nobody listens on) behind a running
// local API server.
type edgeServer struct {
	t   *testing.T
	a   *agent.Agent
	srv *Server
}

// unusedURL returns a NATS URL where nothing listens.
func unusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "nats://" + l.Addr().String()
}

// newEdgeServer starts the API, lets tune adjust the agent, then opens it.
func newEdgeServer(t *testing.T, tune func(*agent.Agent)) *edgeServer {
	t.Helper()
	a := agent.New("n1", t.TempDir(), unusedURL(t))
	if tune != nil {
		tune(a)
	}
	srv := NewServer("127.0.0.1:0")
	srv.MountEdge(a)
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &edgeServer{t: t, a: a, srv: srv}
	if code, _ := e.do("GET", "/healthz", "", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before the agent opened: %d, want 503", code)
	}
	if code, body := e.do("GET", "/api/v1/status", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("status before the agent opened: %d %s, want 503 unavailable", code, body)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return e
}

func (e *edgeServer) do(method, path, contentType, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantError checks an error answer's status, code and message.
func (e *edgeServer) wantError(method, path, contentType, body string, status int, code, msg string) {
	e.t.Helper()
	got, b := e.do(method, path, contentType, body)
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		e.t.Fatalf("%s %s: %d %s is not an error body", method, path, got, b)
	}
	if got != status || eb.Error.Code != code || !strings.Contains(eb.Error.Message, msg) {
		e.t.Fatalf("%s %s: %d %s, want %d %s with %q", method, path, got, b, status, code, msg)
	}
}

func (e *edgeServer) lastSeq() uint64 { return e.a.Status().LastSeq }

func TestEdgeIngest(t *testing.T) {
	e := newEdgeServer(t, nil)
	code, b := e.do("POST", "/api/v1/events?stream=sensors", "application/x-ndjson", "{\"t\":1}\n{\"t\":2}\n{\"t\":3,\"ts\":1000}\n")
	if code != http.StatusAccepted || string(b) != `{"accepted":3,"first_seq":1,"last_seq":3}`+"\n" {
		t.Fatalf("ingest: %d %s", code, b)
	}
	code, b = e.do("POST", "/api/v1/events", "application/json", `{"door":"open"}`)
	if code != http.StatusAccepted || string(b) != `{"accepted":1,"first_seq":4,"last_seq":4}`+"\n" {
		t.Fatalf("ingest to the default stream: %d %s", code, b)
	}
	rows, err := e.a.Buffer.Read(context.Background(), 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%d %s %s", r.Seq, r.Stream, r.Data))
	}
	want := []string{`1 sensors {"t":1}`, `2 sensors {"t":2}`, `3 sensors {"t":3,"ts":1000}`, `4 default {"door":"open"}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("buffered %q, want %q", got, want)
	}
	if rows[2].TS != 1e9 {
		t.Fatalf("ts field not used: %d", rows[2].TS)
	}

	e.wantError("POST", "/api/v1/events", "", "[{\"a\":1},\n 2]", 400, CodeInvalid, "event 2 (line 2): not a JSON object")
	e.wantError("POST", "/api/v1/events", "", "{\"a\":1}\n{\"a\" 1}", 400, CodeInvalid, "line 2 column 6: invalid character '1' after object key")
	e.wantError("POST", "/api/v1/events", "", "", 400, CodeInvalid, "the body is empty")
	e.wantError("POST", "/api/v1/events", "", `{"ts":"noon"}`, 400, CodeInvalid, `ts "noon" is not an RFC 3339 time`)
	e.wantError("POST", "/api/v1/events?stream=a.b", "", `{"a":1}`, 400, CodeInvalid, `stream name "a.b" has '.' at position 2`)
	e.wantError("POST", "/api/v1/events?stream=_hb", "", `{"a":1}`, 400, CodeInvalid, "stream name")
	if e.lastSeq() != 4 {
		t.Fatalf("a refused request stored events: last seq %d", e.lastSeq())
	}
}

func TestEdgeIngestLimits(t *testing.T) {
	e := newEdgeServer(t, func(a *agent.Agent) { a.MaxEventBytes = 1000 })
	// The default body limit is 16 MiB.
	big := `{"pad":"` + strings.Repeat("x", 500) + `"}` + "\n"
	body := strings.Repeat(big, (16<<20)/len(big)+1)
	e.wantError("POST", "/api/v1/events", "application/x-ndjson", body, 413, CodeTooLarge, "over the 16777216 byte limit")
	e.wantError("POST", "/api/v1/events", "", `{"pad":"`+strings.Repeat("x", 1000)+`"}`, 413, CodeTooLarge, "event 1 (line 1): 1010 bytes is over the 1000 byte limit")
	if e.lastSeq() != 0 {
		t.Fatalf("an oversize request stored events: last seq %d", e.lastSeq())
	}
	// Just under the limit is fine.
	code, b := e.do("POST", "/api/v1/events", "application/x-ndjson", strings.Repeat(big, 100))
	if code != http.StatusAccepted || !strings.HasPrefix(string(b), `{"accepted":100,`) {
		t.Fatalf("ingest: %d %s", code, b)
	}
}

func TestEdgeIngestFullBufferUnderReject(t *testing.T) {
	e := newEdgeServer(t, func(a *agent.Agent) {
		a.Buffer.MaxBytes, a.Buffer.Policy = buffer.MinMaxBytes, buffer.Reject
	})
	batch := strings.Repeat(`{"pad":"`+strings.Repeat("x", 1000)+`"}`+"\n", 20)
	accepted := 0
	for i := 0; ; i++ {
		code, b := e.do("POST", "/api/v1/events", "application/x-ndjson", batch)
		if code == http.StatusAccepted {
			accepted += 20
			continue
		}
		var eb ErrorBody
		json.Unmarshal(b, &eb)
		if code != http.StatusServiceUnavailable || eb.Error.Code != CodeUnavailable || !strings.Contains(eb.Error.Message, "buffer full") {
			t.Fatalf("request %d: %d %s, want 503 unavailable", i, code, b)
		}
		break
	}
	st := e.a.Status()
	if accepted == 0 || st.LastSeq != uint64(accepted) || st.Buffered != int64(accepted) || st.Dropped != 0 {
		t.Fatalf("after the buffer filled: %d accepted, status %+v", accepted, st)
	}
}

func TestEdgeStatusAndHealth(t *testing.T) {
	e := newEdgeServer(t, nil)
	e.do("POST", "/api/v1/events", "", `[{"a":1},{"a":2}]`)
	code, b := e.do("GET", "/api/v1/status", "", "")
	if code != 200 {
		t.Fatalf("status: %d %s", code, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "acked_seq,buffered,buffered_bytes,dropped,epoch,hub_connected,last_seq,node,sent,uplink_bytes" {
		t.Fatalf("status keys %v", keys)
	}
	if m["node"] != "n1" || m["epoch"] != e.a.Buffer.Epoch() || m["epoch"] == "" || m["hub_connected"] != false ||
		m["buffered"] != 2.0 || m["buffered_bytes"] != 14.0 || m["last_seq"] != 2.0 || m["acked_seq"] != 0.0 || m["sent"] != 0.0 ||
		m["uplink_bytes"] != 0.0 {
		t.Fatalf("status %s", b)
	}
	if code, _ := e.do("GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz once open: %d", code)
	}
	e.a.Close()
	if code, _ := e.do("GET", "/healthz", "", ""); code != 503 {
		t.Fatalf("healthz after close: %d", code)
	}
	e.wantError("POST", "/api/v1/events", "", `{"a":1}`, 503, CodeUnavailable, "not ready")
}

func TestEdgeMetrics(t *testing.T) {
	e := newEdgeServer(t, nil)
	e.do("POST", "/api/v1/events", "", `{"a":1}`)
	e.do("POST", "/api/v1/events", "", `{"a":2}`)
	e.do("POST", "/api/v1/events", "", `nope`)
	_, b := e.do("GET", "/metrics", "", "")
	for _, want := range []string{
		"tributary_edge_buffered_events 2\n",
		"tributary_edge_buffered_bytes 14\n",
		"tributary_edge_last_seq 2\n",
		"tributary_edge_hub_connected 0\n",
		"tributary_edge_ingested_events_total 2\n",
		"tributary_edge_sent_events_total 0\n",
		"tributary_edge_uplink_bytes_total 0\n",
		"tributary_edge_uplink_events_total 0\n",
		"tributary_edge_dropped_events_total 0\n",
		"tributary_edge_publish_errors_total 0\n",
		`tributary_edge_ingest_requests_total{status="202"} 2` + "\n",
		`tributary_edge_ingest_requests_total{status="400"} 1` + "\n",
		"# TYPE tributary_edge_buffer_file_bytes gauge\n",
		"# TYPE tributary_edge_commit_seconds histogram\n",
		"tributary_edge_commit_seconds_count 2\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

func TestEdgeCounters(t *testing.T) {
	e := newEdgeServer(t, nil)
	e.wantError("GET", "/api/v1/counters/orders", "", "", 404, CodeNotFound, `counter "orders" was never written`)
	for _, step := range []struct{ body, want string }{
		{`{"delta": 5}`, `{"name":"orders","node":"n1","kind":"sum","value":5}`},
		{`{"delta": -7}`, `{"name":"orders","node":"n1","kind":"sum","value":-2}`},
		{`{"kind": "sum", "delta": 0}`, `{"name":"orders","node":"n1","kind":"sum","value":-2}`},
	} {
		code, b := e.do("POST", "/api/v1/counters/orders", "application/json", step.body)
		if code != 200 || strings.TrimSpace(string(b)) != step.want {
			t.Fatalf("POST %s: %d %s, want %s", step.body, code, b, step.want)
		}
	}
	code, b := e.do("GET", "/api/v1/counters/orders", "", "")
	if code != 200 || strings.TrimSpace(string(b)) != `{"name":"orders","node":"n1","kind":"sum","value":-2}` {
		t.Fatalf("GET: %d %s", code, b)
	}

	for body, msg := range map[string]string{
		``:                                "body: EOF",
		`{}`:                              "delta is missing",
		`{"delta": null}`:                 "delta is missing",
		`{"delta": 1.5}`:                  "delta 1.5 is not an integer",
		`{"delta": 1e3}`:                  "delta 1e3 is not an integer",
		`{"delta": "5"}`:                  `delta "5" is not an integer`,
		`{"delta": 1, "by": "me"}`:        `unknown field "by"`,
		`{"delta": 1} {"delta": 2}`:       "unexpected data after the JSON object",
		`[1]`:                             "cannot unmarshal array",
		`{"delta": 99999999999999999999}`: "does not fit in a 64-bit integer",
	} {
		e.wantError("POST", "/api/v1/counters/orders", "application/json", body, 400, CodeInvalid, msg)
	}
	e.wantError("POST", "/api/v1/counters/bad.name", "application/json", `{"delta":1}`, 400, CodeInvalid, `counter name "bad.name"`)
	e.wantError("GET", "/api/v1/counters/_x", "", "", 400, CodeInvalid, "counter name")

	// Overflow is refused and leaves the state as it was.
	code, b = e.do("POST", "/api/v1/counters/big", "", `{"delta": 9223372036854775807}`)
	if code != 200 || !strings.Contains(string(b), `"value":9223372036854775807`) {
		t.Fatalf("max delta: %d %s", code, b)
	}
	e.wantError("POST", "/api/v1/counters/big", "", `{"delta": 1}`, 400, CodeInvalid, "overflow")
	code, b = e.do("GET", "/api/v1/counters/big", "", "")
	if code != 200 || !strings.Contains(string(b), `"value":9223372036854775807`) {
		t.Fatalf("after overflow: %d %s", code, b)
	}
}
