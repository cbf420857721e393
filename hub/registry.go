package hub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/hub/index"
	"github.com/tributary-edge/tributary/internal/apierr"
	"github.com/tributary-edge/tributary/pattern"
	"github.com/tributary-edge/tributary/stream"
)

// OnlineWindow is how recent a node's last heartbeat must be for it to be online.
const OnlineWindow = 15 * time.Second

// rateWindow is the time constant of a node's events-per-second figure.
const rateWindow = 30 * time.Second

// NodeInfo is the hub's record of one node, as GET /api/v1/nodes shows it.
type NodeInfo struct {
	Node     string `json:"node"`
	Online   bool   `json:"online"`
	LastSeen string `json:"last_seen"`
	// Events counts the events the hub received from the node, over all
	// epochs (events pruned past retention included).
	Events int64 `json:"events"`
	// Epochs counts the buffer epochs the hub has seen from the node.
	Epochs int `json:"epochs"`
	// Epoch is the node's current epoch and HighSeq the highest seq received or
	// reported dropped in it.
	Epoch   string `json:"epoch"`
	HighSeq int64  `json:"high_seq"`
	// Buffered is the edge's backlog as it last reported it.
	Buffered int64 `json:"buffered"`
	// Dropped counts events the edge discarded and reported; Missing the seqs
	// neither received nor reported dropped, over all epochs.
	Dropped int64 `json:"dropped"`
	Missing int64 `json:"missing"`
	// BadFrames counts messages under the node's subjects that were rejected.
	BadFrames int64 `json:"bad_frames"`
	// Rate is the node's events received per second, averaged over about 30 s.
	Rate float64 `json:"events_per_s"`
	// Complete and Pending are the node's completeness (see
	// pattern.Completeness), as queries report it.
	Complete bool  `json:"complete"`
	Pending  int64 `json:"pending"`
	// ClockOffsetMS is the hub's clock minus the node's as the node last
	// measured and reported it, and ClockRTTMS that measurement's round
	// trip (the offset is right to within half of it); null until the node
	// has measured.
	ClockOffsetMS *float64 `json:"clock_offset_ms"`
	ClockRTTMS    *float64 `json:"clock_rtt_ms"`
	// UplinkBytesPerEvent is what the node's uplink carried per event sent
	// since the edge started, as its last heartbeat reports: every byte it
	// wrote to the hub (frames, heartbeats, protocol) over the events in its
	// batches. Null until the node has reported sending an event.
	UplinkBytesPerEvent *float64 `json:"uplink_bytes_per_event"`
}

// Totals are figures over the whole fleet.
type Totals struct {
	Nodes    int     `json:"nodes"`
	Online   int     `json:"online"`
	Events   int64   `json:"events"`
	Buffered int64   `json:"buffered"`
	Dropped  int64   `json:"dropped"`
	Missing  int64   `json:"missing"`
	Rate     float64 `json:"events_per_s"`
}

// Node list limits.
const (
	DefaultNodeLimit = 1000
	MaxNodeLimit     = 10000
)

// NodeSort is the order of a node list.
type NodeSort string

// Node list orders. Every order ends with the node name, so pages are stable.
const (
	SortName    NodeSort = "name"    // by node name
	SortOffline NodeSort = "offline" // offline nodes first, then by name
	SortBacklog NodeSort = "backlog" // largest backlog first
	SortMissing NodeSort = "missing" // most missing seqs first
	SortRate    NodeSort = "rate"    // most events per second first
)

// ErrInvalidQuery is returned (wrapped) for a node list request that names a
// bad parameter; the message says which.
var ErrInvalidQuery = apierr.InvalidRequest

// NodeQuery selects a page of the node list.
type NodeQuery struct {
	// Limit is the page size: 0 means DefaultNodeLimit, at most MaxNodeLimit.
	Limit int
	// After is the Next of the previous page.
	After string
	// Online, when set, keeps only nodes that are (true) or are not (false)
	// online.
	Online *bool
	// Prefix keeps only nodes whose name starts with it.
	Prefix string
	// Sort is the order; empty means SortName.
	Sort NodeSort
}

// NodePage is one page of the node list, with totals over the whole fleet.
type NodePage struct {
	Nodes  []NodeInfo `json:"nodes"`
	Next   string     `json:"next"`
	Totals Totals     `json:"totals"`
}

// registry is the hub's node registry in memory: what the index's node and
// epoch rows hold, kept current by the materializer, plus heartbeats, which
// arrive a few thousand a second in a large fleet and are written to the index
// in batches. It is safe for concurrent use.
type registry struct {
	mu    sync.RWMutex
	nodes map[string]*nodeState
	names []string        // sorted
	dirty map[string]bool // nodes whose heartbeat is not yet stored
}

type nodeState struct {
	row    index.NodeRow
	hb     stream.Heartbeat
	epochs map[string]index.EpochRow
	rate   float64 // events per second, decayed to rateAt
	rateAt int64
	// pending is the node's completeness figure (see completeness), kept
	// current by settle whenever the epochs, the reported epoch or the
	// report change: an answer over a fleet reads it for every node.
	pending int64
}

func newRegistry() *registry {
	return &registry{nodes: map[string]*nodeState{}, dirty: map[string]bool{}}
}

// load fills the registry from the index's rows.
func (r *registry) load(nodes []index.NodeRow, epochs []index.EpochRow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range nodes {
		st := r.state(n.Node)
		st.row = n
		_ = json.Unmarshal([]byte(n.Heartbeat), &st.hb)
	}
	for _, e := range epochs {
		r.state(e.Node).epochs[e.Epoch] = e
	}
	for _, st := range r.nodes {
		st.settle()
	}
}

// state returns node's state, adding the node; r.mu is held for writing.
func (r *registry) state(node string) *nodeState {
	st := r.nodes[node]
	if st == nil {
		st = &nodeState{row: index.NodeRow{Node: node, Heartbeat: "{}"}, epochs: map[string]index.EpochRow{}}
		r.nodes[node] = st
		i, _ := slices.BinarySearch(r.names, node)
		r.names = slices.Insert(r.names, i, node)
	}
	return st
}

// applied records what an index transaction changed, at the hub's time now.
func (r *registry) applied(a *index.Applied, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range a.Nodes {
		if n.At == 0 && r.nodes[n.Node] == nil {
			continue
		}
		st := r.state(n.Node)
		if st.row.FirstSeen == 0 {
			st.row.FirstSeen = n.At
		}
		st.row.LastSeen = max(st.row.LastSeen, n.At)
		st.row.BadFrames += n.BadFrames
	}
	for _, e := range a.Epochs {
		st := r.state(e.Node)
		if added := e.Received - st.epochs[e.Epoch].Received; added > 0 {
			st.addRate(float64(added), now)
		}
		st.epochs[e.Epoch] = e
		st.settle()
	}
}

// addRate adds n events at now to the node's decaying rate.
func (st *nodeState) addRate(n float64, now int64) {
	st.rate = st.rateNow(now) + n/rateWindow.Seconds()
	st.rateAt = now
}

func (st *nodeState) rateNow(now int64) float64 {
	if st.rateAt == 0 || now <= st.rateAt {
		return st.rate
	}
	return st.rate * math.Exp(-float64(now-st.rateAt)/float64(rateWindow))
}

// heartbeat records a node's heartbeat received at at; an older one than the
// node's last is ignored.
func (r *registry) heartbeat(node, epoch string, hb stream.Heartbeat, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state(node)
	if at < st.row.LastHB {
		return
	}
	if st.row.FirstSeen == 0 {
		st.row.FirstSeen = at
	}
	st.row.LastHB, st.row.Epoch, st.hb = at, epoch, hb
	st.row.LastSeen = max(st.row.LastSeen, at)
	st.settle()
	r.dirty[node] = true
}

// takeDirty returns the heartbeats not yet stored and forgets them.
func (r *registry) takeDirty() []index.HeartbeatRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]index.HeartbeatRow, 0, len(r.dirty))
	for n := range r.dirty {
		st := r.nodes[n]
		b, _ := json.Marshal(st.hb)
		out = append(out, index.HeartbeatRow{Node: n, At: st.row.LastHB, Epoch: st.row.Epoch, Heartbeat: string(b)})
	}
	clear(r.dirty)
	return out
}

// redirty marks nodes whose heartbeats failed to store, to try again.
func (r *registry) redirty(rows []index.HeartbeatRow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range rows {
		r.dirty[h.Node] = true
	}
}

// has reports whether the hub has heard of node.
func (r *registry) has(node string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.nodes[node]
	return ok
}

// list returns every known node, sorted.
func (r *registry) list() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.names)
}

// info builds a node's record at the hub's time now; r.mu is held.
func (st *nodeState) info(now int64) NodeInfo {
	ni := NodeInfo{Node: st.row.Node, BadFrames: st.row.BadFrames, Buffered: st.hb.Buffered, Epochs: len(st.epochs), Epoch: st.row.Epoch}
	ni.LastSeen = stream.FormatTime(max(st.row.LastSeen, st.row.LastHB))
	ni.Online = st.row.LastHB > 0 && now-st.row.LastHB < int64(OnlineWindow)
	var latest int64
	for _, e := range st.epochs {
		ni.Events += e.Received
		ni.Dropped += e.Dropped
		ni.Missing += e.Missing()
		// With no heartbeat naming the current epoch, it is the one heard last.
		if ni.Epoch == "" && e.LastSeen >= latest {
			latest = e.LastSeen
			ni.Epoch = e.Epoch
		}
	}
	ni.HighSeq = st.epochs[ni.Epoch].HighSeq
	ni.Rate = math.Round(st.rateNow(now)*100) / 100
	c := st.completeness(ni.Online)
	ni.Complete, ni.Pending = c.Complete, c.Pending
	if st.hb.ClockRTT > 0 {
		off, rtt := float64(st.hb.ClockOffset)/1e6, float64(st.hb.ClockRTT)/1e6
		ni.ClockOffsetMS, ni.ClockRTTMS = &off, &rtt
	}
	if st.hb.UplinkEvents > 0 {
		v := math.Round(float64(st.hb.UplinkBytes)/float64(st.hb.UplinkEvents)*10) / 10
		ni.UplinkBytesPerEvent = &v
	}
	return ni
}

// completeness is how complete the hub's data of the node is: pending counts
// the seqs of the node's reported epoch up to its reported last seq that the
// hub neither holds nor knows to be dropped, plus the missing seqs of every
// other epoch (see settle); complete needs none pending, a report, and the
// node online.
func (st *nodeState) completeness(online bool) pattern.Completeness {
	var c pattern.Completeness
	if st.row.LastHB > 0 {
		c.AsOf = time.Unix(0, st.row.LastHB).UTC()
	}
	c.Pending = st.pending
	c.Complete = online && st.row.LastHB > 0 && c.Pending == 0
	return c
}

// settle computes the node's pending figure from its epochs and its report.
func (st *nodeState) settle() {
	var pending int64
	for ep, e := range st.epochs {
		if ep != st.row.Epoch {
			pending += e.Missing()
		}
	}
	// Seqs are unique per epoch, so the reported epoch's seqs 1..LastSeq are
	// all held or dropped exactly when neither figure is above 0.
	cur := st.epochs[st.row.Epoch]
	st.pending = pending + max(int64(st.hb.LastSeq)-cur.Received-cur.Dropped, cur.Missing())
}

// online reports whether node's last heartbeat is recent at the hub's time now.
func (r *registry) online(node string, now int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.nodes[node]
	return st != nil && st.row.LastHB > 0 && now-st.row.LastHB < int64(OnlineWindow)
}

// caughtUp reports whether the hub holds (or knows dropped) every event of
// the reply's epoch up to its seq, with nothing missing in the node's other
// epochs, and returns the node's completeness against that seq.
func (r *registry) caughtUp(node string, s stream.SeqReply) (pattern.Completeness, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var c pattern.Completeness
	st := r.nodes[node]
	if st == nil {
		c.Pending = int64(s.LastSeq)
		return c, s.LastSeq == 0
	}
	for ep, e := range st.epochs {
		if ep != s.Epoch {
			c.Pending += e.Missing()
		}
	}
	cur := st.epochs[s.Epoch]
	c.Pending += max(int64(s.LastSeq)-cur.Received-cur.Dropped, cur.Missing())
	c.Complete = c.Pending == 0
	return c, c.Complete
}

// completeness returns node's completeness at the hub's time now.
func (r *registry) completeness(node string, now int64) pattern.Completeness {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.completenessLocked(node, now)
}

// withCompleteness calls fn with a lookup of any node's completeness at the
// hub's time now, all under one read lock: an answer over a fleet asks for
// every node's, and a lock per node cost more than the lookups.
func (r *registry) withCompleteness(now int64, fn func(of func(node string) pattern.Completeness)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn(func(node string) pattern.Completeness { return r.completenessLocked(node, now) })
}

// completenessLocked is completeness with r.mu held.
func (r *registry) completenessLocked(node string, now int64) pattern.Completeness {
	st := r.nodes[node]
	if st == nil {
		return pattern.Completeness{}
	}
	return st.completeness(st.row.LastHB > 0 && now-st.row.LastHB < int64(OnlineWindow))
}

// page answers a node list request at the hub's time now.
func (r *registry) page(q NodeQuery, now int64) (NodePage, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultNodeLimit
	case limit < 0 || limit > MaxNodeLimit:
		return NodePage{}, fmt.Errorf("%w: limit: %d, want 1 to %d", ErrInvalidQuery, limit, MaxNodeLimit)
	}
	sortBy := q.Sort
	if sortBy == "" {
		sortBy = SortName
	}
	key, err := sortKey(sortBy)
	if err != nil {
		return NodePage{}, err
	}
	var after *cursorKey
	if q.After != "" {
		c, err := decodeNodeCursor(q.After)
		if err != nil {
			return NodePage{}, err
		}
		after = &c
	}
	type entry struct {
		ni  NodeInfo
		pos cursorKey
	}
	r.mu.RLock()
	list := make([]entry, 0, len(r.names))
	var tot Totals
	for _, n := range r.names {
		st := r.nodes[n]
		ni := st.info(now)
		tot.Nodes++
		if ni.Online {
			tot.Online++
		}
		tot.Events += ni.Events
		tot.Buffered += ni.Buffered
		tot.Dropped += ni.Dropped
		tot.Missing += ni.Missing
		tot.Rate += ni.Rate
		if q.Online != nil && ni.Online != *q.Online || !strings.HasPrefix(n, q.Prefix) {
			continue
		}
		list = append(list, entry{ni, cursorKey{key(st, &ni), n}})
	}
	r.mu.RUnlock()
	tot.Rate = math.Round(tot.Rate*100) / 100
	if sortBy != SortName {
		slices.SortFunc(list, func(a, b entry) int { return cmpKey(a.pos, b.pos) })
	}
	start := 0
	if after != nil {
		start, _ = slices.BinarySearchFunc(list, *after, func(e entry, c cursorKey) int {
			if cmpKey(e.pos, c) <= 0 {
				return -1
			}
			return 1
		})
	}
	end := min(start+limit, len(list))
	page := NodePage{Nodes: make([]NodeInfo, 0, end-start), Totals: tot}
	for _, e := range list[start:end] {
		page.Nodes = append(page.Nodes, e.ni)
	}
	if end < len(list) {
		page.Next = encodeNodeCursor(list[end-1].pos)
	}
	return page, nil
}

// cursorKey is a position in a node list: the sort's key, then the name.
type cursorKey struct {
	K float64 `json:"k"`
	N string  `json:"n"`
}

func cmpKey(a, b cursorKey) int {
	switch {
	case a.K < b.K:
		return -1
	case a.K > b.K:
		return 1
	}
	return strings.Compare(a.N, b.N)
}

// sortKey returns the key a sort orders by, ascending (descending figures are
// negated).
func sortKey(s NodeSort) (func(*nodeState, *NodeInfo) float64, error) {
	switch s {
	case SortName:
		return func(*nodeState, *NodeInfo) float64 { return 0 }, nil
	case SortOffline:
		return func(_ *nodeState, n *NodeInfo) float64 {
			if n.Online {
				return 1
			}
			return 0
		}, nil
	case SortBacklog:
		return func(_ *nodeState, n *NodeInfo) float64 { return -float64(n.Buffered) }, nil
	case SortMissing:
		return func(_ *nodeState, n *NodeInfo) float64 { return -float64(n.Missing) }, nil
	case SortRate:
		// Every rate decays by the same factor as time passes, so the order is
		// kept by the log of the rate brought back to a fixed time: a cursor
		// from an earlier page still falls where it did.
		return func(st *nodeState, _ *NodeInfo) float64 {
			if st.rate <= 0 {
				return math.MaxFloat64
			}
			return -(math.Log(st.rate) + float64(st.rateAt)/float64(rateWindow))
		}, nil
	}
	return nil, fmt.Errorf("%w: sort: %q is not one of name, offline, backlog, missing, rate", ErrInvalidQuery, s)
}

func encodeNodeCursor(c cursorKey) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeNodeCursor(s string) (cursorKey, error) {
	var c cursorKey
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || len(s) > 256 {
		return c, fmt.Errorf("%w: after: %q is not a cursor from this list's next", ErrInvalidQuery, s)
	}
	return c, nil
}
