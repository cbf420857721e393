package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// TestDamagedEdgeBufferLosesOnlyTheDamagedEvents flips bytes inside the stored
// events of a stopped agent's buffer file, as a failing SD card would where
// SQLite's own checks do not look, and starts it against a hub: the damaged
// events, and only they, are reported dropped as corrupt-buffer and counted at
// the hub; every other event arrives as it was ingested; and nothing the hub
// serves is invalid UTF-8 or JSON.
func TestDamagedEdgeBufferLosesOnlyTheDamagedEvents(t *testing.T) {
	natsPort := proctest.FreePort(t)
	dir := t.TempDir()
	e := startEdge(t, "damaged", dir, fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	const n = 20000
	want := map[int]string{}
	for i := 0; i < n; i += 1000 {
		batch := make([]map[string]any, 1000)
		for j := range batch {
			batch[j] = map[string]any{"i": i + j, "text": strings.Repeat(fmt.Sprintf("été-%d ", i+j), 12)}
			b, _ := json.Marshal(batch[j])
			want[i+j] = string(b)
		}
		if _, ok := e.ingest("d", batch); !ok {
			t.Fatal("ingest refused")
		}
	}
	e.stop()
	path := filepath.Join(dir, "buffer.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every 97th event: two bytes of its text, which leaves it no longer UTF-8.
	damaged := 0
	for i := 0; i < n; i += 97 {
		marker := []byte(fmt.Sprintf("été-%d ", i))
		at := bytes.Index(raw, marker)
		if at < 0 {
			t.Fatalf("event %d is not in the file", i)
		}
		raw[at+1] ^= 0x5a
		raw[at+2] ^= 0x5a
		damaged++
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	h := &hubProc{dir: t.TempDir(), httpPort: proctest.FreePort(t), nats: natsPort}
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "1GiB")
	h.waitReady()
	e.start()
	e.waitReady()
	if st := e.status(t); st.LastSeq != n {
		t.Fatalf("the agent did not keep its buffer (last_seq %d): SQLite saw the damage", st.LastSeq)
	}
	waitFor(t, "the backlog to drain", 90*time.Second, func() bool {
		s := e.status(t)
		return s.Buffered == 0 && s.AckedSeq == n
	})
	dropped := int(e.status(t).Dropped)
	if dropped != damaged {
		t.Fatalf("the agent dropped %d events, %d were damaged", dropped, damaged)
	}

	// Every page the hub serves is valid JSON in valid UTF-8.
	got := map[int]string{}
	p := url.Values{"pattern": {"single(damaged)"}, "limit": {"2000"}}
	for {
		code, body := httpGet(t, h.url()+"/api/v1/query?"+p.Encode())
		if code != 200 || !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("query page: %d, valid UTF-8 %v, valid JSON %v", code, utf8.Valid(body), json.Valid(body))
		}
		var r queryResult
		json.Unmarshal(body, &r)
		for _, ev := range r.Matches {
			var d struct{ I int }
			json.Unmarshal(ev.Data, &d)
			got[d.I] = string(ev.Data)
		}
		if r.Next == "" {
			break
		}
		p.Set("after", r.Next)
	}
	for i, data := range got {
		if want[i] != data {
			t.Fatalf("event %d arrived altered: %.80s", i, data)
		}
	}
	if len(got)+dropped != n {
		t.Fatalf("%d events arrived and %d were dropped, of %d", len(got), dropped, n)
	}
	// The hub accounts for the loss exactly, as corrupt-buffer gaps.
	var gaps struct {
		Gaps []struct {
			Count  int    `json:"count"`
			Reason string `json:"reason"`
		} `json:"gaps"`
	}
	waitFor(t, "the drops to reach the hub", 30*time.Second, func() bool {
		getJSON(t, h.url()+"/api/v1/nodes/damaged/gaps", &gaps)
		// Until the drop reports arrive, the seqs after them show as missing.
		sum := 0
		for _, g := range gaps.Gaps {
			if g.Reason != "corrupt-buffer" {
				return false
			}
			sum += g.Count
		}
		return sum == dropped
	})
}
