package hubapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/stream"
	"github.com/tributary-edge/tributary/web"
)

// aggHub is a real hub with the hub API in front of it, and a JetStream
// client that publishes events as edges do.
type aggHub struct {
	h   *hub.Hub
	url string
	js  jetstream.JetStream
	seq map[string]uint64
}

func startAggHub(t *testing.T, tokens ...string) *aggHub {
	t.Helper()
	h := hub.New()
	h.DataDir, h.NATSAddr, h.MaxStore = t.TempDir(), "127.0.0.1:0", 1<<30
	s := web.NewServer("127.0.0.1:0")
	Mount(s, h)
	s.SetTokens(tokens)
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return &aggHub{h: h, url: s.URL(), js: js, seq: map[string]uint64{}}
}

// publish sends one batch of node's events at the given times, data
// {"temp": temps[i]}, and waits until the hub holds them.
func (a *aggHub) publish(t *testing.T, node string, ts []time.Time, temps []float64) {
	t.Helper()
	recs := make([]stream.Record, len(ts))
	for i := range ts {
		a.seq[node]++
		recs[i] = stream.Record{Seq: a.seq[node], TS: ts[i].UnixNano(), Data: json.RawMessage(fmt.Sprintf(`{"temp":%v}`, temps[i]))}
	}
	b, err := stream.EncodeEvents(nil, node, "ep", "s", recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.js.Publish(context.Background(), stream.Subject(node, "s"), b); err != nil {
		t.Fatal(err)
	}
	want := int64(a.seq[node])
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := a.h.Nodes(context.Background(), hub.NodeQuery{Prefix: node})
		if err == nil && len(p.Nodes) > 0 && p.Nodes[0].Events >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: %d events not indexed within 30 s", node, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type aggAnswer struct {
	Pattern string `json:"pattern"`
	Window  string `json:"window"`
	Windows []struct {
		Start   time.Time        `json:"start"`
		Holds   bool             `json:"holds"`
		Certain bool             `json:"certain"`
		Revised *bool            `json:"revised"`
		Groups  []map[string]any `json:"groups"`
	} `json:"windows"`
	Scanned int64 `json:"scanned"`
	Certain bool  `json:"certain"`
}

// TestAggregateAPI: POST and GET give the same answer, with the values of the
// events published, and bad requests are 400s (404 for an unknown node)
// that say what and where.
func TestAggregateAPI(t *testing.T) {
	a := startAggHub(t)
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	a.publish(t, "a", []time.Time{t0.Add(10 * time.Second), t0.Add(20 * time.Second), t0.Add(70 * time.Second)}, []float64{20, 24, 30})
	a.publish(t, "b", []time.Time{t0.Add(5 * time.Second)}, []float64{10})

	body := `{"pattern":"all","from":"2026-11-25T00:00:00Z","to":"2026-11-25T00:03:00Z","window":"1m",
		"group_by":["node"],"aggregates":["count","avg(temp)","max(temp)"]}`
	res, err := http.Post(a.url+"/api/v1/aggregate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	post, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("POST: %d %s", res.StatusCode, post)
	}
	q := url.Values{"pattern": {"all"}, "from": {"2026-11-25T00:00:00Z"}, "to": {"2026-11-25T00:03:00Z"}, "window": {"1m"},
		"group_by": {"node"}, "aggregates": {"count,avg(temp),max(temp)"}}
	res2, getBody := proctest.HTTP(t, http.MethodGet, a.url+"/api/v1/aggregate?"+q.Encode(), nil)
	if res2.StatusCode != 200 {
		t.Fatalf("GET: %d %s", res2.StatusCode, getBody)
	}
	var p, g aggAnswer
	if err := json.Unmarshal(post, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(getBody), &g); err != nil {
		t.Fatal(err)
	}
	// took_ms may differ; everything else is the same answer.
	p.Scanned, g.Scanned = 0, 0
	pj, _ := json.Marshal(p)
	gj, _ := json.Marshal(g)
	if !bytes.Equal(pj, gj) {
		t.Fatalf("POST and GET differ:\n%s\n%s", pj, gj)
	}
	if p.Pattern != "all" || p.Window != "1m0s" || len(p.Windows) != 3 {
		t.Fatalf("answer %s", post)
	}
	w0 := p.Windows[0]
	if !w0.Holds || len(w0.Groups) != 2 || w0.Groups[0]["count"] != 2.0 || w0.Groups[0]["avg(temp)"] != 22.0 ||
		w0.Groups[1]["max(temp)"] != 10.0 || w0.Groups[1]["key"].(map[string]any)["node"] != "b" {
		t.Fatalf("first window %+v", w0)
	}
	// Window 1 has a's event only, so all does not hold there; b sent no
	// heartbeat, so that is not certain; window 2 is empty.
	if p.Windows[1].Holds || p.Windows[1].Certain || p.Certain || len(p.Windows[2].Groups) != 0 || p.Windows[2].Groups == nil {
		t.Fatalf("windows 1 and 2: %s", post)
	}

	bad := []struct {
		name, method, target, body string
		status                     int
		says                       []string
	}{
		{"bad window", "GET", "/api/v1/aggregate?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1x", "", 400, []string{"window", "1x"}},
		{"unknown aggregate", "GET", "/api/v1/aggregate?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1m&aggregates=median(temp)", "", 400, []string{"aggregates", "median(temp)"}},
		{"numeric aggregate without a field", "POST", "/api/v1/aggregate", `{"pattern":"all","from":"2026-11-25T00:00:00Z","to":"2026-11-25T01:00:00Z","window":"1m","aggregates":["avg"]}`, 400, []string{"aggregates", "avg", "needs a field"}},
		{"bad group path", "POST", "/api/v1/aggregate", `{"pattern":"all","from":"2026-11-25T00:00:00Z","to":"2026-11-25T01:00:00Z","window":"1m","group_by":["gps..zone"]}`, 400, []string{"group_by", "gps..zone"}},
		{"too many windows", "GET", "/api/v1/aggregate?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z&window=1s", "", 400, []string{"window", "86400 windows", "10000"}},
		{"no range", "GET", "/api/v1/aggregate?pattern=all&window=1m", "", 400, []string{"from", "required"}},
		{"unknown field", "POST", "/api/v1/aggregate", `{"pattern":"all","windw":"1m"}`, 400, []string{"body", "windw"}},
		{"a list as a string", "POST", "/api/v1/aggregate", `{"pattern":"all","from":"2026-11-25T00:00:00Z","to":"2026-11-25T01:00:00Z","window":"1m","group_by":"node"}`, 400, []string{"group_by"}},
		{"bad JSON", "POST", "/api/v1/aggregate", `{"pattern":`, 400, []string{"body"}},
		{"empty list item", "GET", "/api/v1/aggregate?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1m&group_by=node,,site", "", 400, []string{"group_by", "empty"}},
		{"unknown node", "GET", "/api/v1/aggregate?pattern=single(nobody)&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1m", "", 404, []string{"nobody"}},
		{"live with to", "GET", "/api/v1/aggregate/live?pattern=all&window=1m&to=2026-11-25T01:00:00Z", "", 400, []string{"to"}},
		{"live with a bad lateness", "GET", "/api/v1/aggregate/live?pattern=all&window=1m&lateness=soon", "", 400, []string{"lateness", "soon"}},
		{"live keeping too many windows", "GET", "/api/v1/aggregate/live?pattern=all&window=1s&lateness=2h", "", 400, []string{"lateness", "1000"}},
		{"live with a bad where", "GET", "/api/v1/aggregate/live?pattern=all&window=1m&where=" + url.QueryEscape("temp >"), "", 400, []string{"where"}},
		{"live of an unknown node", "GET", "/api/v1/aggregate/live?pattern=single(nobody)&window=1m", "", 404, []string{"nobody"}},
	}
	for _, b := range bad {
		req, _ := http.NewRequest(b.method, a.url+b.target, strings.NewReader(b.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != b.status {
			t.Errorf("%s: %d %s, want %d", b.name, res.StatusCode, msg, b.status)
			continue
		}
		for _, s := range b.says {
			if !strings.Contains(string(msg), s) {
				t.Errorf("%s: %s does not say %q", b.name, msg, s)
			}
		}
	}
}

// TestAggregateRoutesNeedATokens: with tokens set, each aggregate route is a
// 401 without one, and answers with one (the live route also as ?token=).
func TestAggregateRoutesNeedATokens(t *testing.T) {
	a := startAggHub(t, "secret")
	q := "?pattern=all&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1m"
	for _, tt := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{"GET", "/api/v1/aggregate" + q, nil, 401},
		{"POST", "/api/v1/aggregate", nil, 401},
		{"GET", "/api/v1/aggregate/live?pattern=all&window=1m", nil, 401},
		{"GET", "/api/v1/aggregate/live?pattern=all&window=1m&token=wrong", nil, 401},
		{"GET", "/api/v1/aggregate" + q, map[string]string{"Authorization": "Bearer secret"}, 200},
		{"GET", "/api/v1/aggregate/live?pattern=all&window=1m&to=x&token=secret", nil, 400},
	} {
		res, body := proctest.HTTP(t, tt.method, a.url+tt.path, tt.header)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, res.StatusCode, body, tt.want)
		}
	}
}

// TestAggregateLive: each window comes once it closes, marked not revised;
// a late event in it sends it again, revised, with the new count.
func TestAggregateLive(t *testing.T) {
	a := startAggHub(t)
	now := time.Now()
	a.publish(t, "a", []time.Time{now}, []float64{1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.url+"/api/v1/aggregate/live?pattern=all&window=1s&aggregates=count,sum(temp)&lateness=1m", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("live: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	windows := make(chan liveWindowJSON, 100)
	go readLiveWindows(t, res.Body, windows)
	// The first window closes within a second or two; then an event in a
	// window still open, which must come in that window once it closes.
	first := <-windows
	if first.Revised || first.End.Sub(first.Start) != time.Second {
		t.Fatalf("first window %+v", first)
	}
	at := time.Now()
	a.publish(t, "a", []time.Time{at, at}, []float64{2, 3})
	target := floorTime(at, time.Second)
	var sent liveWindowJSON
	for sent = range windows {
		if sent.Start.Equal(target) {
			break
		}
		if sent.Start.After(target) {
			t.Fatalf("window %v skipped: got %v", target, sent.Start)
		}
	}
	if sent.Revised || len(sent.Groups) != 1 || sent.Groups[0]["count"] != 2.0 || sent.Groups[0]["sum(temp)"] != 5.0 || !sent.Holds {
		t.Fatalf("window %v: %+v", target, sent)
	}
	// A late event in that window, which has closed.
	a.publish(t, "a", []time.Time{at}, []float64{10})
	for w := range windows {
		if !w.Start.Equal(target) {
			if w.Revised {
				t.Fatalf("revised %v, which had no late event: %+v", w.Start, w)
			}
			continue
		}
		if !w.Revised || w.Groups[0]["count"] != 3.0 || w.Groups[0]["sum(temp)"] != 15.0 {
			t.Fatalf("revision of %v: %+v", target, w)
		}
		return
	}
	t.Fatal("stream ended before the revision")
}

type liveWindowJSON struct {
	Start, End time.Time
	Holds      bool
	Certain    bool
	Revised    bool
	Groups     []map[string]any
}

func readLiveWindows(t *testing.T, body io.Reader, out chan<- liveWindowJSON) {
	defer close(out)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "event: error") {
			t.Errorf("live aggregate ended with an error")
			return
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var w liveWindowJSON
			if err := json.Unmarshal([]byte(data), &w); err != nil {
				t.Errorf("bad SSE data %q: %v", data, err)
				return
			}
			out <- w
		}
	}
}

// TestAggregatesShareTheQuerySlots: aggregates and pattern queries take the
// same slots, so that the hub runs at most QueryConcurrency of them at once
// and answers the next one 503 with Retry-After at once; a live aggregate
// with a costly where-expression takes a costly live slot.
func TestAggregatesShareTheQuerySlots(t *testing.T) {
	h := &blockingHub{started: make(chan string, 100), release: make(chan struct{}), live: hub.NewLive()}
	s := web.NewServer("127.0.0.1:0")
	Mount(s, h)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const span = "&from=2026-11-25T00:00:00Z&to=2026-11-25T01:00:00Z&window=1m"
	busy := func(path, words string) {
		t.Helper()
		res, body := proctest.HTTP(t, http.MethodGet, s.URL()+path, nil)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" || !strings.Contains(body, words) {
			t.Fatalf("GET %s: %d %s, want 503 with Retry-After saying %q", path, res.StatusCode, body, words)
		}
	}
	done := make(chan int, 100)
	// Half the slots to queries, half to aggregates: the next of either is refused.
	for i := range QueryConcurrency {
		path := "/api/v1/query?pattern=all"
		if i%2 == 1 {
			path = "/api/v1/aggregate?pattern=all" + span
		}
		go func() {
			res, _ := proctest.HTTP(t, http.MethodGet, s.URL()+path, nil)
			done <- res.StatusCode
		}()
	}
	for range QueryConcurrency {
		select {
		case <-h.started:
		case <-time.After(10 * time.Second):
			t.Fatal("a query or aggregate that should run did not start")
		}
	}
	busy("/api/v1/aggregate?pattern=all"+span, fmt.Sprintf("aggregate: %d queries run at once", QueryConcurrency))
	busy("/api/v1/query?pattern=all", fmt.Sprintf("query: %d queries run at once", QueryConcurrency))
	for range QueryConcurrency {
		h.release <- struct{}{}
		if c := <-done; c != http.StatusOK {
			t.Fatalf("a query or aggregate let go answered %d", c)
		}
	}
	// A costly live aggregate holds its slot while it streams.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := "/api/v1/aggregate/live?pattern=all&window=1m&where=" + url.QueryEscape(costlyWhere)
	for range CostlyLiveQueryLimit {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+live, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("costly live aggregate: %v %v", resp, err)
		}
		defer resp.Body.Close()
	}
	busy(live, fmt.Sprintf("live: %d live queries with a costly where-expression", CostlyLiveQueryLimit))
}

// TestAggregateLiveFrom: with from, the windows already closed since then
// come at once, in order, not revised, from the window that holds from.
func TestAggregateLiveFrom(t *testing.T) {
	a := startAggHub(t)
	now := time.Now()
	a.publish(t, "a", []time.Time{now.Add(-4 * time.Second), now.Add(-3 * time.Second)}, []float64{1, 2})
	from := now.Add(-5500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := url.Values{"pattern": {"single(a)"}, "window": {"1s"}, "from": {from.UTC().Format(time.RFC3339Nano)}}
	req, _ := http.NewRequestWithContext(ctx, "GET", a.url+"/api/v1/aggregate/live?"+q.Encode(), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	windows := make(chan liveWindowJSON, 100)
	go readLiveWindows(t, res.Body, windows)
	want := floorTime(from, time.Second)
	counted := 0.0
	for range 5 {
		w := <-windows
		if !w.Start.Equal(want) || w.Revised {
			t.Fatalf("window %+v, want the one at %v, not revised", w, want)
		}
		for _, g := range w.Groups {
			counted += g["count"].(float64)
		}
		want = want.Add(time.Second)
	}
	if counted != 2 {
		t.Fatalf("the first five windows count %v events, want the 2 published", counted)
	}
}
