package pattern

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tributary-edge/tributary/stream"
)

// Kind is the kind of a pattern: which nodes are in scope and when it holds.
type Kind int

// Pattern kinds.
const (
	// Single is single(n): one named node.
	Single Kind = iota + 1
	// Multiple is multiple(a,b,...): one or more named nodes.
	Multiple
	// All is all: every known node; it holds when each of them has a match.
	All
	// Any is any: every known node; it holds when at least one has a match.
	Any
)

// String returns the pattern keyword of k: "single", "multiple", "all" or "any".
func (k Kind) String() string {
	switch k {
	case Single:
		return "single"
	case Multiple:
		return "multiple"
	case All:
		return "all"
	case Any:
		return "any"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Limits on pattern text.
const (
	// MaxPatternBytes is the longest pattern text accepted.
	MaxPatternBytes = 128 << 10
	// MaxNamedNodes is the most distinct nodes multiple(...) may name.
	MaxNamedNodes = 1024
)

// parsePattern parses pattern text into its kind and, for single and multiple,
// the named nodes, deduplicated, in the order given. Every error wraps
// ErrInvalid and gives the 1-based column, in characters, where it went wrong.
func parsePattern(s string) (Kind, []string, error) {
	if len(s) > MaxPatternBytes {
		return 0, nil, invalidf("pattern: %d bytes is over the limit of %d", len(s), MaxPatternBytes)
	}
	p := patternParser{s: s}
	p.space()
	if p.pos == len(s) {
		return 0, nil, invalidf("pattern: pattern is empty; want single(node), multiple(node,...), all or any")
	}
	start := p.pos
	word := p.word()
	if word == "" {
		return 0, nil, p.expected("single, multiple, all or any")
	}
	var kind Kind
	switch strings.ToLower(word) {
	case "single":
		kind = Single
	case "multiple":
		kind = Multiple
	case "all":
		kind = All
	case "any":
		kind = Any
	default:
		return 0, nil, invalidf("pattern: unknown pattern %q at column %d; want single, multiple, all or any", word, p.column(start))
	}
	p.space()
	if kind == All || kind == Any {
		if p.pos < len(s) {
			return 0, nil, invalidf("pattern: expected end of pattern at column %d, found %s (%s takes no node names)", p.column(p.pos), p.found(), kind)
		}
		return kind, nil, nil
	}
	if !p.take('(') {
		return 0, nil, p.expected(`"("`)
	}
	var nodes []string
	seen := map[string]bool{}
	for {
		p.space()
		at := p.pos
		name := p.word()
		if name == "" {
			return 0, nil, p.expected("a node name")
		}
		if err := checkName(name, p.column(at)); err != nil {
			return 0, nil, err
		}
		if !seen[name] {
			if len(nodes) == MaxNamedNodes {
				return 0, nil, invalidf("pattern: %s names more than %d nodes (at column %d)", kind, MaxNamedNodes, p.column(at))
			}
			seen[name] = true
			nodes = append(nodes, name)
		}
		p.space()
		if p.take(')') {
			break
		}
		if kind == Single {
			if p.pos < len(s) && s[p.pos] == ',' {
				return 0, nil, invalidf(`pattern: expected ")" at column %d, found "," (single takes one node name; use multiple)`, p.column(p.pos))
			}
			return 0, nil, p.expected(`")"`)
		}
		if !p.take(',') {
			return 0, nil, p.expected(`"," or ")"`)
		}
	}
	p.space()
	if p.pos < len(s) {
		return 0, nil, p.expected("end of pattern")
	}
	return kind, nodes, nil
}

// checkName applies the node name rule to a name token found at column col.
func checkName(name string, col int) error {
	if len(name) > stream.MaxNameLen {
		return invalidf("pattern: node name at column %d is %d bytes long, the limit is %d", col, len(name), stream.MaxNameLen)
	}
	if c := name[0]; c == '_' || c == '-' {
		return invalidf("pattern: node name %q at column %d must start with a letter or digit", name, col)
	}
	if err := stream.ValidateName("node", name); err != nil {
		return invalidf("pattern: at column %d: %v", col, err)
	}
	return nil
}

func canonical(kind Kind, nodes []string) string {
	if kind == Single || kind == Multiple {
		return kind.String() + "(" + strings.Join(nodes, ",") + ")"
	}
	return kind.String()
}

type patternParser struct {
	s   string
	pos int // byte offset
}

func (p *patternParser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// word consumes a run of name characters: letters, digits, '_' and '-'.
func (p *patternParser) word() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

func (p *patternParser) take(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// column returns the 1-based character column of byte offset off.
func (p *patternParser) column(off int) int {
	return utf8.RuneCountInString(p.s[:off]) + 1
}

func (p *patternParser) found() string {
	if p.pos >= len(p.s) {
		return "end of pattern"
	}
	r, size := utf8.DecodeRuneInString(p.s[p.pos:])
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("byte 0x%02x", p.s[p.pos])
	}
	return fmt.Sprintf("%q", string(r))
}

func (p *patternParser) expected(what string) error {
	return invalidf("pattern: expected %s at column %d, found %s", what, p.column(p.pos), p.found())
}
