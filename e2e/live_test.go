package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// TestLiveQueryOverSSE subscribes to a live query and checks that matching
// events arrive as server-sent events, and non-matching ones do not.
func TestLiveQueryOverSSE(t *testing.T) {
	h := startHub(t, t.TempDir())
	e := startEdge(t, "live-1", t.TempDir(), h.natsURL())
	if r, ok := e.ingest("s", []map[string]any{{"warm": 1}}); !ok || r.Accepted != 1 {
		t.Fatal("first ingest")
	}
	waitFor(t, "the node to be known", 30*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "single(live-1)"}) == 1
	})

	if code, body := httpGet(t, h.url()+"/api/v1/query/live?pattern=single(nobody)"); code != 404 || !strings.Contains(string(body), "nobody") {
		t.Fatalf("live query of an unknown node: %d %s", code, body)
	}
	if code, body := httpGet(t, h.url()+"/api/v1/query/live?pattern=all&where="+url.QueryEscape("temp >")); code != 400 || !strings.Contains(string(body), "where") {
		t.Fatalf("live query with a bad predicate: %d %s", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url()+"/api/v1/query/live?pattern=single(live-1)&where="+url.QueryEscape("temp > 30"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan stream.Event, 100)
	type completeness struct {
		Nodes, Complete int
		Incomplete      map[string]json.RawMessage
	}
	compl := make(chan completeness, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		kind := ""
		for sc.Scan() {
			line := sc.Text()
			if k, ok := strings.CutPrefix(line, "event: "); ok {
				kind = k
				continue
			}
			if line == "" {
				kind = ""
				continue
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok && kind == "completeness" {
				var c completeness
				if err := json.Unmarshal([]byte(data), &c); err != nil {
					t.Errorf("bad completeness event %q: %v", data, err)
					return
				}
				select {
				case compl <- c:
				default:
				}
				continue
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var ev stream.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Errorf("bad SSE data %q: %v", data, err)
					return
				}
				events <- ev
			}
		}
	}()
	// The subscription starts when the handler runs; keep sending until the
	// first match arrives, then check that only matches come through.
	var first stream.Event
	deadline := time.After(30 * time.Second)
	for sent := 0; first.Node == ""; sent++ {
		e.ingest("s", []map[string]any{{"temp": 10, "n": sent}, {"temp": 35, "n": sent}})
		select {
		case ev := <-events:
			first = ev
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("no live event within 30 s")
		}
	}
	for i := 0; i < 5; i++ {
		r, ok := e.ingest("s", []map[string]any{{"temp": 20, "i": i}, {"temp": 31, "i": i}})
		if !ok {
			t.Fatal("ingest")
		}
		sentAt := time.Now()
		select {
		case ev := <-events:
			var d struct {
				Temp float64 `json:"temp"`
			}
			json.Unmarshal(ev.Data, &d)
			if d.Temp <= 30 || ev.Node != "live-1" {
				t.Fatalf("live event that does not match: %s %s", ev.Node, ev.Data)
			}
			if ev.Seq != r.LastSeq {
				t.Fatalf("live event seq %d, want %d (the matching one of the pair)", ev.Seq, r.LastSeq)
			}
			t.Logf("live match %d arrived %v after the ingest answer", i, time.Since(sentAt).Round(time.Millisecond))
		case <-time.After(20 * time.Second):
			t.Fatalf("live match %d did not arrive", i)
		}
	}
	// The stream says how complete the hub's data of its scope is.
	select {
	case c := <-compl:
		if c.Nodes != 1 || c.Complete+len(c.Incomplete) != 1 {
			t.Errorf("completeness event %+v, want one node in scope, complete or listed", c)
		}
	case <-time.After(20 * time.Second):
		t.Error("no completeness event on the live stream")
	}
	_ = fmt.Sprint
}
