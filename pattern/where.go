package pattern

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/tributary-edge/tributary/stream"
)

// MaxWhereBytes is the longest where-expression accepted.
const MaxWhereBytes = 16 << 10

// Envelope names, visible to every expression; they hide data fields of the
// same name.
const (
	envNode   = "node"
	envStream = "stream"
	envSeq    = "seq"
	envTS     = "ts"
)

// envelopeTypes declares the envelope names with their types, so that the
// compiler can check their use (node > 3 is an error before any event is read).
var envelopeTypes = map[string]any{envNode: "", envStream: "", envSeq: uint64(0), envTS: time.Time{}}

// predicate is a compiled where-expression. It is safe for concurrent use.
type predicate struct {
	prog *vm.Program
	// required are the data paths the expression names outside ?. and the
	// left side of ??; an event lacking any of them does not match.
	required [][]string
	// keep holds the top-level data fields the expression reads; nil when it
	// reads $env as a whole, so that every field must be decoded.
	keep *fieldSet
	// useNode etc. say which envelope names the expression reads.
	useNode, useStream, useSeq, useTS bool
	// perEvent and perByte are the estimated steps per event and per byte of
	// its data (see MaxWhereCost).
	perEvent, perByte float64
	pool              sync.Pool // of *evaluator
	// fast evaluates the expression over columns when it is made only of
	// comparisons; nil otherwise.
	fast *fastPredicate
}

// evaluator is the per-goroutine state of a predicate: the VM and the
// environment map, both reused from event to event.
type evaluator struct {
	vm  vm.VM
	env map[string]any
}

// compileWhere checks and compiles a where-expression. Every error wraps
// ErrInvalid and reads "where: <what> at column N".
func compileWhere(src string) (*predicate, error) {
	if len(src) > MaxWhereBytes {
		return nil, invalidf("where: %d bytes is over the limit of %d", len(src), MaxWhereBytes)
	}
	cfg := conf.CreateNew()
	cfg.MaxNodes = MaxWhereNodes
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, whereError(err)
	}
	a := analyzer{src: src, roots: map[string]string{}, shadowed: map[int]bool{}}
	a.walk(tree.Node, false)
	if a.err != nil {
		return nil, a.err
	}
	perEvent, perByte, err := estimateCost(src, tree.Node)
	if err != nil {
		return nil, err
	}
	prog, err := expr.Compile(src,
		expr.MaxNodes(MaxWhereNodes),
		expr.Env(envelopeTypes),
		expr.AllowUndefinedVariables(),
		expr.AsBool(),
		expr.Timezone("UTC"),
		// now() would make a query's answer depend on when each page is read;
		// from and to express time ranges instead.
		expr.DisableBuiltin("now"),
		expr.Patch(shadowPatch(a.shadowed)),
	)
	if err != nil {
		return nil, whereError(err)
	}
	p := &predicate{prog: prog, required: minimalPaths(a.paths), perEvent: perEvent, perByte: perByte,
		useNode: a.envelope[envNode], useStream: a.envelope[envStream], useSeq: a.envelope[envSeq], useTS: a.envelope[envTS]}
	if a.wholeEnv {
		p.useNode, p.useStream, p.useSeq, p.useTS = true, true, true, true
	} else {
		names := make([]string, 0, len(a.roots))
		for n := range a.roots {
			names = append(names, n)
		}
		slices.Sort(names)
		p.keep = newFieldSet(names...)
	}
	p.pool.New = func() any { return &evaluator{env: make(map[string]any, 8)} }
	if !a.wholeEnv {
		p.fast = compileFast(tree.Node, p.required)
	}
	return p, nil
}

// shadowPatch rewrites the bare identifiers at the given offsets into $env
// lookups, so that a data field called count or max is read as the field.
type shadowPatch map[int]bool

func (s shadowPatch) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && s[id.Location().From] {
		ast.Patch(node, &ast.MemberNode{Node: &ast.IdentifierNode{Value: "$env"}, Property: &ast.StringNode{Value: id.Value}})
	}
}

var tokenRE = regexp.MustCompile(`\b(?:Operator|Bracket|Identifier|Number|String)\(("(?:[^"\\]|\\.)*")\)`)

var notBoolRE = regexp.MustCompile(`^expected bool, but got (.*)$`)

// whereError turns a compile error into "where: <what> at column N".
func whereError(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		if m := notBoolRE.FindStringSubmatch(err.Error()); m != nil {
			return invalidf("where: the expression gives %s; it must give a boolean", m[1])
		}
		return invalidf("where: %v", err)
	}
	msg := tokenRE.ReplaceAllString(fe.Message, "$1")
	if strings.Contains(msg, "exceeds maximum allowed nodes") {
		msg = fmt.Sprintf("the expression has more than %d syntax nodes", MaxWhereNodes)
	}
	if msg == "unexpected token EOF" {
		msg = "unexpected end of expression"
	}
	if fe.Line > 1 {
		return invalidf("where: %s at line %d, column %d", msg, fe.Line, fe.Column+1)
	}
	return invalidf("where: %s at column %d", msg, fe.Column+1)
}

// analyzer walks the parsed expression to learn which data fields it reads, and
// to refuse calls of functions that do not exist (with undefined variables
// allowed, the compiler would accept them and fail on every event).
type analyzer struct {
	src      string
	lets     []string
	shadowed map[int]bool // offsets of bare identifiers that name builtins
	paths    [][]string
	roots    map[string]string
	envelope map[string]bool
	wholeEnv bool
	err      error
}

func (a *analyzer) fail(n ast.Node, format string, args ...any) {
	if a.err != nil {
		return
	}
	fe := &file.Error{Location: n.Location()}
	fe.Bind(file.NewSource(a.src))
	where := ""
	if fe.Line > 1 {
		where = " at line " + strconv.Itoa(fe.Line) + ", column " + strconv.Itoa(fe.Column+1)
	} else {
		where = " at column " + strconv.Itoa(fe.Column+1)
	}
	a.err = invalidf("where: "+format+where, args...)
}

func (a *analyzer) isLet(name string) bool {
	for _, l := range a.lets {
		if l == name {
			return true
		}
	}
	return false
}

// walk visits n; optional is true below the left side of ??, where a missing
// field is the expression's own business.
func (a *analyzer) walk(n ast.Node, optional bool) {
	switch n := n.(type) {
	case nil:
	case *ast.IdentifierNode:
		a.name(n, n.Value, nil, -1, optional)
	case *ast.MemberNode:
		if root, keys, firstOpt, ok := a.staticPath(n); ok {
			if root.Value == "$env" {
				// $env.temp is temp, and $env?.temp an optional temp.
				a.name(nil, keys[0], keys[1:], firstOpt-1, optional || firstOpt == 0)
			} else {
				a.name(root, root.Value, keys, firstOpt, optional)
			}
			return
		}
		a.walk(n.Node, optional)
		a.walk(n.Property, optional)
	case *ast.ChainNode:
		a.walk(n.Node, optional)
	case *ast.UnaryNode:
		a.walk(n.Node, optional)
	case *ast.BinaryNode:
		a.walk(n.Left, optional || n.Operator == "??")
		a.walk(n.Right, optional)
	case *ast.SliceNode:
		a.walk(n.Node, optional)
		a.walk(n.From, optional)
		a.walk(n.To, optional)
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			if id.Value == "now" {
				a.fail(n, "now() is not available; use from and to for time ranges")
			} else {
				a.fail(n, "unknown function %s()", id.Value)
			}
		} else {
			a.walk(n.Callee, optional)
		}
		for _, arg := range n.Arguments {
			a.walk(arg, optional)
		}
	case *ast.BuiltinNode:
		if n.Name == "now" {
			a.fail(n, "now() is not available; use from and to for time ranges")
		}
		for _, arg := range n.Arguments {
			a.walk(arg, optional)
		}
	case *ast.PredicateNode:
		a.walk(n.Node, optional)
	case *ast.VariableDeclaratorNode:
		a.walk(n.Value, optional)
		a.lets = append(a.lets, n.Name)
		a.walk(n.Expr, optional)
		a.lets = a.lets[:len(a.lets)-1]
	case *ast.SequenceNode:
		for _, m := range n.Nodes {
			a.walk(m, optional)
		}
	case *ast.ConditionalNode:
		a.walk(n.Cond, optional)
		a.walk(n.Exp1, optional)
		a.walk(n.Exp2, optional)
	case *ast.ArrayNode:
		for _, m := range n.Nodes {
			a.walk(m, optional)
		}
	case *ast.MapNode:
		for _, m := range n.Pairs {
			a.walk(m, optional)
		}
	case *ast.PairNode:
		a.walk(n.Key, optional)
		a.walk(n.Value, optional)
	}
}

// name records a read of the identifier root followed by member keys. The
// path is required up to the base of its first ?. access, keys[firstOpt]
// (all of it when firstOpt is -1), and not at all when optional. id is the
// identifier's node, nil when it came from $env.
func (a *analyzer) name(id *ast.IdentifierNode, root string, keys []string, firstOpt int, optional bool) {
	switch {
	case id != nil && a.isLet(root):
	case root == "$env":
		if keys == nil {
			a.wholeEnv = true
		}
	case isEnvelope(root):
		if a.envelope == nil {
			a.envelope = map[string]bool{}
		}
		a.envelope[root] = true
	default:
		a.roots[root] = root
		if id != nil && isBuiltin(root) {
			// A bare builtin name would be the function; the data field of
			// that name is meant.
			a.shadowed[id.Location().From] = true
		}
		path := append([]string{root}, keys...)
		if firstOpt >= 0 {
			// gps?.lat: gps may be missing, and so may anything after it.
			path = path[:firstOpt]
		}
		if !optional && len(path) > 0 {
			a.paths = append(a.paths, path)
		}
	}
}

func isBuiltin(name string) bool {
	_, ok := builtin.Index[name]
	return ok
}

// staticPath reports whether n is an identifier followed only by member
// accesses with constant string keys (gps.lat, gps["lat"], gps?.lat). It
// returns the identifier, the keys, and the index in keys of the first
// optional access (-1 when there is none).
func (a *analyzer) staticPath(n *ast.MemberNode) (root *ast.IdentifierNode, keys []string, firstOpt int, ok bool) {
	var rev []string
	opt := -1 // counted from the end while walking down
	var cur ast.Node = n
	for {
		switch m := cur.(type) {
		case *ast.MemberNode:
			key, isStr := m.Property.(*ast.StringNode)
			if !isStr || m.Method {
				return nil, nil, 0, false
			}
			if m.Optional {
				opt = len(rev)
			}
			rev = append(rev, key.Value)
			cur = m.Node
		case *ast.ChainNode:
			cur = m.Node
		case *ast.IdentifierNode:
			keys = make([]string, len(rev))
			for i, k := range rev {
				keys[len(rev)-1-i] = k
			}
			firstOpt = -1
			if opt >= 0 {
				firstOpt = len(rev) - 1 - opt
			}
			return m, keys, firstOpt, true
		default:
			return nil, nil, 0, false
		}
	}
}

func isEnvelope(name string) bool {
	return name == envNode || name == envStream || name == envSeq || name == envTS
}

// eval reports whether ev satisfies the predicate. A data field the expression
// requires that the event lacks, data that is not a JSON object, and any
// runtime error (nil > 30, a string plus a number) make it false.
func (p *predicate) eval(e *evaluator, ev *stream.Event) bool {
	env := e.env
	if len(env) > 0 {
		clear(env)
	}
	if p.keep == nil || len(p.keep.names) > 0 {
		if len(ev.Data) > 0 {
			if err := decodeObject(ev.Data, env, p.keep); err != nil {
				return false
			}
		}
	}
	if p.useNode {
		env[envNode] = ev.Node
	}
	if p.useStream {
		env[envStream] = ev.Stream
	}
	if p.useSeq {
		env[envSeq] = ev.Seq
	}
	if p.useTS {
		env[envTS] = time.Unix(0, ev.TS).UTC()
	}
	for _, path := range p.required {
		if !present(env, path) {
			return false
		}
	}
	out, err := e.vm.Run(p.prog, env)
	if err != nil {
		return false
	}
	ok, _ := out.(bool)
	return ok
}

// present reports whether the data path exists in env: every step but the last
// must be an object holding the next key.
func present(env map[string]any, path []string) bool {
	v, ok := env[path[0]]
	if !ok {
		return false
	}
	for _, k := range path[1:] {
		m, isMap := v.(map[string]any)
		if !isMap {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

func (p *predicate) get() *evaluator  { return p.pool.Get().(*evaluator) }
func (p *predicate) put(e *evaluator) { p.pool.Put(e) }

// minimalPaths drops duplicate paths and paths that extend another one: when
// gps must be present and so must gps.lat, checking gps.lat is enough.
func minimalPaths(paths [][]string) [][]string {
	key := func(p []string) string { return strings.Join(p, "\x00") }
	var out [][]string
	for i, p := range paths {
		redundant := false
		for j, q := range paths {
			if i == j {
				continue
			}
			if len(q) > len(p) && slices.Equal(q[:len(p)], p) {
				redundant = true // q extends p
				break
			}
			if j < i && key(q) == key(p) {
				redundant = true // an earlier duplicate
				break
			}
		}
		if !redundant {
			out = append(out, p)
		}
	}
	return out
}
