package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestErrorsAndLogsSayWhatHappened covers the small things of issue 11, item 9,
// on real processes: a bad name's message shows the character (not a byte of
// it), a 405 is "invalid" and names the method, a client that goes away during
// a query is not logged as an internal error, and no JSON log line of either
// binary carries a key twice.
func TestErrorsAndLogsSayWhatHappened(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub"), "--log-level", "debug")
	e := startEdge(t, "errs", filepath.Join(t.TempDir(), "edge"), h.natsURL(), "--log-level", "debug")

	t.Run("a name's bad character as written", func(t *testing.T) {
		code, reply := limPost(t, e, url.QueryEscape("été"), []byte(`{}`))
		expectError(t, "stream été", code, reply, http.StatusBadRequest, "invalid", `stream name "été" has 'é' at position 1`)
		code, reply = httpGet(t, h.url()+"/api/v1/nodes/"+url.PathEscape("nœud")+"/gaps")
		expectError(t, "node nœud", code, reply, http.StatusBadRequest, "invalid", `node name "nœud" has 'œ' at position 2`)
	})

	t.Run("405 is invalid and names the method", func(t *testing.T) {
		for _, c := range []struct{ method, url, allow string }{
			{"DELETE", h.url() + "/api/v1/nodes", "GET"},
			{"PUT", h.url() + "/api/v1/query", "GET"},
			{"GET", e.url() + "/api/v1/events", "POST"},
		} {
			req, _ := http.NewRequest(c.method, c.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			path := strings.TrimPrefix(c.url, c.url[:strings.Index(c.url, "/api")])
			expectError(t, c.method+" "+path, resp.StatusCode, body, http.StatusMethodNotAllowed, "invalid",
				fmt.Sprintf("method %s is not allowed on %s; use %s", c.method, path, c.allow))
		}
		code, body := httpGet(t, h.url()+"/api/v1/nothing-here")
		expectError(t, "unknown path", code, body, http.StatusNotFound, "not_found")
	})

	t.Run("a client that goes away is not an internal error", func(t *testing.T) {
		// Enough events that the query below is still running when its
		// client has gone.
		var body bytes.Buffer
		for i := range 100_000 {
			fmt.Fprintf(&body, `{"x":%d}`+"\n", i)
		}
		if code, reply := limPost(t, e, "many", body.Bytes()); code != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", code, reply)
		}
		waitFor(t, "the events at the hub", 60*time.Second, func() bool {
			return h.count(t, map[string]string{"pattern": "single(errs)", "stream": "many"}) == 100_000
		})
		q := url.Values{"pattern": {"all"}, "count": {"true"}, "where": {"x >= 0 && all(1..50, # > 0)"}}
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h.httpPort))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /api/v1/query?%s HTTP/1.1\r\nHost: hub\r\n\r\n", q.Encode())
		conn.Close()
		waitFor(t, "the hub to notice the client went away", 60*time.Second, func() bool {
			if strings.Contains(h.out.String(), `"internal error"`) {
				t.Fatalf("a cancelled query was logged as an internal error:\n%s", tail(h.out.String(), 2000))
			}
			return hasLogLine(h.out.String(), `"path":"/api/v1/query"`, `"message":"client went away"`)
		})
	})

	t.Run("no log line carries a key twice", func(t *testing.T) {
		// A garbage message on an edge subject makes the materializer log.
		nc, err := nats.Connect(h.natsURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, "edge.garbage.s", []byte("not a frame")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the materializer to log the rejected message", 30*time.Second, func() bool {
			return strings.Contains(h.out.String(), `"component":"materializer"`)
		})
		seen := map[string]bool{}
		for _, p := range []*proc{h.proc, e.proc} {
			for _, line := range strings.Split(p.out.String(), "\n") {
				if !strings.HasPrefix(line, "{") {
					continue
				}
				keys, err := topLevelKeys(line)
				if err != nil {
					t.Fatalf("%s logged a line that is not JSON: %v\n%s", p.name, err, line)
				}
				count := map[string]int{}
				for _, k := range keys {
					if count[k]++; count[k] == 2 {
						t.Errorf("%s logged %q twice: %s", p.name, k, line)
					}
				}
				var l struct{ Component string }
				json.Unmarshal([]byte(line), &l)
				seen[p.name+"/"+l.Component] = true
			}
		}
		for _, want := range []string{"hub/hub", "hub/materializer", "hub/http", "edge errs/buffer", "edge errs/forwarder"} {
			if !seen[want] {
				t.Errorf("no log line of %s; saw %v", want, seen)
			}
		}
	})
}

// topLevelKeys returns the keys of a JSON object in the order written,
// repeats included (encoding/json would keep only the last).
func topLevelKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// hasLogLine reports whether one line of out holds every one of parts.
func hasLogLine(out string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
