package natstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// EdgeMessages is what a node put in the EDGE stream.
type EdgeMessages struct {
	Events   map[uint64]int // seq → how many times
	Data     map[uint64]string
	Streams  map[uint64]string
	Frames   []*stream.Frame
	Raw      [][]byte // each of Frames as it was published, byte for byte
	MsgIDs   []string
	Drops    []stream.Drop
	Counters []stream.CounterState
}

// ReadEdge reads every message of node in the EDGE stream of the server at url.
func ReadEdge(t testing.TB, url, node string) *EdgeMessages {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.JetStreamName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	r := &EdgeMessages{Events: map[uint64]int{}, Data: map[uint64]string{}, Streams: map[uint64]string{}}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		f, err := stream.Decode(m.Data)
		if err != nil {
			t.Fatalf("message %d on %s: %v", seq, m.Subject, err)
		}
		if f.Node != node {
			continue
		}
		r.Frames = append(r.Frames, f)
		r.Raw = append(r.Raw, m.Data)
		switch f.Kind {
		case stream.KindEvents:
			if m.Subject != stream.Subject(node, f.Stream) {
				t.Errorf("events of stream %s on subject %s", f.Stream, m.Subject)
			}
			r.MsgIDs = append(r.MsgIDs, m.Header.Get(jetstream.MsgIDHeader))
			for _, rec := range f.Events {
				r.Events[rec.Seq]++
				r.Data[rec.Seq] = string(rec.Data)
				r.Streams[rec.Seq] = f.Stream
			}
		case stream.KindDrops:
			r.Drops = append(r.Drops, f.Drops...)
		case stream.KindCounters:
			r.Counters = append(r.Counters, f.Counters...)
		}
	}
	return r
}
