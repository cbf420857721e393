package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/hub"
	"github.com/tributary-edge/tributary/internal/proctest"
)

// mountTmpfs mounts a tmpfs of size MiB at a fresh directory until the test
// ends. Where mounting is not allowed it skips, saying so; in CI it must run.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs here (%v: %s); the disk-full test needs one", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file of n bytes of zeros at path.
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return // the disk is full: as full as it gets
		}
		n -= k
	}
}

// incompressible returns n events that zstd cannot shrink much.
func incompressible(start, n int) []map[string]any {
	evs := make([]map[string]any, n)
	b := make([]byte, 120)
	for i := range evs {
		rand.Read(b)
		evs[i] = map[string]any{"i": start + i, "pad": hex.EncodeToString(b)}
	}
	return evs
}

// TestHubDiskFull fills the disk of a hub's JetStream store, first slowly and
// then at once from outside: the hub says so in its log, /healthz and
// /metrics, edges get fast refusals instead of waiting for acks that never
// come, and once space frees the hub recovers by itself and every event
// arrives exactly once.
func TestHubDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 120)
	fill(t, filepath.Join(mnt, "filler"), 70<<20)
	h := &hubProc{dir: filepath.Join(mnt, "hub")}
	h.httpPort, h.nats = proctest.FreePort(t), proctest.FreePort(t)
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "1GiB", "--store-reserve", "16MiB")
	h.waitReady()
	// The guard's ballast: a quarter of the reserve, deleted when the disk
	// has no room left for capping the stream.
	ballast := filepath.Join(h.dir, hub.BallastFile)
	hasBallast := func() bool {
		st, err := os.Stat(ballast)
		return err == nil && st.Size() == 4<<20
	}
	if !hasBallast() {
		t.Fatalf("the hub made no ballast of 4 MiB at %s", ballast)
	}
	e := startEdge(t, "full-a", t.TempDir(), h.natsURL())

	sent := 0
	ingest := func(n int) {
		for k := 0; k < n; k += 1000 {
			if _, ok := e.ingest("s", incompressible(sent, 1000)); !ok {
				t.Fatalf("the edge refused an ingest at %d", sent)
			}
			sent += 1000
		}
	}
	// About 40 MiB of batches for about 34 MiB of room above the reserve.
	ingest(140000)
	waitFor(t, "the hub to say its store is full", 60*time.Second, func() bool {
		code, body := httpGet(t, h.url()+"/healthz")
		return code == 503 && strings.Contains(string(body), "store full")
	})
	if !strings.Contains(h.out.String(), "hub store full") {
		t.Fatalf("the hub logged nothing about its full store")
	}
	_, metrics := httpGet(t, h.url()+"/metrics")
	if !strings.Contains(string(metrics), "tributary_hub_store_full 1") {
		t.Fatalf("metrics do not show the full store")
	}
	// Refused, not left waiting: the edge hears a refusal well within its
	// 10 s ack timeout, and keeps its backlog.
	ingest(5000)
	waitFor(t, "the edge to be refused", 30*time.Second, func() bool {
		return strings.Contains(e.out.String(), "maximum bytes exceeded")
	})
	if e.status(t).Buffered == 0 {
		t.Fatal("the edge holds no backlog although the hub refused batches")
	}

	// Space frees: the hub takes batches again by itself.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hub to accept batches again", 60*time.Second, func() bool {
		code, _ := httpGet(t, h.url()+"/healthz")
		return code == 200
	})
	waitFor(t, "the backlog to drain", 120*time.Second, func() bool { return e.status(t).Buffered == 0 })

	// Now the disk fills at once, from outside, while batches are sent: no
	// room is left even for capping the stream, so the hub deletes its
	// ballast to cap it, and the edge is refused again instead of waiting.
	refused := strings.Count(e.out.String(), "maximum bytes exceeded")
	ingest(20000)
	fill(t, filepath.Join(mnt, "filler2"), 200<<20)
	ingest(20000)
	waitFor(t, "the hub to say its store is full again", 60*time.Second, func() bool {
		code, _ := httpGet(t, h.url()+"/healthz")
		return code == 503
	})
	waitFor(t, "the edge to be refused at a disk with no room", 30*time.Second, func() bool {
		return strings.Count(e.out.String(), "maximum bytes exceeded") > refused
	})
	if hasBallast() || !strings.Contains(h.out.String(), "deleted the store's ballast") {
		t.Fatal("the hub capped the stream at a full disk without deleting its ballast")
	}
	if err := os.Remove(filepath.Join(mnt, "filler2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event at the hub", 180*time.Second, func() bool {
		return e.status(t).Buffered == 0 && h.count(t, map[string]string{"pattern": "single(full-a)"}) == int64(sent)
	})
	waitFor(t, "the ballast to be made again", 30*time.Second, hasBallast)
	if strings.Contains(h.out.String(), "stopped writing") {
		t.Log("the stream met the full disk itself and JetStream was restarted")
	}
	var page nodePage
	getJSON(t, h.url()+"/api/v1/nodes", &page)
	if page.Totals.Events != int64(sent) || page.Totals.Missing != 0 {
		t.Fatalf("after recovery: totals %+v, sent %d", page.Totals, sent)
	}
}
