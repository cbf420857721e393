// Package counters holds the distributed counters that every edge can increment
// while offline and the hub merges exactly: the PN-counter CRDT (PN, State) and
// the other counter kinds (Max, Min, LWW with its HLC, Register, Fleet), pure
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
// # Counter kinds
//
// A counter has one Kind, fixed by its first write. KindSum is the PN-counter
// above. KindMax and KindMin are registers of the largest or smallest value ever
// set (Max, Min), merged by maximum or minimum. KindLast is a last-writer-wins
// register (LWW): each write carries a hybrid logical clock stamp (HLC) that
// never goes backwards on its node, even when the node's wall clock is stepped
// back, and the fleet value is the write with the greatest (stamp, node), so
// equal stamps from two nodes resolve the same way everywhere. Register holds
// one node's state of any kind, for the wire (FromWire, Register.Wire) and the
// bucket (EncodeRegister, DecodeRegister); Fleet computes the fleet's view
// from the nodes' registers. Like the PN merge, every merge here is
// commutative, associative and idempotent, so the same argument about repeats
// and replays holds for every kind. States of different kinds never merge:
// that is ErrKindConflict.
//
// Time reaches this code only as arguments (nowMs); nothing here reads a clock.
//
// # The hub's bucket
//
// The hub (hub/natsjs) stores one key per node and counter, "<name>.<node>",
// whose value is that node's state as EncodeRegister writes it: a sum as
// {"p":5,"n":0}, byte for byte what hubs before kinds wrote. It merges a
// node's incoming state into the key by the kind's rule, and ignores (and
// counts) a state of another kind than the counter's. Counter is a counter's
// view under its name, as the hub's API shows it.
//
// A total that does not fit in an int64 is an error wrapping ErrOverflow, never a
// wrapped-around number.
package counters
