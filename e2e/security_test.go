package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/stream"
)

func events(from, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"id": fmt.Sprintf("e%d", from+i), "v": from + i}
	}
	return out
}

// frame is a valid events frame of one event that claims to come from node.
func frame(t *testing.T, node string, seq uint64) []byte {
	t.Helper()
	b, err := stream.EncodeEvents(nil, node, "forged-epoch", "s", []stream.Record{{Seq: seq, TS: time.Now().UnixNano(), Data: json.RawMessage(`{"forged":true}`)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeCredentialsAllowOnlyTheNodesOwnSubjects sets a hub up as the README
// does for a network (credentials and TLS) and then, with node a's stolen
// credential, tries everything a thief would: pose as node b, read the fleet,
// read b's replies, call the JetStream and KV APIs, reach the system account.
// Each is refused, counted and logged with the node, and leaves nothing in
// the query results; the real edges carry on.
func TestNodeCredentialsAllowOnlyTheNodesOwnSubjects(t *testing.T) {
	h := startSecureHub(t)
	credsA, credsB := h.nodeAdd(t, "a"), h.nodeAdd(t, "b")

	// The credentials file is the node's alone: mode 0600, and its seed is
	// nowhere in the hub's data directory.
	if fi, err := os.Stat(credsA); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v mode %v, want 0600", credsA, err, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(credsA)
	seed := ""
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "SU") {
			seed = strings.TrimSpace(l)
		}
	}
	if seed == "" {
		t.Fatalf("no user seed in %s", raw)
	}
	filepath.WalkDir(h.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), seed) {
				t.Errorf("node a's seed is kept in %s", p)
			}
		}
		return nil
	})

	ea := startEdge(t, "a", t.TempDir(), h.natsURL(), h.edgeArgs(credsA)...)
	eb := startEdge(t, "b", t.TempDir(), h.natsURL(), h.edgeArgs(credsB)...)
	for _, e := range []*edgeProc{ea, eb} {
		if _, ok := e.ingest("s", events(0, 20)); !ok {
			t.Fatalf("ingest at %s", e.node)
		}
	}
	countOf := func(node string) int64 {
		return h.count(t, map[string]string{"pattern": "single(" + node + ")", "stream": "s"})
	}
	waitFor(t, "both edges' events at the hub", 60*time.Second, func() bool { return countOf("a") == 20 && countOf("b") == 20 })

	// The thief: node a's credential, its own inbox prefix (so that only
	// what is tested is refused).
	var errs natsErrors
	nc, err := nats.Connect(h.natsURL(), nats.UserCredentials(credsA), nats.RootCAs(h.ca.File),
		nats.CustomInboxPrefix(stream.NodeInbox("a")), nats.ErrorHandler(errs.handler))
	if err != nil {
		t.Fatalf("connect with a's credential: %v", err)
	}
	defer nc.Close()
	permBefore := hubMetric(t, h.hubProc, `tributary_hub_auth_failures_total{reason="permission"}`)

	// Pose as b on b's subject: refused by the server.
	if err := nc.Publish(stream.Subject("b", "s"), frame(t, "b", 21)); err != nil {
		t.Fatal(err)
	}
	// Read the fleet, and b's replies.
	fleet, err := nc.SubscribeSync(stream.SubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync(stream.NodeInbox("b") + ".>"); err != nil {
		t.Fatal(err)
	}
	// The KV API and the system account.
	nc.Publish("$KV."+stream.CountersBucket+".x", []byte("{}"))
	nc.Publish("$SYS.REQ.SERVER.PING", nil)
	nc.Flush()
	for _, subj := range []string{`"edge.b.s"`, `"edge.>"`, `"_inbox.b.>"`, `"$kv.counters.x"`, `"$sys.req.server.ping"`} {
		waitFor(t, "the permission violation on "+subj, 10*time.Second, func() bool { return errs.saw("permissions violation", subj) })
	}
	// The JetStream API: stream info and stream delete fail, and the stream
	// stays.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if _, err := js.Stream(ctx, stream.JetStreamName); err == nil {
		t.Error("node a read the EDGE stream's info")
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	if err := js.DeleteStream(ctx, stream.JetStreamName); err == nil {
		t.Error("node a deleted the EDGE stream")
	}
	cancel()
	waitFor(t, "the violation on the JetStream API", 10*time.Second, func() bool { return errs.saw("permissions violation", "$js.api.stream.delete.edge") })

	// Node a on its own subject with a frame that says b: the server lets
	// it through, the hub rejects it as a bad frame.
	badBefore := hubMetric(t, h.hubProc, "tributary_hub_bad_frames_total")
	if err := nc.Publish(stream.Subject("a", "s"), frame(t, "b", 22)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the frame claiming b counted as bad", 30*time.Second, func() bool {
		return hubMetric(t, h.hubProc, "tributary_hub_bad_frames_total") > badBefore
	})

	// The edges carry on, and nothing forged is at the hub.
	for _, e := range []*edgeProc{ea, eb} {
		if _, ok := e.ingest("s", events(20, 10)); !ok {
			t.Fatalf("ingest at %s", e.node)
		}
	}
	waitFor(t, "the edges' new events at the hub", 60*time.Second, func() bool { return countOf("a") == 30 && countOf("b") == 30 })
	for _, node := range []string{"a", "b"} {
		for _, ev := range h.all(t, map[string]string{"pattern": "single(" + node + ")", "stream": "s"}) {
			if strings.Contains(string(ev.Data), "forged") || ev.Epoch == "forged-epoch" {
				t.Errorf("forged event indexed for %s: %+v", node, ev)
			}
		}
	}
	if n, _, _ := fleet.Pending(); n != 0 {
		t.Errorf("node a's subscription to edge.> received %d messages", n)
	}
	perm := hubMetric(t, h.hubProc, `tributary_hub_auth_failures_total{reason="permission"}`)
	if perm-permBefore < 6 {
		t.Errorf("permission failures counted: %v, want at least 6 more than %v", perm, permBefore)
	}
	waitFor(t, "a violation logged with node a and its address", 10*time.Second, func() bool {
		for _, l := range strings.Split(h.out.String(), "\n") {
			if strings.Contains(l, `"reason":"permission"`) && strings.Contains(l, `"node":"a"`) && strings.Contains(l, `"remote":"127.0.0.1`) {
				return true
			}
		}
		return false
	})
}

// TestStrangersAreRefused: no credential, a garbage one, and a well-formed
// one from another hub's operator are all refused and counted; none of them
// gets an event in.
func TestStrangersAreRefused(t *testing.T) {
	h := startSecureHub(t)
	before := hubMetric(t, h.hubProc, `tributary_hub_auth_failures_total{reason="authentication"}`)
	if nc, err := nats.Connect(h.natsURL(), nats.RootCAs(h.ca.File)); err == nil {
		nc.Close()
		t.Fatal("connected with no credential")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("no credential: %v, want an authorization violation", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.creds")
	os.WriteFile(garbage, []byte("-----BEGIN NATS USER JWT-----\nnot.a.jwt\n------END NATS USER JWT------\n"), 0o600)
	if nc, err := nats.Connect(h.natsURL(), nats.RootCAs(h.ca.File), nats.UserCredentials(garbage)); err == nil {
		nc.Close()
		t.Fatal("connected with a garbage credential")
	}
	other, err := auth.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := other.AddNode("a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreignFile := filepath.Join(t.TempDir(), "foreign.creds")
	os.WriteFile(foreignFile, foreign, 0o600)
	if nc, err := nats.Connect(h.natsURL(), nats.RootCAs(h.ca.File), nats.UserCredentials(foreignFile)); err == nil {
		nc.Close()
		t.Fatal("connected with another operator's credential")
	}
	// An edge with the foreign credential buffers and never delivers.
	e := startEdge(t, "a", t.TempDir(), h.natsURL(), h.edgeArgs(foreignFile)...)
	if _, ok := e.ingest("s", events(0, 5)); !ok {
		t.Fatal("ingest")
	}
	waitFor(t, "the refusals counted", 30*time.Second, func() bool {
		return hubMetric(t, h.hubProc, `tributary_hub_auth_failures_total{reason="authentication"}`)-before >= 3
	})
	if st := e.status(t); st.HubConnected || st.Buffered != 5 {
		t.Errorf("edge with a foreign credential: %+v, want disconnected with 5 buffered", st)
	}
	if n := h.count(t, map[string]string{"pattern": "single(a)"}); n > 0 {
		t.Errorf("%d events of a stranger at the hub", n)
	}
}

// TestRevokedNodeIsCutOff revokes a node while its edge is connected: the hub
// closes the connection within seconds, refuses it from then on, and counts
// it; a new credential for the node delivers what it buffered meanwhile.
func TestRevokedNodeIsCutOff(t *testing.T) {
	h := startSecureHub(t)
	creds := h.nodeAdd(t, "c")
	e := startEdge(t, "c", t.TempDir(), h.natsURL(), h.edgeArgs(creds)...)
	if _, ok := e.ingest("s", events(0, 10)); !ok {
		t.Fatal("ingest")
	}
	count := func() int64 { return h.count(t, map[string]string{"pattern": "single(c)", "stream": "s"}) }
	waitFor(t, "c's events at the hub", 60*time.Second, func() bool { return count() == 10 })

	revokedAt := time.Now()
	if code, out, errOut := runHubCLI(t, "node", "revoke", "c", "--data", h.dir); code != 0 || !strings.Contains(out, "revoked c") {
		t.Fatalf("hub node revoke: %d %q %q", code, out, errOut)
	}
	waitFor(t, "the revoked edge cut off", 15*time.Second, func() bool { return !e.status(t).HubConnected })
	t.Logf("revoked edge disconnected %v after the revoke command", time.Since(revokedAt).Round(10*time.Millisecond))
	waitFor(t, "the revocation counted", 15*time.Second, func() bool {
		return hubMetric(t, h.hubProc, `tributary_hub_auth_failures_total{reason="revoked"}`) >= 1
	})
	if nc, err := nats.Connect(h.natsURL(), nats.RootCAs(h.ca.File), nats.UserCredentials(creds)); err == nil {
		nc.Close()
		t.Fatal("a revoked credential connected")
	}
	if _, ok := e.ingest("s", events(10, 5)); !ok {
		t.Fatal("ingest while revoked")
	}
	code, out, _ := runHubCLI(t, "node", "list", "--data", h.dir)
	if f := strings.Fields(out); code != 0 || len(f) != 4 || f[0] != "c" || f[3] == "-" {
		t.Errorf("hub node list after revoke: %d %q, want c's line with its revocation time", code, out)
	}
	if st := e.status(t); st.HubConnected || st.Buffered != 5 || count() != 10 {
		t.Errorf("revoked edge: %+v, hub has %d; want 5 buffered and 10 at the hub", st, count())
	}

	// A new credential for c: the edge, restarted with it, delivers its
	// backlog exactly once.
	fresh := filepath.Join(t.TempDir(), "c2.creds")
	if code, _, errOut := runHubCLI(t, "node", "add", "c", "--data", h.dir, "--out", fresh); code != 0 {
		t.Fatalf("hub node add c again: %d %s", code, errOut)
	}
	e.args = append(e.args[:len(e.args)-len(h.edgeArgs(creds))], h.edgeArgs(fresh)...)
	e.restart()
	waitFor(t, "the backlog delivered with the new credential", 60*time.Second, func() bool { return count() == 15 && e.status(t).Buffered == 0 })
}
