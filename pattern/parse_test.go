package pattern

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParsePatternValid(t *testing.T) {
	tests := []struct {
		in    string
		kind  Kind
		nodes []string
		text  string
	}{
		{in: "single(a)", kind: Single, nodes: []string{"a"}, text: "single(a)"},
		{in: "SINGLE( pi-1 )", kind: Single, nodes: []string{"pi-1"}, text: "single(pi-1)"},
		{in: "  Single\t(\nA_b-9\r)  ", kind: Single, nodes: []string{"A_b-9"}, text: "single(A_b-9)"},
		{in: "multiple(a)", kind: Multiple, nodes: []string{"a"}, text: "multiple(a)"},
		{in: "multiple(b,a)", kind: Multiple, nodes: []string{"b", "a"}, text: "multiple(b,a)"},
		{in: "multiple( b , a , b,a ,c )", kind: Multiple, nodes: []string{"b", "a", "c"}, text: "multiple(b,a,c)"},
		{in: "MultiPle(x,X)", kind: Multiple, nodes: []string{"x", "X"}, text: "multiple(x,X)"},
		{in: "all", kind: All, text: "all"},
		{in: " ALL ", kind: All, text: "all"},
		{in: "any", kind: Any, text: "any"},
		{in: "aNy\n", kind: Any, text: "any"},
		{in: "single(" + strings.Repeat("z", 64) + ")", kind: Single, nodes: []string{strings.Repeat("z", 64)}, text: "single(" + strings.Repeat("z", 64) + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			kind, nodes, err := parsePattern(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if kind != tt.kind || !slices.Equal(nodes, tt.nodes) {
				t.Fatalf("got %v %q, want %v %q", kind, nodes, tt.kind, tt.nodes)
			}
			if got := canonical(kind, nodes); got != tt.text {
				t.Fatalf("canonical %q, want %q", got, tt.text)
			}
			// The canonical text parses to the same pattern.
			k2, n2, err := parsePattern(tt.text)
			if err != nil || k2 != kind || !slices.Equal(n2, nodes) {
				t.Fatalf("canonical text %q parses to %v %q %v", tt.text, k2, n2, err)
			}
		})
	}
}

func TestParsePatternInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "pattern: pattern is empty; want single(node), multiple(node,...), all or any"},
		{"   ", "pattern: pattern is empty; want single(node), multiple(node,...), all or any"},
		{"some(a)", `pattern: unknown pattern "some" at column 1; want single, multiple, all or any`},
		{"  singles(a)", `pattern: unknown pattern "singles" at column 3; want single, multiple, all or any`},
		{"(a)", `pattern: expected single, multiple, all or any at column 1, found "("`},
		{"single", `pattern: expected "(" at column 7, found end of pattern`},
		{"single a", `pattern: expected "(" at column 8, found "a"`},
		{"single(", `pattern: expected a node name at column 8, found end of pattern`},
		{"single()", `pattern: expected a node name at column 8, found ")"`},
		{"single(a", `pattern: expected ")" at column 9, found end of pattern`},
		{"multiple(a, b", `pattern: expected "," or ")" at column 14, found end of pattern`},
		{"single(a,b)", `pattern: expected ")" at column 9, found "," (single takes one node name; use multiple)`},
		{"single(a b)", `pattern: expected ")" at column 10, found "b"`},
		{"multiple(a,)", `pattern: expected a node name at column 12, found ")"`},
		{"multiple(a,,b)", `pattern: expected a node name at column 12, found ","`},
		{"multiple(a;b)", `pattern: expected "," or ")" at column 11, found ";"`},
		{"multiple(a.b)", `pattern: expected "," or ")" at column 11, found "."`},
		{"multiple(a,b))", `pattern: expected end of pattern at column 14, found ")"`},
		{"single(a) x", `pattern: expected end of pattern at column 11, found "x"`},
		{"single(_hb)", `pattern: node name "_hb" at column 8 must start with a letter or digit`},
		{"single(-a)", `pattern: node name "-a" at column 8 must start with a letter or digit`},
		{"single(" + strings.Repeat("n", 65) + ")", `pattern: node name at column 8 is 65 bytes long, the limit is 64`},
		{"single(*)", `pattern: expected a node name at column 8, found "*"`},
		{"single(>)", `pattern: expected a node name at column 8, found ">"`},
		{"all()", `pattern: expected end of pattern at column 4, found "(" (all takes no node names)`},
		{"any x", `pattern: expected end of pattern at column 5, found "x" (any takes no node names)`},
		// Columns count characters, not bytes.
		{"single(é)", `pattern: expected a node name at column 8, found "é"`},
		{"single(ab€)", `pattern: expected ")" at column 10, found "€"`},
		{"é", `pattern: expected single, multiple, all or any at column 1, found "é"`},
		{"single(\xff)", `pattern: expected a node name at column 8, found byte 0xff`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, _, err := parsePattern(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestParsePatternLimits(t *testing.T) {
	names := make([]string, MaxNamedNodes+1)
	for i := range names {
		names[i] = "n" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
	}
	if _, nodes, err := parsePattern("multiple(" + strings.Join(names[:MaxNamedNodes], ",") + ")"); err != nil || len(nodes) != MaxNamedNodes {
		t.Fatalf("%d names: %d nodes, %v", MaxNamedNodes, len(nodes), err)
	}
	_, _, err := parsePattern("multiple(" + strings.Join(names, ",") + ")")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than 1024 nodes") {
		t.Fatalf("%d names: %v", len(names), err)
	}
	// Repeats do not count against the limit.
	rep := strings.Repeat("a,", 3000) + "b"
	if _, nodes, err := parsePattern("multiple(" + rep + ")"); err != nil || !slices.Equal(nodes, []string{"a", "b"}) {
		t.Fatalf("repeats: %q %v", nodes, err)
	}
	_, _, err = parsePattern(strings.Repeat(" ", MaxPatternBytes) + "all")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("long pattern: %v", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Single: "single", Multiple: "multiple", All: "all", Any: "any", Kind(9): "kind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q, want %q", int(k), k.String(), want)
		}
	}
}
