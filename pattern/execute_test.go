package pattern

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

func mkEv(node, epoch string, seq uint64, ts int64, data string) stream.Event {
	return stream.Event{Node: node, Epoch: epoch, Seq: seq, Stream: "s", TS: oracleBase + ts, Data: json.RawMessage(data)}
}

func run(t *testing.T, idx Index, r Request) *Result {
	t.Helper()
	q, err := Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Execute(context.Background(), idx, q)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(evs []stream.Event) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d/%s/%s/%d", ev.TS-oracleBase, ev.Node, ev.Epoch, ev.Seq)
	}
	return b.String()
}

func TestExecuteMergeOrder(t *testing.T) {
	idx := newMemIndex(t, nil, []stream.Event{
		mkEv("b", "e1", 1, 5, `{}`),
		mkEv("b", "e0", 9, 5, `{}`),
		mkEv("a", "e2", 1, 5, `{}`),
		mkEv("a", "e1", 2, 5, `{}`),
		mkEv("a", "e1", 1, 5, `{}`),
		mkEv("A", "e9", 1, 5, `{}`),
		mkEv("c", "e0", 1, 1, `{}`),
		mkEv("a", "e0", 7, 9, `{}`),
	})
	want := "1/c/e0/1 5/A/e9/1 5/a/e1/1 5/a/e1/2 5/a/e2/1 5/b/e0/9 5/b/e1/1 9/a/e0/7"
	tests := []struct {
		name  string
		limit int
	}{{"one page", 0}, {"pages of 1", 1}, {"pages of 2", 2}, {"pages of 3", 3}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []stream.Event
			after := ""
			for {
				res := run(t, idx, Request{Pattern: "all", Limit: tt.limit, After: after})
				all = append(all, res.Matches...)
				if after = res.Next; after == "" {
					break
				}
			}
			if got := ids(all); got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestExecuteUnknownNode(t *testing.T) {
	idx := newMemIndex(t, []string{"a", "b"}, nil)
	for _, p := range []string{"single(ghost)", "multiple(a,ghost,b)", "multiple(a,b,ghost)"} {
		t.Run(p, func(t *testing.T) {
			q, err := Prepare(Request{Pattern: p})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Execute(context.Background(), idx, q)
			if !errors.Is(err, ErrUnknownNode) || errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want ErrUnknownNode", err)
			}
			if !strings.Contains(err.Error(), `"ghost"`) {
				t.Fatalf("error %q does not name the node", err)
			}
			if len(idx.scans) != 0 {
				t.Fatalf("scanned %d nodes before finding the unknown one", len(idx.scans))
			}
		})
	}
	// Node names are case-sensitive.
	q, _ := Prepare(Request{Pattern: "single(A)"})
	if _, err := Execute(context.Background(), idx, q); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("single(A) with node a: %v", err)
	}
}

func TestScope(t *testing.T) {
	idx := holdsIdx(t)
	tests := []struct {
		pattern string
		want    string
	}{
		{"all", "a b c d"},
		{"any", "a b c d"},
		{"multiple(d,a,d)", "d a"},
		{"single(c)", "c"},
	}
	for _, tt := range tests {
		q, err := Prepare(Request{Pattern: tt.pattern})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Scope(context.Background(), idx, q)
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%s: scope %q %v, want %s", tt.pattern, got, err, tt.want)
		}
	}
}

func TestExecuteNoNodes(t *testing.T) {
	idx := newMemIndex(t, nil, nil)
	for _, p := range []string{"all", "any"} {
		res := run(t, idx, Request{Pattern: p, Count: true})
		if res.Holds || len(res.Nodes) != 0 || res.Matches == nil || len(res.Matches) != 0 || res.Count == nil || *res.Count != 0 || res.Next != "" {
			t.Fatalf("%s over no nodes: %+v", p, res)
		}
	}
}

// holdsIdx: a matches only late, b only early, c never, d has no events.
func holdsIdx(t *testing.T) *memIndex {
	var evs []stream.Event
	for i := range 10 {
		evs = append(evs, mkEv("a", "e", uint64(i+1), int64(i), fmt.Sprintf(`{"hot":%v}`, i >= 8)))
		evs = append(evs, mkEv("b", "e", uint64(i+1), int64(i), fmt.Sprintf(`{"hot":%v}`, i < 2)))
		evs = append(evs, mkEv("c", "e", uint64(i+1), int64(i), `{"hot":false}`))
	}
	return newMemIndex(t, []string{"d"}, evs)
}

func TestExecuteHolds(t *testing.T) {
	tests := []struct {
		pattern string
		where   string
		limit   int
		holds   bool
		probes  string // nodes probed, in order
	}{
		// The first page reads the whole range: no probes.
		{"all", "hot", 100, false, ""},
		{"multiple(a,b)", "hot", 100, true, ""},
		{"any", "hot", 100, true, ""},
		{"single(c)", "hot", 100, false, ""},
		{"any", "hot && node == \"c\"", 100, false, ""},
		// A page of one: b's early match fills it; a needs a probe.
		{"multiple(a,b)", "hot", 1, true, "a"},
		{"multiple(b,a)", "hot", 1, true, "a"},
		// all stops probing at the first node without a match.
		{"all", "hot", 1, false, "a c"},
		{"multiple(c,a,b)", "hot", 1, false, "a c"},
		// any holds as soon as the page shows a match.
		{"any", "hot", 1, true, ""},
		{"single(a)", "hot", 1, true, ""},
		{"single(a)", "!hot", 1, true, ""},
		{"single(d)", "", 1, false, ""},
		// d has no chunk at all: the probe reads nothing to know it has no match.
		{"multiple(a,d)", "", 1, false, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s where %s limit %d", tt.pattern, tt.where, tt.limit), func(t *testing.T) {
			idx := holdsIdx(t)
			res := run(t, idx, Request{Pattern: tt.pattern, Where: tt.where, Limit: tt.limit})
			if res.Holds != tt.holds {
				t.Fatalf("holds %v, want %v", res.Holds, tt.holds)
			}
			if got := probed(idx, res); got != tt.probes {
				t.Fatalf("probed %q, want %q", got, tt.probes)
			}
			// With a count, the verdict is the same and needs no probe.
			idx = holdsIdx(t)
			res = run(t, idx, Request{Pattern: tt.pattern, Where: tt.where, Limit: tt.limit, Count: true})
			if res.Holds != tt.holds {
				t.Fatalf("with count: holds %v, want %v", res.Holds, tt.holds)
			}
			if got := probed(idx, res); got != "" {
				t.Fatalf("with count: probed %q", got)
			}
		})
	}
}

// probed lists the nodes whose chunks the probe read, in order.
func probed(idx *memIndex, res *Result) string {
	return strings.Join(idx.probed, " ")
}

func TestExecuteHoldsOnLaterPages(t *testing.T) {
	// On a later page the cursor hides earlier matches, so nodes without a
	// match in the page are probed, but only up to the cursor when the page
	// read the rest of the range.
	idx := holdsIdx(t)
	first := run(t, idx, Request{Pattern: "multiple(a,b)", Where: "hot", Limit: 2})
	if first.Next == "" || ids(first.Matches) != "0/b/e/1 1/b/e/2" {
		t.Fatalf("first page %s next %q", ids(first.Matches), first.Next)
	}
	idx.scans, idx.probed = nil, nil
	second := run(t, idx, Request{Pattern: "multiple(a,b)", Where: "hot", Limit: 2, After: first.Next})
	if ids(second.Matches) != "8/a/e/9 9/a/e/10" || second.Next != "" {
		t.Fatalf("second page %s next %q", ids(second.Matches), second.Next)
	}
	if !second.Holds {
		t.Fatal("holds is false on the second page")
	}
	if got := probed(idx, second); got != "b" {
		t.Fatalf("probed %q, want b", got)
	}
	probe := idx.scans[len(idx.scans)-1]
	if probe.Order != ByNode || !probe.HasTo || probe.To != oracleBase+2 || probe.HasFrom {
		t.Fatalf("probe scan %+v, want [start, cursor ts + 1)", probe)
	}
	if second.Nodes["a"].Matched != 2 || second.Nodes["b"].Matched != 0 {
		t.Fatalf("page counts %v", second.Nodes)
	}
}

func TestExecuteCount(t *testing.T) {
	idx := holdsIdx(t)
	res := run(t, idx, Request{Pattern: "all", Where: "hot", Limit: 1, Count: true})
	if *res.Count != 4 || res.Nodes["a"].Matched != 2 || res.Nodes["b"].Matched != 2 || res.Nodes["c"].Matched != 0 || res.Nodes["d"].Matched != 0 {
		t.Fatalf("count %d nodes %v", *res.Count, res.Nodes)
	}
	if ids(res.Matches) != "0/b/e/1" || res.Next == "" {
		t.Fatalf("page %s next %q", ids(res.Matches), res.Next)
	}
	if res.Scanned != 30 {
		t.Fatalf("scanned %d, want all 30 events", res.Scanned)
	}
	// Later pages count the whole range too.
	res = run(t, idx, Request{Pattern: "all", Where: "hot", Limit: 1, Count: true, After: res.Next})
	if *res.Count != 4 || res.Nodes["a"].Matched != 2 || ids(res.Matches) != "1/b/e/2" {
		t.Fatalf("second page: count %d nodes %v page %s", *res.Count, res.Nodes, ids(res.Matches))
	}
}

func TestExecuteIndexErrors(t *testing.T) {
	for _, count := range []bool{false, true} {
		t.Run(fmt.Sprintf("read fails, count %v", count), func(t *testing.T) {
			idx := holdsIdx(t)
			idx.failOn = "c"
			q, _ := Prepare(Request{Pattern: "all", Count: count})
			_, err := Execute(context.Background(), idx, q)
			if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "scan") {
				t.Fatalf("error %v", err)
			}
			if idx.openIterators() != 0 {
				t.Fatalf("%d iterators left open", idx.openIterators())
			}
		})
		t.Run(fmt.Sprintf("load fails, count %v", count), func(t *testing.T) {
			idx := holdsIdx(t)
			idx.failLoad = "b"
			q, _ := Prepare(Request{Pattern: "all", Count: count})
			_, err := Execute(context.Background(), idx, q)
			if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), `chunk of node "b"`) {
				t.Fatalf("error %v", err)
			}
			if idx.openIterators() != 0 {
				t.Fatalf("%d iterators left open", idx.openIterators())
			}
		})
	}
	t.Run("probe fails", func(t *testing.T) {
		idx := holdsIdx(t)
		q, _ := Prepare(Request{Pattern: "multiple(b,a)", Where: "hot", Limit: 1})
		idx.failProbe = true
		_, err := Execute(context.Background(), idx, q)
		if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "probe") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		var evs []stream.Event
		for i := range 3 * ctxCheckEvery {
			evs = append(evs, mkEv("a", "e", uint64(i+1), int64(i), `{}`))
		}
		idx := newMemIndex(t, nil, evs)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q, _ := Prepare(Request{Pattern: "all", Where: "false", Count: true})
		_, err := Execute(ctx, idx, q)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestResultJSON(t *testing.T) {
	idx := newMemIndex(t, []string{"b"}, []stream.Event{mkEv("a", "e", 1, 0, `{"temp":1}`)})
	res := run(t, idx, Request{Pattern: "all", Where: "temp > 5"})
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pattern":"all","holds":false,"nodes":{"a":{"matched":0,"complete":false,"pending":0},"b":{"matched":0,"complete":false,"pending":0}},"matches":[],"next":"","scanned":1,"took_ms":0,"certain":false}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	res = run(t, idx, Request{Pattern: "SINGLE( a )", Count: true})
	b, _ = json.Marshal(res)
	want = `{"pattern":"single(a)","holds":true,"nodes":{"a":{"matched":1,"complete":false,"pending":0}},"matches":[{"node":"a","epoch":"e","seq":1,"stream":"s","ts":"2024-05-01T12:00:00Z","data":{"temp":1}}],"next":"","count":1,"scanned":1,"took_ms":0,"certain":false}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestPrepareInvalid(t *testing.T) {
	tests := []struct {
		req  Request
		want string
	}{
		{Request{Pattern: "all", Stream: "_hb"}, "stream: invalid name: stream name"},
		{Request{Pattern: "all", Stream: "a.b"}, "stream: invalid name: stream name"},
		{Request{Pattern: "all", From: "yesterday"}, `from: "yesterday" is not an RFC 3339 time`},
		{Request{Pattern: "all", To: "2024-05-01"}, `to: "2024-05-01" is not an RFC 3339 time`},
		{Request{Pattern: "all", From: "2024-05-01T00:00:00Z", To: "2024-05-01T00:00:00Z"}, "from: 2024-05-01T00:00:00Z is not before to 2024-05-01T00:00:00Z"},
		{Request{Pattern: "all", From: "2024-05-02T00:00:00Z", To: "2024-05-01T00:00:00Z"}, "from: 2024-05-02T00:00:00Z is not before to"},
		{Request{Pattern: "all", From: "1500-01-01T00:00:00Z"}, "from: 1500-01-01T00:00:00Z is outside the years"},
		{Request{Pattern: "all", Limit: -1}, "limit: -1 is negative"},
		{Request{Pattern: "all", Limit: MaxLimit + 1}, "limit: 10001 is over the limit of 10000"},
		{Request{Pattern: "all", After: "%%%"}, "after: cursor is not base64url"},
		{Request{Pattern: "", Where: "temp > 1"}, "pattern: pattern is empty"},
		{Request{Pattern: "all", Where: "temp >"}, "where: unexpected end of expression at column 6"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Prepare(tt.req)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestPrepareValid(t *testing.T) {
	q, err := Prepare(Request{Pattern: "multiple(b, a, b)", Stream: "temps", From: "2024-05-01T12:00:00.5+02:00", To: "2024-05-01T13:00:00Z", Limit: MaxLimit, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != Multiple || strings.Join(q.Nodes, ",") != "b,a" || q.String() != "multiple(b,a)" || q.Stream != "temps" ||
		!q.HasFrom || q.From != mustTime("2024-05-01T10:00:00.5Z") || !q.HasTo || q.To != mustTime("2024-05-01T13:00:00Z") ||
		q.Limit != MaxLimit || !q.Count || q.After() != nil {
		t.Fatalf("%+v", q)
	}
	q, err = Prepare(Request{Pattern: "any", After: EncodeCursor(Position{TS: 5, Node: "n", Epoch: "e", Seq: 2})})
	if err != nil {
		t.Fatal(err)
	}
	if q.Limit != DefaultLimit || q.HasFrom || q.HasTo || q.Nodes != nil || *q.After() != (Position{TS: 5, Node: "n", Epoch: "e", Seq: 2}) {
		t.Fatalf("%+v", q)
	}
}
