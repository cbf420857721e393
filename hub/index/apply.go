package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tributary-edge/tributary/internal/sqlitex"
	"github.com/tributary-edge/tributary/stream"
)

// Message is one message the materializer took off the EDGE stream: its
// decoded frame, or the reason it was rejected, and the hub's time of receipt.
type Message struct {
	Subject string
	Node    string // from the subject; empty when the subject is malformed
	Frame   *stream.Frame
	Bad     error // set when the message is rejected
	At      int64 // JetStream's timestamp of the message, Unix ns
	// Unchecked is set when Frame was decoded with stream.DecodeUnchecked:
	// its records' data is yet to be checked, which Prepare does while it
	// builds the chunks' columns (and Apply, for a message not prepared). A
	// message whose data is not all JSON objects is then rejected.
	Unchecked bool

	// chunks, when prepared is set, are the chunks of all the frame's events,
	// encoded by Prepare ahead of Apply.
	chunks   []chunk
	prepared bool
}

// Prepare encodes the chunks of the event frames among msgs ahead of Apply,
// as though every event were new to the index, so that this work, most of
// what Apply does, can run outside the writer's transaction and on other
// cores. Apply still decides in its transaction which events are new: it uses
// the prepared chunks of a message whose events all are, and cuts the chunks
// again for one that holds some the index has. Messages are independent, so
// that Prepare may run on parts of a run of messages at once.
func Prepare(msgs []Message) {
	for i := range msgs {
		m := &msgs[i]
		f := m.Frame
		if m.Bad != nil || f == nil || f.Kind != stream.KindEvents || len(f.Events) == 0 || f.Events[len(f.Events)-1].Seq > maxSeq {
			continue
		}
		m.chunks, m.prepared = cutChunks(f.Node, f.Epoch, f.Stream, slices.Clone(f.Events)), true
		if m.Unchecked {
			valid := true
			for _, c := range m.chunks {
				valid = valid && c.valid
			}
			if !valid {
				checkData(m)
			}
			m.Unchecked = false
		}
	}
}

// checkData checks that each record's data of m's frame is a JSON object in
// valid UTF-8, rejecting m if one is not, as stream.Decode would have.
func checkData(m *Message) {
	m.Unchecked = false
	if m.Frame == nil {
		return
	}
	for i, r := range m.Frame.Events {
		if !stream.IsObject(r.Data) {
			m.Bad = fmt.Errorf("%w: record %d (seq %d): data is not a JSON object", stream.ErrBadFrame, i, r.Seq)
			m.Frame, m.chunks, m.prepared = nil, nil, false
			return
		}
	}
}

// Applied says what a call to Apply changed.
type Applied struct {
	// Inserted holds the events that were new to the index, in apply order,
	// when Apply was asked for them.
	Inserted []stream.Event
	// Events counts the events new to the index; Duplicates those it already
	// held; Bad the rejected messages.
	Events, Duplicates, Bad int
	// Nodes are the nodes the messages came from, as their rows now are.
	Nodes []NodeSeen
	// Epochs are the accounting rows the messages changed, as they now are.
	Epochs []EpochRow
	// Ingested holds the edge's ingest time of each new event that carries
	// one (events of version 2 frames), for delivery latency.
	Ingested []int64
	// Heartbeats are the heartbeat frames among the messages (from edges that
	// publish them on the stream); Apply does not store them.
	Heartbeats []Message
}

// NodeSeen is what Apply learned of one node: that the hub has heard of it at
// At, and how many of its messages were rejected.
type NodeSeen struct {
	Node      string
	At        int64
	BadFrames int64
}

// maxSeq is the largest seq the index stores: seqs are SQLite integers.
const maxSeq = math.MaxInt64 / 2

// Apply writes a run of messages into the index in one transaction, committed
// with synchronous=FULL before it returns. Re-applying a message changes
// nothing: an event whose (node, epoch, seq) is in the received intervals is
// skipped, drop reports are unique on (node, epoch, first_seq). With events
// set it returns the new events for live queries. A full disk returns an
// error wrapping ErrFull, with nothing written.
func (x *Index) Apply(ctx context.Context, msgs []Message, events bool) (*Applied, error) {
	a := &Applied{}
	ap := &applier{a: a, wantEvents: events, epochs: map[epochKey]*EpochRow{}, nodes: map[string]*NodeSeen{}}
	err := sqlitex.Tx(ctx, x.w, func(tx *sql.Tx) error {
		ap.tx = tx
		for i := range msgs {
			if err := ap.message(ctx, &msgs[i]); err != nil {
				return err
			}
		}
		return ap.finish(ctx)
	})
	if err != nil {
		if errors.Is(err, ErrIndex) {
			return nil, err
		}
		return nil, wrapWrite("commit", err)
	}
	return a, nil
}

type epochKey struct{ node, epoch string }

// applier is the state of one Apply's transaction.
type applier struct {
	tx         *sql.Tx
	a          *Applied
	wantEvents bool
	epochs     map[epochKey]*EpochRow
	order      []epochKey
	nodes      map[string]*NodeSeen
	norder     []string
}

func (ap *applier) message(ctx context.Context, m *Message) error {
	if m.Unchecked && m.Bad == nil {
		checkData(m)
	}
	if m.Bad != nil {
		ap.a.Bad++
		if m.Node != "" {
			ap.node(m.Node, 0).BadFrames++
		}
		return nil
	}
	f := m.Frame
	ap.node(f.Node, m.At)
	switch f.Kind {
	case stream.KindEvents:
		if len(f.Events) > 0 && f.Events[len(f.Events)-1].Seq > maxSeq {
			ap.a.Bad++
			ap.node(f.Node, 0).BadFrames++
			return nil
		}
		return ap.events(ctx, m)
	case stream.KindDrops:
		for _, d := range f.Drops {
			if d.LastSeq > maxSeq {
				continue
			}
			if err := ap.drop(ctx, f.Node, d, m.At); err != nil {
				return err
			}
		}
	case stream.KindHeartbeat:
		ap.a.Heartbeats = append(ap.a.Heartbeats, *m)
	}
	return nil
}

func (ap *applier) node(node string, at int64) *NodeSeen {
	n := ap.nodes[node]
	if n == nil {
		n = &NodeSeen{Node: node}
		ap.nodes[node] = n
		ap.norder = append(ap.norder, node)
	}
	n.At = max(n.At, at)
	return n
}

// epoch returns the accounting row of (node, epoch), read once per
// transaction.
func (ap *applier) epoch(ctx context.Context, node, epoch string, at int64) (*EpochRow, error) {
	k := epochKey{node, epoch}
	if e := ap.epochs[k]; e != nil {
		e.LastSeen = max(e.LastSeen, at)
		return e, nil
	}
	e := &EpochRow{Node: node, Epoch: epoch, FirstSeen: at, LastSeen: at}
	err := ap.tx.QueryRowContext(ctx, "SELECT received, high_seq, dropped, first_seen, last_seen FROM epochs WHERE node = ? AND epoch = ?", node, epoch).
		Scan(&e.Received, &e.HighSeq, &e.Dropped, &e.FirstSeen, &e.LastSeen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: read epoch: %v", ErrIndex, err)
	}
	e.LastSeen = max(e.LastSeen, at)
	ap.epochs[k] = e
	ap.order = append(ap.order, k)
	return e, nil
}

// events stores the events of m that the index does not hold yet, cut into
// chunks, and adds their seqs to the received intervals.
func (ap *applier) events(ctx context.Context, m *Message) error {
	f := m.Frame
	lo, hi := int64(f.Events[0].Seq), int64(f.Events[len(f.Events)-1].Seq)
	e, err := ap.epoch(ctx, f.Node, f.Epoch, m.At)
	if err != nil {
		return err
	}
	e.HighSeq = max(e.HighSeq, hi)
	old, err := loadSpans(ctx, ap.tx, f.Node, f.Epoch, lo, hi)
	if err != nil {
		return err
	}
	fresh := make([]stream.Record, 0, len(f.Events))
	seqs := make([]int64, 0, len(f.Events))
	at := 0
	for _, r := range f.Events {
		var dup bool
		if dup, at = covered(old, at, int64(r.Seq)); !dup {
			fresh = append(fresh, r)
			seqs = append(seqs, int64(r.Seq))
		}
	}
	ap.a.Duplicates += len(f.Events) - len(fresh)
	if len(fresh) == 0 {
		return nil
	}
	if err := saveSpans(ctx, ap.tx, f.Node, f.Epoch, old, union(old, seqs)); err != nil {
		return err
	}
	for _, r := range fresh {
		if r.Ingest > 0 {
			ap.a.Ingested = append(ap.a.Ingested, r.Ingest)
		}
	}
	if ap.wantEvents {
		for _, r := range fresh {
			ap.a.Inserted = append(ap.a.Inserted, stream.Event{Node: f.Node, Epoch: f.Epoch, Seq: r.Seq, Stream: f.Stream, TS: r.TS, Received: m.At, Data: r.Data})
		}
	}
	chunks := m.chunks
	if !m.prepared || len(fresh) != len(f.Events) {
		chunks = cutChunks(f.Node, f.Epoch, f.Stream, slices.Clone(fresh))
	}
	for _, c := range chunks {
		if _, err := ap.tx.ExecContext(ctx, `INSERT INTO chunks (node, epoch, stream, min_ts, max_ts, count, received, codec, raw_bytes, data, cols)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.node, c.epoch, c.stream, c.minTS, c.maxTS, c.count, m.At, c.codec, c.raw, c.data, c.cols); err != nil {
			return wrapWrite("insert chunk", err)
		}
	}
	e.Received += int64(len(fresh))
	ap.a.Events += len(fresh)
	// Events that arrive inside a range already reported dropped (an edge that
	// crashed after sending and before its ack) shrink that drop: a seq is
	// never both received and dropped.
	var overlap int
	if err := ap.tx.QueryRowContext(ctx, `SELECT count(*) FROM drops WHERE node = ? AND epoch = ? AND first_seq <= ? AND last_seq >= ?`,
		f.Node, f.Epoch, hi, lo).Scan(&overlap); err != nil {
		return fmt.Errorf("%w: check drops: %v", ErrIndex, err)
	}
	if overlap > 0 {
		return ap.recountDrops(ctx, e, lo, hi)
	}
	return nil
}

// drop stores a drop report the index has not seen.
func (ap *applier) drop(ctx context.Context, node string, d stream.Drop, at int64) error {
	res, err := ap.tx.ExecContext(ctx, `INSERT OR IGNORE INTO drops (node, epoch, first_seq, last_seq, reported, effective, reason) VALUES (?, ?, ?, ?, ?, 0, ?)`,
		node, d.Epoch, int64(d.FirstSeq), int64(d.LastSeq), int64(d.Count), d.Reason)
	if err != nil {
		return wrapWrite("insert drop", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	e, err := ap.epoch(ctx, node, d.Epoch, at)
	if err != nil {
		return err
	}
	e.HighSeq = max(e.HighSeq, int64(d.LastSeq))
	return ap.recountDrops(ctx, e, int64(d.FirstSeq), int64(d.LastSeq))
}

// recountDrops sets each drop of e overlapping [lo, hi] to the number of its
// seqs that can still be dropped: at most what the edge reported, and at most
// the seqs of its range that were not received. It then refreshes e's total.
func (ap *applier) recountDrops(ctx context.Context, e *EpochRow, lo, hi int64) error {
	type drop struct{ first, last, reported int64 }
	var ds []drop
	rows, err := ap.tx.QueryContext(ctx, "SELECT first_seq, last_seq, reported FROM drops WHERE node = ? AND epoch = ? AND first_seq <= ? AND last_seq >= ?", e.Node, e.Epoch, hi, lo)
	if err != nil {
		return fmt.Errorf("%w: recount drops: %v", ErrIndex, err)
	}
	for rows.Next() {
		var d drop
		if err := rows.Scan(&d.first, &d.last, &d.reported); err != nil {
			rows.Close()
			return fmt.Errorf("%w: recount drops: %v", ErrIndex, err)
		}
		ds = append(ds, d)
	}
	rows.Close()
	for _, d := range ds {
		spans, err := loadSpans(ctx, ap.tx, e.Node, e.Epoch, d.first, d.last)
		if err != nil {
			return err
		}
		eff := min(d.reported, d.last-d.first+1-receivedIn(spans, d.first, d.last))
		if _, err := ap.tx.ExecContext(ctx, "UPDATE drops SET effective = ? WHERE node = ? AND epoch = ? AND first_seq = ?", eff, e.Node, e.Epoch, d.first); err != nil {
			return wrapWrite("recount drops", err)
		}
	}
	if err := ap.tx.QueryRowContext(ctx, "SELECT coalesce(sum(effective), 0) FROM drops WHERE node = ? AND epoch = ?", e.Node, e.Epoch).Scan(&e.Dropped); err != nil {
		return fmt.Errorf("%w: total drops: %v", ErrIndex, err)
	}
	return nil
}

// finish writes the nodes and epochs the messages touched.
func (ap *applier) finish(ctx context.Context) error {
	for _, n := range ap.norder {
		s := ap.nodes[n]
		if s.At > 0 {
			if _, err := ap.tx.ExecContext(ctx, `INSERT INTO nodes (node, first_seen, last_seen) VALUES (?, ?, ?)
				ON CONFLICT (node) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`, n, s.At, s.At); err != nil {
				return wrapWrite("register node", err)
			}
		}
		if s.BadFrames > 0 {
			res, err := ap.tx.ExecContext(ctx, "UPDATE nodes SET bad_frames = bad_frames + ? WHERE node = ?", s.BadFrames, n)
			if err != nil {
				return wrapWrite("count bad frames", err)
			}
			if k, _ := res.RowsAffected(); k == 0 {
				// A node the hub has not heard of: its garbage does not make it known.
				s.BadFrames = 0
			}
		}
		if s.At > 0 || s.BadFrames > 0 {
			ap.a.Nodes = append(ap.a.Nodes, *s)
		}
	}
	for _, k := range ap.order {
		e := ap.epochs[k]
		if _, err := ap.tx.ExecContext(ctx, `INSERT INTO epochs (node, epoch, received, high_seq, dropped, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (node, epoch) DO UPDATE SET received = excluded.received, high_seq = excluded.high_seq,
				dropped = excluded.dropped, last_seen = excluded.last_seen`,
			e.Node, e.Epoch, e.Received, e.HighSeq, e.Dropped, e.FirstSeen, e.LastSeen); err != nil {
			return wrapWrite("account epoch", err)
		}
		ap.a.Epochs = append(ap.a.Epochs, *e)
	}
	return nil
}
