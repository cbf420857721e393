// Package aggregate is the pure core of windowed aggregates: tumbling windows
// by event time over a pattern's scope, grouped by envelope and data fields,
// with count, sum, min, max, avg and percentiles. It does no I/O, starts no
// goroutines, reads no clock and does not log. The hub answers an aggregate
// with Execute, which reads a pattern.Index, whose Each brings the
// goroutines:
//
//	plan, err := aggregate.Prepare(req)                  // 400 on any error
//	res, err := aggregate.Execute(ctx, idx, plan, complete) // the caller sets TookMS
//
// Execute is made of the parts below, which other engines can use alike:
//
//	q := plan.Query()                     // resolve scope with pattern.Scope, scan, filter with q.Matches
//	st := plan.NewState(scope)            // one per goroutine
//	err = st.Add(ev)                      // for each matching event
//	err = st.AddMatches(m)                // or a chunk's matches (pattern.EachMatch), from its columns
//	err = st.Merge(other)                 // states of disjoint events
//	res := plan.Result(st)                // then Scanned, TookMS and Certain
//	plan.Settle(res, st, complete)        // each window's certainty, and the answer's
//
// # Requests
//
// A Request has the query's pattern, where, stream, from and to, with the
// meanings of package pattern, except that from and to are both required.
// Window is a Go duration (30s, 1m, 5m, 1h) that may start with whole days
// (1d, 7d, 1d12h); it must be at least 1ms and a whole number of
// milliseconds. Windows are aligned to whole multiples of the window since
// the Unix epoch and cover [from, to): the first is the one that holds from,
// the last the one that holds the last nanosecond before to; at most
// MaxWindows of them. Events outside [from, to) count in no window, even in
// the first and last windows, which may reach beyond the range.
//
// GroupBy lists at most MaxGroupBy distinct fields: node and stream (the
// event's envelope) or data field paths, keys joined by dots (site,
// gps.zone). ts and seq are not allowed. Aggregates lists at most
// MaxAggregates distinct aggregates: count, and sum(f), min(f), max(f),
// avg(f), p50(f), p90(f), p95(f) and p99(f) of a data field path f; function
// names are case-insensitive. No aggregates means count. The envelope names
// node, stream, ts and seq are never data fields here, as in
// where-expressions. Prepare's errors wrap pattern.ErrInvalid and start with
// the field at fault.
//
// # Answers
//
// A window's groups are the distinct keys of its events: one value per
// group_by field. A field that is missing, or JSON null, is null in the key.
// Strings, numbers and booleans are themselves (numbers as float64: 1 and
// 1.0 are one group, and integers beyond 2^53 round); an array or object is
// its JSON text with insignificant white space removed, so objects whose
// keys come in another order are other groups. Without group_by, a window
// with events has one group whose key is {}. Groups are ordered by key,
// field by field: null first, then false, true, numbers in ascending order,
// strings by bytes, arrays, then objects, these two by their text. Every
// window of the range is in the answer, with no groups when it had no event.
//
// count is the number of events in the group. Each numeric aggregate takes
// the field of the events where it is a JSON number; an event whose field is
// missing or not a number is left out of that aggregate, not out of count.
// An aggregate that took no number is null (count is never null). count,
// min and max are exact, sum and avg are float64 sums with Neumaier's
// compensation (null if the sum goes beyond float64's range). A percentile
// pN is the nearest-rank value: the ⌈N/100 × n⌉-th smallest of the n
// numbers. It is exact for up to 64 numbers; beyond that it comes from a
// DDSketch with 0.5% relative accuracy, so it is within 1% of the exact
// value (the sketch holds negative numbers, zeros and positive numbers
// apart, and keeps the few magnitudes it cannot index exactly).
//
// A window's holds applies the pattern's quantifier to that window alone,
// over the scope given to NewState: for single, multiple and all, every node
// in scope has at least one event in the window; for any, at least one has;
// with an empty scope, false. Any changes only holds: aggregates cover every
// node in scope.
//
// # Limits and costs
//
// An answer holds at most MaxCells window × group cells; Add and Merge
// return an error wrapping pattern.ErrInvalid past that, for the engine to
// answer 400. A State holds per cell the count and, per numeric field, an
// accumulator (and for percentiles, up to 64 values or a sketch), and per
// window with events one bit per node in scope. Add reads every data field
// the plan needs in one pass over the event's data (pattern.Extractor); it
// allocates when it makes a cell, when a sketch grows, and for group keys
// that are strings with escapes or non-ASCII text, arrays or objects.
package aggregate
