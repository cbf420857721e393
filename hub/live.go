package hub

import (
	"errors"
	"sync"

	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// ErrSlowSubscriber ends a live subscription whose reader fell too far behind.
var ErrSlowSubscriber = errors.New("hub: live subscriber fell behind")

// Live fans newly indexed events out to live queries. Publishing never blocks:
// each subscription has a bounded buffer and is ended with ErrSlowSubscriber when
// it is full, so a slow reader never slows ingest.
type Live struct {
	// Buffer is the number of matches a subscription may hold unread.
	Buffer int

	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewLive returns a broker with a 1024-event buffer per subscription.
func NewLive() *Live { return &Live{Buffer: 1024, subs: map[*Subscription]struct{}{}} }

// Subscription is one live query. Read matches from C until it is closed, then
// read Err.
type Subscription struct {
	C <-chan stream.Event

	c    chan stream.Event
	q    *pattern.Query
	live *Live
	err  error
	once sync.Once
}

// Subscribe starts a live query.
func (l *Live) Subscribe(q *pattern.Query) *Subscription {
	c := make(chan stream.Event, max(l.Buffer, 1))
	s := &Subscription{C: c, c: c, q: q, live: l}
	l.mu.Lock()
	l.subs[s] = struct{}{}
	l.mu.Unlock()
	return s
}

// Count returns the number of open subscriptions.
func (l *Live) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Publish offers events to every subscription whose query they match.
func (l *Live) Publish(evs []stream.Event) {
	if len(evs) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		for i := range evs {
			if !s.q.Matches(&evs[i]) {
				continue
			}
			select {
			case s.c <- evs[i]:
			default:
				s.end(ErrSlowSubscriber)
			}
			if s.err != nil {
				break
			}
		}
	}
}

// end closes the subscription with err; the caller holds l.mu.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		delete(s.live.subs, s)
		close(s.c)
	})
}

// Err returns why the subscription ended: ErrSlowSubscriber, or nil after Close.
// Call it once C is closed.
func (s *Subscription) Err() error {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	s.end(nil)
}
