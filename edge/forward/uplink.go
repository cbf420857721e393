package forward

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"
)

// MinMaxRate is the lowest cap on the uplink's rate (bytes per second) that
// the forwarder takes: below it a heartbeat alone would use most of a second.
const MinMaxRate = 1024

// pacer is the uplink's token bucket: rate bytes per second, with a burst of
// one second of the rate, so that over any window of T seconds at most
// (T+1)·rate bytes go out. A nil pacer lets everything through at once.
type pacer struct {
	lim *rate.Limiter
	now func() time.Time
}

// newPacer returns a pacer of bytesPerSecond, or nil for 0 (no cap).
func newPacer(bytesPerSecond int64, now func() time.Time) *pacer {
	if bytesPerSecond <= 0 {
		return nil
	}
	// The burst bounds one message; a frame never needs more than that (see
	// Forwarder.readBytes), and a bigger burst would let more than a second's
	// worth through at once after an idle spell.
	burst := int(min(bytesPerSecond, maxBurst))
	return &pacer{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), now: now}
}

// maxBurst bounds the burst so that it fits an int on 32-bit ARM.
const maxBurst = 1<<31 - 1

// burst returns the most bytes one message may take without waiting for
// tokens it cannot have at once; 0 for a nil pacer (no limit).
func (p *pacer) burst() int {
	if p == nil {
		return 0
	}
	return p.lim.Burst()
}

// reserve takes n bytes' worth of tokens and returns how long to wait before
// sending them: 0 when they may go now. Tokens are taken when reserve is
// called, so whoever reserves first sends first. A message bigger than the
// burst (a single event over one second of the rate) takes its tokens one
// burst at a time, and waits for the last of them: the rate holds on
// average, though a window around it sees more than the burst.
func (p *pacer) reserve(n int) time.Duration {
	if p == nil || n <= 0 {
		return 0
	}
	now := p.now()
	b := p.lim.Burst()
	var d time.Duration
	for n > 0 {
		k := min(n, b)
		n -= k
		d = p.lim.ReserveN(now, k).DelayFrom(now)
	}
	return d
}

// wait reserves n bytes and waits until they may be sent, or until ctx ends.
func (p *pacer) wait(ctx context.Context, n int) error {
	d := p.reserve(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// replyAllowance is what the cost of a JetStream publish counts for its reply
// subject (an inbox prefix and a token; about 30 bytes in nats.go).
const replyAllowance = 48

// pubCost returns the bytes a NATS publish puts on the connection: the
// protocol line (HPUB with headers, PUB without), the headers, the payload and
// the closing CRLF. It is what the pacer charges before a publish, so it errs
// on the high side.
func pubCost(subject string, hdr nats.Header, data []byte, reply bool) int {
	hlen := 0
	for k, vs := range hdr {
		for _, v := range vs {
			hlen += len(k) + 2 + len(v) + 2 // "Key: value\r\n"
		}
	}
	n := 3 + 1 + len(subject) + 1 // "PUB subject "
	if reply {
		n += replyAllowance + 1
	}
	if hlen > 0 {
		hlen += len("NATS/1.0\r\n") + 2
		n += 1 + len(strconv.Itoa(hlen)) + 1 // "H" and the header length
	}
	total := hlen + len(data)
	n += len(strconv.Itoa(total)) + 2 + total + 2
	return n
}

// countingDialer dials TCP for the NATS connection and counts every byte
// written to the socket: protocol, headers, payloads, pings and, with TLS,
// the TLS records. That is what a metered link bills.
type countingDialer struct {
	d       net.Dialer
	written *atomic.Uint64
}

// Dial implements nats.CustomDialer.
func (cd *countingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := cd.d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, written: cd.written}, nil
}

type countingConn struct {
	net.Conn
	written *atomic.Uint64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(uint64(n))
	return n, err
}
