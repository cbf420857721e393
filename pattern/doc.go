// Package pattern is the hub's query core: the pattern grammar, predicate
// compilation, and the execution of a query over an Index. It is pure: it does
// no I/O of its own, starts no goroutines, reads no clock and does not log. The
// hub implements Index with its SQLite event index and runs Execute; the live
// fan-out calls Query.Matches on each arriving event.
//
// # Patterns
//
//	single(a)          one named node
//	multiple(a,b,...)  one or more named nodes; repeats are dropped
//	all                every node the hub knows
//	any                every node the hub knows
//
// Keywords are case-insensitive and spaces may go anywhere between tokens.
// Node names follow the name rule of stream.ValidateName and are
// case-sensitive. An error gives the 1-based column, in characters:
// `pattern: expected ")" at column 12, found end of pattern`.
//
// # Scope, matches and pages
//
// The nodes in scope are the named ones for single and multiple (each must be
// known to the hub, else ErrUnknownNode naming it), and every known node for
// all and any. The matches are the events of the nodes in scope, in the
// requested stream (every stream when empty) and event-time range [from, to),
// that satisfy the where-expression, merged in merge order (ts, node, epoch,
// seq). Any has the same matches as all; only its verdict differs.
//
// A page is the first limit matches strictly after the cursor. Next is the
// cursor of the page's last match when at least one more match follows it, and
// empty otherwise, so an empty Next means the last page. A cursor is a Position
// in merge order, encoded as opaque base64url text; it is not tied to the
// query, so it can resume any query at that point.
//
// # Counts and verdicts
//
// With count set, Count is the number of matches in the whole range whatever
// limit and after say, and Nodes[n].Matched is node n's total in range. Without
// it, Nodes[n].Matched is n's matches in the returned page. Every node in scope
// has an entry.
//
// Holds is a verdict over the whole range, not the page: for single, multiple
// and all, every node in scope has at least one match; for any, at least one
// node does. A node without a match in the page is probed from the start of the
// range to its first match, unless the page's scan already covered the whole
// range. For all and any with no known node, holds is false: a fleet of no
// nodes shows nothing, and "every node matched" over nothing would report a
// pattern as seen that never was.
//
// # Predicates
//
// The where-expression is in expr-lang syntax (https://expr-lang.org) and must
// be boolean; empty means every event. It is compiled once, by Prepare, before
// any event is read. It sees:
//
//   - the fields of the event's data object by name (temp > 30), and nested
//     fields by path (gps.lat > 45, or gps["lat"]);
//   - the envelope: node, stream (strings), seq (an unsigned integer) and ts
//     (a time.Time, so ts > date("2024-01-01T00:00:00Z") works; dates without a
//     zone are UTC). Envelope names hide data fields of the same name; those
//     fields are out of the expression's reach.
//
// JSON numbers written without fraction or exponent are integers when they fit
// an int (64 bits on 64-bit platforms), so % and indexes work on them; other
// numbers are floats, and the two compare with each other as numbers. now() is not available, so that every page of a query sees the same
// predicate; use from and to for time ranges. Calling a function that does not
// exist is a compile error.
//
// Missing fields never match: an event matches only when it has every data
// field the expression names (a field holding JSON null is present, and equals
// nil). This holds whatever the operators around the field, so site != "north"
// does not match an event without a site, and neither does
// site == "north" || temp > 30 when temp is missing. Two forms opt out: after
// ?. the rest of a path may be missing (gps?.lat is nil when gps is missing),
// and so may anything on the left of ?? ((temp ?? 0) > 30). An expression that
// fails on an event — nil > 30, a string plus a number, data that is not a
// JSON object — does not match it; that is never an error.
package pattern
