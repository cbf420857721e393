package hubapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/aggregate"
	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

// blockingHub is a Hub whose queries run until the test lets them go.
type blockingHub struct {
	started chan string // the where of each query as it starts
	release chan struct{}
	live    *hub.Live
}

func (h *blockingHub) Ready() error { return nil }
func (h *blockingHub) Nodes(context.Context, hub.NodeQuery) (hub.NodePage, error) {
	return hub.NodePage{}, nil
}
func (h *blockingHub) Gaps(context.Context, string) ([]stream.Drop, error) { return nil, nil }
func (h *blockingHub) Completeness(string) pattern.Completeness            { return pattern.Completeness{} }
func (h *blockingHub) CatchUp(context.Context, *pattern.Query) (map[string]pattern.Completeness, error) {
	return nil, nil
}
func (h *blockingHub) Answer(ctx context.Context, q *pattern.Query, _ map[string]pattern.Completeness) (*pattern.Result, error) {
	h.started <- q.String()
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &pattern.Result{}, nil
}
func (h *blockingHub) Aggregate(ctx context.Context, p *aggregate.Plan) (*aggregate.Result, error) {
	h.started <- p.Query().String()
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &aggregate.Result{Windows: []aggregate.Window{}}, nil
}
func (h *blockingHub) Scope(context.Context, *pattern.Query) ([]string, error) { return nil, nil }
func (h *blockingHub) Subscribe(q *pattern.Query) *hub.Subscription            { return h.live.Subscribe(q) }
func (h *blockingHub) Counters(context.Context) ([]counters.Counter, error) {
	return nil, nil
}
func (h *blockingHub) Counter(context.Context, string) (counters.Counter, error) {
	return counters.Counter{}, counters.ErrUnknownCounter
}
func (h *blockingHub) Stats(context.Context) hub.Stats { return hub.Stats{} }
func (h *blockingHub) Cluster(context.Context) (hub.ClusterStatus, error) {
	return hub.ClusterStatus{}, nil
}
func (h *blockingHub) ObserveDelivery(hub.Observer) {}

const costlyWhere = `all(1..300, # >= 0)`

// TestQueriesBeyondTheCapsAreRefusedAtOnce: queries used to queue for the
// index's readers, so eight slow ones held up every other for a minute. The
// ninth query, the third costly one and the third costly live query are
// answered 503 with Retry-After at once, and an ordinary query still runs
// beside the costly ones.
func TestQueriesBeyondTheCapsAreRefusedAtOnce(t *testing.T) {
	h := &blockingHub{started: make(chan string, 100), release: make(chan struct{}), live: hub.NewLive()}
	s := web.NewServer("127.0.0.1:0")
	Mount(s, h)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	query := func(where string) (int, http.Header, string) {
		resp, err := http.Get(s.URL() + "/api/v1/query?pattern=all&where=" + url.QueryEscape(where))
		if err != nil {
			t.Error(err)
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	wantBusy := func(code int, header http.Header, body, words string) {
		t.Helper()
		var eb web.ErrorBody
		json.Unmarshal([]byte(body), &eb)
		if code != http.StatusServiceUnavailable || eb.Error.Code != web.CodeUnavailable || header.Get("Retry-After") != "1" || !strings.Contains(eb.Error.Message, words) {
			t.Fatalf("%d %v %s, want 503 unavailable with Retry-After: 1 saying %q", code, header, body, words)
		}
	}
	running := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-h.started:
			case <-time.After(10 * time.Second):
				t.Fatal("a query that should run did not start")
			}
		}
	}
	done := make(chan int, 100)
	for range QueryConcurrency {
		go func() { c, _, _ := query("temp > 1"); done <- c }()
	}
	running(QueryConcurrency)
	code, header, body := query("temp > 2")
	wantBusy(code, header, body, fmt.Sprintf("query: %d queries run at once, the most the hub takes; try again in 1 s", QueryConcurrency))
	for range QueryConcurrency {
		h.release <- struct{}{}
		if c := <-done; c != http.StatusOK {
			t.Fatalf("a query let go answered %d", c)
		}
	}

	for range CostlyQueryConcurrency {
		go func() { c, _, _ := query(costlyWhere); done <- c }()
	}
	running(CostlyQueryConcurrency)
	code, header, body = query(costlyWhere)
	wantBusy(code, header, body, fmt.Sprintf("query: %d queries with a costly where-expression", CostlyQueryConcurrency))
	go func() { c, _, _ := query("temp > 1"); done <- c }()
	running(1) // an ordinary one runs beside them
	for range CostlyQueryConcurrency + 1 {
		h.release <- struct{}{}
		if c := <-done; c != http.StatusOK {
			t.Fatalf("a query let go answered %d", c)
		}
	}

	// Costly live queries hold their slot while they stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range CostlyLiveQueryLimit {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/v1/query/live?pattern=all&where="+url.QueryEscape(costlyWhere), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("costly live query: %v %v", resp, err)
		}
		defer resp.Body.Close()
	}
	resp, err := http.Get(s.URL() + "/api/v1/query/live?pattern=all&where=" + url.QueryEscape(costlyWhere))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantBusy(resp.StatusCode, resp.Header, string(b), fmt.Sprintf("live: %d live queries with a costly where-expression", CostlyLiveQueryLimit))
}
