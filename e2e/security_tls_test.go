package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/internal/proctest"
	"github.com/tributary-edge/tributary/internal/tlstest"
	"github.com/tributary-edge/tributary/stream"
)

// TestTLSRefusesWhatItCannotVerify runs a hub that serves TLS and requires
// client certificates of the fleet's CA (mTLS): an edge with the right CA and
// its own certificate delivers; an edge that trusts another CA, and one whose
// client certificate another CA signed, are refused, counted, and deliver
// nothing.
func TestTLSRefusesWhatItCannotVerify(t *testing.T) {
	certs := t.TempDir()
	ca := tlstest.NewCA(t, certs, "fleet-ca")
	other := tlstest.NewCA(t, certs, "other-ca")
	hubCert, hubKey := ca.Issue(t, "hub", "127.0.0.1")
	goodCert, goodKey := ca.Issue(t, "good", "good")
	strangerCert, strangerKey := other.Issue(t, "stranger", "stranger")
	trustCA(t, ca.Pool)
	h := startHub(t, t.TempDir(), "--tls-cert", hubCert, "--tls-key", hubKey, "--tls-client-ca", ca.File)

	good := startEdge(t, "good", t.TempDir(), h.natsURL(), "--tls-ca", ca.File, "--tls-cert", goodCert, "--tls-key", goodKey)
	if _, ok := good.ingest("s", events(0, 10)); !ok {
		t.Fatal("ingest")
	}
	count := func(node string) int64 { return h.count(t, map[string]string{"pattern": "single(" + node + ")"}) }
	waitFor(t, "the verified edge's events", 60*time.Second, func() bool { return count("good") == 10 })

	tlsFailures := func() float64 { return hubMetric(t, h, `tributary_hub_auth_failures_total{reason="tls"}`) }
	for _, tt := range []struct {
		node string
		args []string
	}{
		{"trusts-another-ca", []string{"--tls-ca", other.File, "--tls-cert", goodCert, "--tls-key", goodKey}},
		{"cert-of-another-ca", []string{"--tls-ca", ca.File, "--tls-cert", strangerCert, "--tls-key", strangerKey}},
		{"no-client-cert", []string{"--tls-ca", ca.File}},
	} {
		before := tlsFailures()
		e := startEdge(t, tt.node, t.TempDir(), h.natsURL(), tt.args...)
		if _, ok := e.ingest("s", events(0, 5)); !ok {
			t.Fatalf("%s: ingest", tt.node)
		}
		waitFor(t, tt.node+": the refused handshake counted", 30*time.Second, func() bool { return tlsFailures() > before })
		if st := e.status(t); st.HubConnected || st.Buffered != 5 {
			t.Errorf("%s: %+v, want disconnected with its 5 events buffered", tt.node, st)
		}
		if n := count(tt.node); n > 0 {
			t.Errorf("%s: %d events at the hub", tt.node, n)
		}
		e.kill()
	}
	// A plain-text client is refused too.
	if nc, err := nats.Connect(h.natsURL(), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Error("a client without TLS connected")
	}
}

// TestExposedHubRefusesToStartUnprotected: off loopback, a hub with --auth
// none or with no API token exits with status 2 and names the fix; with the
// protections, or with --insecure (logged loudly), it starts.
func TestExposedHubRefusesToStartUnprotected(t *testing.T) {
	exposed := func() string { return fmt.Sprintf("0.0.0.0:%d", proctest.FreePort(t)) }
	local := func() string { return fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t)) }
	for _, tt := range []struct {
		name  string
		args  []string
		words []string
	}{
		{"NATS exposed with --auth none", []string{"--nats", exposed(), "--http", local(), "--auth", "none"}, []string{"--auth creds", "--insecure", "not loopback"}},
		{"HTTP exposed with no token", []string{"--nats", local(), "--http", exposed()}, []string{"--api-token", "--insecure"}},
	} {
		code, _, stderr := runHubCLI(t, append(tt.args, "--data", t.TempDir())...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr %q", tt.name, code, stderr)
		}
		for _, w := range tt.words {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not name %q", tt.name, stderr, w)
			}
		}
	}

	// Exposed NATS with the default: credentials are on, so a client with
	// none is refused.
	nats1 := proctest.FreePort(t)
	h := &hubProc{dir: t.TempDir(), httpPort: proctest.FreePort(t), nats: nats1}
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("127.0.0.1:%d", h.httpPort),
		"--nats", fmt.Sprintf("0.0.0.0:%d", nats1), "--max-store", "1GiB")
	h.waitReady()
	if nc, err := nats.Connect(h.natsURL(), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Error("an exposed hub with the default --auth let a client without a credential in")
	}
	h.kill()

	// --insecure starts, and says so.
	h = &hubProc{dir: t.TempDir(), httpPort: proctest.FreePort(t), nats: proctest.FreePort(t)}
	h.proc = startProc(t, "hub", "hub", "--data", h.dir, "--http", fmt.Sprintf("0.0.0.0:%d", h.httpPort),
		"--nats", fmt.Sprintf("127.0.0.1:%d", h.nats), "--max-store", "1GiB", "--insecure")
	h.waitReady()
	if !strings.Contains(h.out.String(), "INSECURE") {
		t.Errorf("--insecure did not warn: %s", h.out.String())
	}
}

// TestHubHealsDeletedStreamBucketAndConsumer deletes, with a client of an
// unauthenticated loopback hub, the EDGE stream with its consumer, then the
// COUNTERS bucket, then the materializer's consumer alone: each time the hub
// makes it again within 10 s and logs it, and the edge's new events and
// counter increments arrive without anyone restarting anything.
func TestHubHealsDeletedStreamBucketAndConsumer(t *testing.T) {
	h := startHub(t, t.TempDir())
	e := startEdge(t, "heal", t.TempDir(), h.natsURL())
	next := 0
	send := func(n int) {
		t.Helper()
		if _, ok := e.ingest("s", events(next, n)); !ok {
			t.Fatal("ingest")
		}
		next += n
	}
	count := func() int64 { return h.count(t, map[string]string{"pattern": "single(heal)", "stream": "s"}) }
	incr := func(d int) {
		t.Helper()
		if code, body := postJSON(t, e.url()+"/api/v1/counters/doors", map[string]any{"delta": d}); code != 200 {
			t.Fatalf("incr: %d %s", code, body)
		}
	}
	counter := func() int64 {
		var c struct {
			Value int64 `json:"value"`
		}
		if !tryGetJSON(h.url()+"/api/v1/counters/doors", &c) {
			return -1
		}
		return c.Value
	}
	send(10)
	incr(5)
	waitFor(t, "the first events and increment", 60*time.Second, func() bool { return count() == 10 && counter() == 5 })

	nc, err := nats.Connect(h.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	healed := func(what string, mark string, cond func() bool) {
		t.Helper()
		start := time.Now()
		waitFor(t, what+" made again", 10*time.Second, cond)
		waitFor(t, "the hub's error about "+what, 10*time.Second, func() bool { return strings.Contains(h.out.String(), mark) })
		t.Logf("%s made again after %v", what, time.Since(start).Round(100*time.Millisecond))
	}

	if err := js.DeleteStream(ctx, stream.JetStreamName); err != nil {
		t.Fatal(err)
	}
	healed("the EDGE stream", "the EDGE stream is gone", func() bool { _, err := js.Stream(ctx, stream.JetStreamName); return err == nil })
	send(10)
	waitFor(t, "events sent after the stream came back", 60*time.Second, func() bool { return count() == 20 })

	if err := js.DeleteKeyValue(ctx, stream.CountersBucket); err != nil {
		t.Fatal(err)
	}
	healed("the COUNTERS bucket", stream.CountersBucket, func() bool { _, err := js.KeyValue(ctx, stream.CountersBucket); return err == nil })
	incr(3)
	waitFor(t, "the counter with the increment after the bucket came back", 60*time.Second, func() bool { return counter() == 8 })

	s, err := js.Stream(ctx, stream.JetStreamName)
	if err != nil {
		t.Fatal(err)
	}
	names := s.ConsumerNames(ctx)
	var consumers []string
	for n := range names.Name() {
		consumers = append(consumers, n)
	}
	if len(consumers) == 0 {
		t.Fatal("no consumer on EDGE")
	}
	for _, c := range consumers {
		if err := s.DeleteConsumer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	healed("the materializer's consumer", "consumer", func() bool { _, err := s.Consumer(ctx, consumers[0]); return err == nil })
	send(10)
	waitFor(t, "events sent after the consumer came back", 60*time.Second, func() bool { return count() == 30 })
	if st := e.status(t); st.Buffered != 0 || st.LastSeq != 30 {
		t.Errorf("edge %+v, want everything delivered", st)
	}
	if code, _ := httpGet(t, h.url()+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d after healing", code)
	}
}
