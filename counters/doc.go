// Package counters holds the distributed counters that every edge can increment
// while offline and the hub merges exactly: the PN-counter CRDT (PN, State), pure
// and without I/O, and the hub's merge of node states into the JetStream KV
// bucket COUNTERS (Hub).
//
// # Why whole states, merged by maximum
//
// Each node keeps, per counter, P (the sum of its increments) and N (the sum of
// its decrements), both only growing. An edge sends its whole state, never a
// delta; the hub keeps, per node, the maximum P and the maximum N it has seen, and
// the value is Σ(P − N) over nodes. Merging by maximum is commutative, associative
// and idempotent, so a state delivered twice, late, out of order or replayed after
// any outage cannot change the total.
//
// NATS has its own distributed counters since nats-server 2.12: a stream created
// with AllowMsgCounter takes messages whose Nats-Incr header holds a delta, and
// adds that delta to the subject's current total. A repeated message is recognized
// only by its Nats-Msg-Id, and only while that ID is inside the stream's duplicate
// window (two minutes by default); after that, a repeat is a new increment. An
// edge that published, lost the acknowledgement to a network cut and re-sends
// once it is back hours later therefore counts twice. Worked example: edge A
// counts 5 door openings and sends them, then sends again two hours later because
// it never saw the acknowledgement. A NATS counter receives "Nats-Incr: 5" twice,
// the second time outside the window, and reads 10. Tributary receives the state
// {p: 5, n: 0} twice, takes max(5, 5), and reads 5. The test
// TestNATSCounterDoubleCountsAfterDuplicateWindow shows both on a real server.
//
// # The hub's bucket
//
// Hub stores one key per node and counter, "<name>.<node>", whose value is that
// node's PN as JSON, {"p":5,"n":0}. Merge reads a key, merges, and writes with the
// revision it read, retrying on a conflict, so concurrent writers lose nothing and
// a state that changes nothing is not written. List and Get, called on every
// metrics scrape, read an in-memory copy of the bucket kept current by a KV
// watcher and by Merge's own writes; they never read the bucket.
//
// A total that does not fit in an int64 is an error wrapping ErrOverflow, never a
// wrapped-around number.
package counters
