package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/internal/proctest"
)

// TestHubRefusesATakenDirectoryOrPort: a second hub on the same --data used to
// wait 30 s and fail with "not ready after 30s". A hub whose directory another
// hub holds, or whose port is taken, exits with status 1 and says which, and
// the running hub is left alone; the directory is free again once its hub is
// gone, even by SIGKILL.
func TestHubRefusesATakenDirectoryOrPort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hub")
	first := startHub(t, dir)

	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	free := func() string { return addr(proctest.FreePort(t)) }
	for _, c := range []struct {
		name, data, http, nats string
		says                   []string
	}{
		{"same data directory", dir, free(), free(),
			[]string{dir + " is in use by another hub", filepath.Join(dir, "hub.lock")}},
		{"same NATS port", filepath.Join(t.TempDir(), "b"), free(), addr(first.nats),
			[]string{"--nats " + addr(first.nats) + ": address in use"}},
		{"same HTTP port", filepath.Join(t.TempDir(), "c"), addr(first.httpPort), free(),
			[]string{"--http " + addr(first.httpPort) + ": address in use"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			p := startProc(t, "second hub", "hub", "--data", c.data, "--http", c.http, "--nats", c.nats, "--max-store", "1GiB")
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the second hub still runs after 60s:\n%s", p.out.String())
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, s := range c.says {
				if !strings.Contains(p.out.String(), s) {
					t.Errorf("the second hub does not say %q:\n%s", s, p.out.String())
				}
			}
			t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
		})
	}
	if code, body := httpGet(t, first.url()+"/healthz"); code != http.StatusOK {
		t.Fatalf("the first hub after the refusals: %d %s", code, body)
	}

	first.kill()
	again := startHub(t, dir)
	if code, _ := httpGet(t, again.url()+"/healthz"); code != http.StatusOK {
		t.Fatal("a hub on the directory of a killed one is not ready")
	}
}
