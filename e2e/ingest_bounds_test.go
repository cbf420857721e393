package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// The ingest bounds tests send an edge agent bodies that are valid JSON but
// that the platform cannot hold faithfully, and check that each is refused
// with a status and a message that says what and where, and stores nothing.

// TestIngestRefusesTimesOutsideNanoseconds: an RFC 3339 ts outside the years
// int64 Unix nanoseconds hold used to wrap silently (9999-12-31 was stored as
// 1816-03-30). It is a 400 naming the field and the range; the last and first
// years that fit arrive at the hub unchanged.
func TestIngestRefusesTimesOutsideNanoseconds(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub"))
	e := startEdge(t, "times", filepath.Join(t.TempDir(), "edge"), h.natsURL())

	for _, ts := range []string{"9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "1677-01-01T00:00:00Z"} {
		body := fmt.Sprintf(`{"n":0}`+"\n"+`{"ts":%q,"n":1}`+"\n", ts)
		code, reply := limPost(t, e, "times", []byte(body))
		expectError(t, "ts "+ts, code, reply, http.StatusBadRequest, "invalid",
			"event 2 (line 2)", fmt.Sprintf("ts %q is outside the years 1678 to 2261", ts))
	}
	if st := e.status(t); st.LastSeq != 0 {
		t.Fatalf("refused bodies stored events: last_seq %d", st.LastSeq)
	}

	code, reply := limPost(t, e, "times", []byte(`{"ts":"2261-12-31T23:59:59.5Z","n":2}`+"\n"+`{"ts":"1678-01-01T00:00:00Z","n":3}`+"\n"))
	if code != http.StatusAccepted {
		t.Fatalf("the first and last years that fit: %d %s", code, reply)
	}
	var got []stream.Event
	waitFor(t, "both events at the hub", 30*time.Second, func() bool {
		if h.count(t, map[string]string{"pattern": "single(times)"}) != 2 {
			return false
		}
		got = h.all(t, map[string]string{"pattern": "single(times)"})
		return true
	})
	want := []string{"1678-01-01T00:00:00Z", "2261-12-31T23:59:59.5Z"} // merge order is by ts
	for i, ev := range got {
		if s := stream.FormatTime(ev.TS); s != want[i] {
			t.Errorf("event %d (%s) has ts %s at the hub, want %s", i, ev.Data, s, want[i])
		}
	}
}

// TestIngestRefusesNumbersOutsideFloat64: 1e400 used to be stored and served
// verbatim, and a Go client could not decode the page that held it. It is a
// 400 naming the event, the line and the number; the largest float64 and a
// number that rounds to zero are kept and decode at the hub.
func TestIngestRefusesNumbersOutsideFloat64(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub"))
	e := startEdge(t, "numbers", filepath.Join(t.TempDir(), "edge"), h.natsURL())

	for _, c := range []struct{ body, words string }{
		{`{"x":1e400}`, "event 1 (line 1): the number 1e400 is outside the range of a 64-bit float"},
		{"{\"ok\":1}\n{\"deep\":{\"list\":[1,-2e308]}}\n", "event 2 (line 2): the number -2e308 is outside"},
		{"\n\n{\"n\":1" + strings.Repeat("0", 320) + "}", "event 1 (line 3): the number 10000000000"},
	} {
		code, reply := limPost(t, e, "numbers", []byte(c.body))
		expectError(t, c.body, code, reply, http.StatusBadRequest, "invalid", c.words)
	}
	if st := e.status(t); st.LastSeq != 0 {
		t.Fatalf("refused bodies stored events: last_seq %d", st.LastSeq)
	}

	code, reply := limPost(t, e, "numbers", []byte(`{"max":1.7976931348623157e308,"tiny":1e-400,"s":"1e400"}`))
	if code != http.StatusAccepted {
		t.Fatalf("numbers within float64: %d %s", code, reply)
	}
	waitFor(t, "the event at the hub", 30*time.Second, func() bool {
		return h.count(t, map[string]string{"pattern": "single(numbers)"}) == 1
	})
	_, page := httpGet(t, h.url()+"/api/v1/query?pattern=single(numbers)")
	var res struct {
		Matches []struct{ Data map[string]any }
	}
	if err := json.Unmarshal(page, &res); err != nil {
		t.Fatalf("a Go client cannot decode the page: %v\n%s", err, page)
	}
	if d := res.Matches[0].Data; d["max"] != math.MaxFloat64 || d["tiny"] != 0.0 || d["s"] != "1e400" {
		t.Fatalf("data at the hub: %v", d)
	}
}

// ingestMemoryBound is the most memory (VmHWM) an edge agent may reach while
// it takes 16 MiB bodies, the default body limit. Measured on a 2-core
// machine: 42 MiB for a body of 5.5 million {} (refused), 64 to 77 MiB for one
// of 100,000 events of 160 bytes (accepted), from 22 MiB at rest; before the
// bound the first took 724 MiB. The margin is for other machines' collectors.
const ingestMemoryBound = 128 << 20

// TestIngestMemoryIsBoundedByTheBody: a body of tiny events made the agent's
// memory grow with the number of events (724 MiB for 5.5 million {} in 16
// MiB) and then answer 503 "buffer full", which no retry could cure. A body
// over the events cap is a 413 naming it, a full-size body of real events is
// taken, and the agent's peak memory stays under a bound all the while.
func TestIngestMemoryIsBoundedByTheBody(t *testing.T) {
	e := startEdge(t, "memory", filepath.Join(t.TempDir(), "edge"), "nats://127.0.0.1:1")
	pid := e.cmd.Process.Pid
	checkPeak := func(what string) {
		t.Helper()
		_, hwm := procMem(pid)
		if hwm == 0 || hwm > ingestMemoryBound {
			t.Fatalf("after %s the agent's peak memory is %d MiB, over the bound of %d MiB (%s)", what, hwm>>20, ingestMemoryBound>>20, procRSSParts(pid))
		}
		t.Logf("after %s: peak %.1f MiB", what, float64(hwm)/(1<<20))
	}
	tiny := []byte(strings.Repeat("{}\n", (16<<20)/3))
	code, reply := limPost(t, e, "tiny", tiny)
	expectError(t, "16 MiB of {}", code, reply, http.StatusRequestEntityTooLarge, "too_large",
		"event 100001 (line 100001) is one more than the 100000 events one request may hold")
	checkPeak("16 MiB of {}")
	code, reply = limPost(t, e, "tiny", tiny[:3_000_000])
	expectError(t, "a million {}", code, reply, http.StatusRequestEntityTooLarge, "too_large", "100000 events")
	checkPeak("a million {} after 16 MiB of them")

	var full bytes.Buffer
	pad := strings.Repeat("x", 140)
	for i := range 100_000 {
		fmt.Fprintf(&full, `{"i":%d,"p":%q}`+"\n", i, pad)
	}
	code, reply = limPost(t, e, "full", full.Bytes())
	if code != http.StatusAccepted || !strings.Contains(string(reply), `"accepted":100000`) {
		t.Fatalf("%d bytes of 100,000 events: %d %s", full.Len(), code, reply)
	}
	checkPeak(fmt.Sprintf("%d MiB of 100,000 events", full.Len()>>20))
	if st := e.status(t); st.LastSeq != 100_000 {
		t.Fatalf("last_seq %d after the refused and the accepted bodies, want 100000", st.LastSeq)
	}

	// What can never fit in the buffer, even empty, is a 413 too: a 503
	// invites a retry that cannot succeed.
	small := startEdge(t, "small", filepath.Join(t.TempDir(), "small"), "nats://127.0.0.1:1", "--buffer-max-bytes", "10MiB")
	code, reply = limPost(t, small, "s", limBody(0, 2000)) // 2 MB
	expectError(t, "2 MB into a 10 MiB buffer", code, reply, http.StatusRequestEntityTooLarge, "too_large",
		"more than one append may store in a 10485760 byte buffer")
	if code, reply = limPost(t, small, "s", limBody(0, 500)); code != http.StatusAccepted {
		t.Fatalf("500 KB into a 10 MiB buffer: %d %s", code, reply)
	}
}
