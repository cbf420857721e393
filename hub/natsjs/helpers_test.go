package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/hub/natsjs"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/stream"
)

// connect opens a JetStream context on url that reconnects forever, closed when
// the test ends.
func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// openHub opens a Hub on its own connection to url, closed when the test ends.
func openHub(t *testing.T, url string) *natsjs.Counters {
	t.Helper()
	h := natsjs.NewCounters(connect(t, url))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Open(ctx); err != nil {
		t.Fatalf("open hub: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return h
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bucket returns the COUNTERS bucket as a plain KV client sees it.
func bucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	kv, err := connect(t, url).KeyValue(testCtx(t), stream.CountersBucket)
	if err != nil {
		t.Fatalf("bind bucket: %v", err)
	}
	return kv
}

// stored reads one sum straight from the bucket.
func stored(t *testing.T, kv jetstream.KeyValue, key string) (counters.PN, uint64) {
	t.Helper()
	r, rev := storedRegister(t, kv, key)
	if r.Kind != counters.KindSum {
		t.Fatalf("%s holds a %v, want a sum", key, r.Kind)
	}
	return r.PN, rev
}

// storedRegister reads one key of any kind straight from the bucket.
func storedRegister(t *testing.T, kv jetstream.KeyValue, key string) (counters.Register, uint64) {
	t.Helper()
	e, err := kv.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	r, err := counters.DecodeRegister(e.Value())
	if err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return r, e.Revision()
}

// sumCounter returns the view of a sum whose nodes hold these values.
func sumCounter(name string, nodes map[string]int64) counters.Counter {
	c := counters.Counter{Name: name, View: counters.View{Kind: counters.KindSum, Value: counters.Value{Set: true}, Nodes: map[string]counters.Value{}}}
	for n, v := range nodes {
		c.Nodes[n] = counters.Value{Int: v, Set: true}
		c.Value.Int += v
	}
	return c
}

// lastSeq returns the last sequence of the bucket's stream: it moves on every
// write.
func lastSeq(t *testing.T, url string) uint64 {
	t.Helper()
	s, err := connect(t, url).Stream(testCtx(t), "KV_"+stream.CountersBucket)
	if err != nil {
		t.Fatalf("bucket stream: %v", err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatalf("bucket stream info: %v", err)
	}
	return info.State.LastSeq
}

// eventually polls cond until it returns "" or the deadline passes. The deadline
// is long because a KV watcher whose consumer vanished in a server restart is
// recreated only after two missed idle heartbeats, 10 to 20 s.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
