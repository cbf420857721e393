package forward

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/stream"
)

// Clock measurement: every ClockInterval, and after every (re)connection, the
// forwarder asks the hub's time ClockSamples times on ctl.<node>.clock and
// keeps the offset of the sample with the smallest round trip (NTP's choice:
// its error is at most half of that round trip). Until the first
// measurement ClockOffset is 0.
const (
	DefaultClockInterval = time.Minute
	ClockSamples         = 8
	clockTimeout         = 2 * time.Second
)

// ClockOffset returns the hub's clock minus this edge's as last measured, the
// round trip of that measurement, and whether there was one.
func (f *Forwarder) ClockOffset() (offset, rtt time.Duration, ok bool) {
	r := f.clockRTT.Load()
	return time.Duration(f.clockOffset.Load()), time.Duration(r), r > 0
}

// clockLoop measures the clock while ctx lasts.
func (f *Forwarder) clockLoop(ctx context.Context) {
	defer f.bg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	seen := ^uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f.nc.IsConnected() {
			continue
		}
		rc := f.reconnects.Load()
		if rc == seen && time.Since(last) < f.ClockInterval {
			continue
		}
		if f.measureClock(ctx) {
			seen, last = rc, time.Now()
		}
	}
}

// measureClock takes ClockSamples samples and keeps the best; it reports
// whether any sample came back.
func (f *Forwarder) measureClock(ctx context.Context) bool {
	best := int64(-1)
	var offset int64
	subj := stream.ClockSubject(f.Node)
	for range ClockSamples {
		if ctx.Err() != nil {
			return false
		}
		t0 := f.Now().UnixNano()
		msg, err := f.nc.Request(subj, nil, clockTimeout)
		t3 := f.Now().UnixNano()
		if err != nil {
			if err != nats.ErrTimeout && err != nats.ErrNoResponders {
				f.log.Debug().Err(err).Msg("clock sample")
			}
			continue
		}
		var r stream.ClockReply
		if json.Unmarshal(msg.Data, &r) != nil || r.T2 < r.T1 {
			continue
		}
		rtt := (t3 - t0) - (r.T2 - r.T1)
		if rtt < 0 {
			continue
		}
		if best < 0 || rtt < best {
			best, offset = rtt, ((r.T1-t0)+(r.T2-t3))/2
		}
	}
	if best < 0 {
		return false
	}
	f.clockOffset.Store(offset)
	f.clockRTT.Store(max(best, 1))
	f.log.Debug().Dur("offset", time.Duration(offset)).Dur("rtt", time.Duration(best)).Msg("clock measured against the hub")
	return true
}

// answerSeq answers the hub's strong-read request on cmd.<node>.seq with the
// newest seq whose ingest this edge acknowledged.
func (f *Forwarder) answerSeq(m *nats.Msg) {
	b, err := json.Marshal(stream.SeqReply{Epoch: f.epoch, LastSeq: f.Buffer.Stats().LastSeq})
	if err != nil {
		return
	}
	if err := m.Respond(b); err != nil {
		f.log.Debug().Err(err).Msg("answer the hub's seq request")
	}
}
