package pattern

import (
	"github.com/expr-lang/expr/ast"
)

// fastPredicate evaluates a where-expression made only of comparisons over
// columns, without decoding events: data paths and node, stream and seq,
// compared with ==, !=, <, <=, > and >= to each other or to literals, joined
// with &&, || and !. It gives exactly what the expr program gives on the same
// event — the same missing-field rule, numeric comparison of ints and floats,
// equality false across kinds, and an ordering across kinds (or any use of a
// non-boolean as a boolean) an error that fails the event — so that the two
// are interchangeable; an event whose value at a path it reads is an object
// or an array is left to the expr program.
type fastPredicate struct {
	root     fnode
	paths    [][]string // the data paths it reads, each once
	required []int      // indexes in paths of those that must be present
}

// fval is a value of the fast evaluator.
type fval struct {
	k ColKind
	i int64
	f float64
	s string
}

// frow is one event as the fast evaluator reads it.
type frow struct {
	cols   []*Column // bound to fastPredicate.paths
	i      int
	node   string
	stream string
	seq    uint64
}

// fnode is one node of the fast evaluator's tree; ok is false for a runtime
// error, which fails the event.
type fnode interface {
	eval(r *frow) (v fval, ok bool)
}

// compileFast returns the fast form of a parsed where-expression, or nil when
// it uses anything beyond what fastPredicate evaluates.
func compileFast(n ast.Node, required [][]string) *fastPredicate {
	fp := &fastPredicate{}
	index := map[string]int{}
	var build func(n ast.Node) fnode
	build = func(n ast.Node) fnode {
		switch n := n.(type) {
		case *ast.IntegerNode:
			return constNode{fval{k: ColInt, i: int64(n.Value)}}
		case *ast.FloatNode:
			return constNode{fval{k: ColFloat, f: n.Value}}
		case *ast.StringNode:
			return constNode{fval{k: ColString, s: n.Value}}
		case *ast.BoolNode:
			if n.Value {
				return constNode{fval{k: ColTrue}}
			}
			return constNode{fval{k: ColFalse}}
		case *ast.NilNode:
			return constNode{fval{k: ColNull}}
		case *ast.IdentifierNode:
			switch n.Value {
			case envNode:
				return envNodeNode{}
			case envStream:
				return envStreamNode{}
			case envSeq:
				return envSeqNode{}
			case envTS, "$env":
				return nil
			}
			return pathLeaf(fp, index, []string{n.Value})
		case *ast.MemberNode:
			keys, ok := memberPath(n)
			if !ok || isEnvelope(keys[0]) || keys[0] == "$env" {
				return nil
			}
			return pathLeaf(fp, index, keys)
		case *ast.UnaryNode:
			x := build(n.Node)
			if x == nil {
				return nil
			}
			switch n.Operator {
			case "!", "not":
				return notNode{x}
			case "-":
				if c, ok := x.(constNode); ok && (c.v.k == ColInt || c.v.k == ColFloat) {
					return constNode{fval{k: c.v.k, i: -c.v.i, f: -c.v.f}}
				}
			case "+":
				if c, ok := x.(constNode); ok && (c.v.k == ColInt || c.v.k == ColFloat) {
					return c
				}
			}
			return nil
		case *ast.BinaryNode:
			l, r := build(n.Left), build(n.Right)
			if l == nil || r == nil {
				return nil
			}
			var op cmpOp
			switch n.Operator {
			case "&&", "and":
				return andNode{l, r}
			case "||", "or":
				return orNode{l, r}
			case "==":
				op = opEq
			case "!=":
				op = opNe
			case "<":
				op = opLt
			case "<=":
				op = opLe
			case ">":
				op = opGt
			case ">=":
				op = opGe
			default:
				return nil
			}
			// A field against a literal, the common case, reads the column
			// without building values.
			if p, ok := l.(pathNode); ok {
				if c, ok := r.(constNode); ok {
					return pathCmp{col: p.col, c: c.v, op: op}
				}
			}
			if c, ok := l.(constNode); ok {
				if p, ok := r.(pathNode); ok {
					return pathCmp{col: p.col, c: c.v, op: op.flip()}
				}
			}
			return cmpNode{l, r, op}
		}
		return nil
	}
	root := build(n)
	if root == nil {
		return nil
	}
	// A bare literal or field is not a boolean test: leave those rare
	// expressions to expr, which checks the result's type.
	switch root.(type) {
	case andNode, orNode, notNode, cmpNode, pathCmp:
	default:
		return nil
	}
	for _, p := range required {
		i, ok := index[pathKey(p)]
		if !ok {
			return nil
		}
		fp.required = append(fp.required, i)
	}
	fp.root = root
	return fp
}

// memberPath returns the keys of a static, non-optional member chain rooted at
// an identifier (gps.lat, gps["lat"]).
func memberPath(n *ast.MemberNode) ([]string, bool) {
	var rev []string
	var cur ast.Node = n
	for {
		switch m := cur.(type) {
		case *ast.MemberNode:
			key, isStr := m.Property.(*ast.StringNode)
			if !isStr || m.Method || m.Optional {
				return nil, false
			}
			rev = append(rev, key.Value)
			cur = m.Node
		case *ast.IdentifierNode:
			keys := []string{m.Value}
			for i := len(rev) - 1; i >= 0; i-- {
				keys = append(keys, rev[i])
			}
			return keys, true
		default:
			return nil, false
		}
	}
}

func pathLeaf(fp *fastPredicate, index map[string]int, path []string) fnode {
	if len(path) > MaxColumnDepth {
		return nil
	}
	k := pathKey(path)
	i, ok := index[k]
	if !ok {
		i = len(fp.paths)
		index[k] = i
		fp.paths = append(fp.paths, path)
	}
	return pathNode{i}
}

// bind returns the columns of fp's paths in c, and false when c cannot answer
// for some path (it has no column for it and is not complete).
func (fp *fastPredicate) bind(c *Columns, dst []*Column) ([]*Column, bool) {
	dst = dst[:0]
	for _, p := range fp.paths {
		col := c.Column(p)
		if col == nil && (!c.Complete || c.Has(p)) {
			return nil, false
		}
		dst = append(dst, col)
	}
	return dst, true
}

// fastResult is what the fast evaluator says of one event.
type fastResult uint8

const (
	fastNo fastResult = iota
	fastYes
	fastUnsure // a value it reads is an object or an array: ask expr
)

// eval evaluates fp on event i of the bound columns.
func (fp *fastPredicate) eval(r *frow) fastResult {
	for _, col := range r.cols {
		if col != nil && col.Kind[r.i] == ColComplex {
			return fastUnsure
		}
	}
	for _, j := range fp.required {
		if col := r.cols[j]; col == nil || col.Kind[r.i] == ColMissing {
			return fastNo
		}
	}
	v, ok := fp.root.eval(r)
	if ok && v.k == ColTrue {
		return fastYes
	}
	return fastNo
}

type constNode struct{ v fval }

func (c constNode) eval(*frow) (fval, bool) { return c.v, true }

type pathNode struct{ col int }

func (p pathNode) eval(r *frow) (fval, bool) {
	col := r.cols[p.col]
	if col == nil {
		return fval{k: ColMissing}, true
	}
	switch k := col.Kind[r.i]; k {
	case ColInt:
		return fval{k: k, i: col.Int[r.i]}, true
	case ColFloat:
		return fval{k: k, f: col.Float[r.i]}, true
	case ColString:
		return fval{k: k, s: col.Dict[col.Str[r.i]]}, true
	default:
		return fval{k: k}, true
	}
}

type envNodeNode struct{}

func (envNodeNode) eval(r *frow) (fval, bool) { return fval{k: ColString, s: r.node}, true }

type envStreamNode struct{}

func (envStreamNode) eval(r *frow) (fval, bool) { return fval{k: ColString, s: r.stream}, true }

type envSeqNode struct{}

func (envSeqNode) eval(r *frow) (fval, bool) { return fval{k: ColInt, i: int64(r.seq)}, true }

// asBool reads v as a boolean; anything else is a runtime error.
func asBool(v fval) (bool, bool) {
	switch v.k {
	case ColTrue:
		return true, true
	case ColFalse:
		return false, true
	}
	return false, false
}

func boolVal(b bool) fval {
	if b {
		return fval{k: ColTrue}
	}
	return fval{k: ColFalse}
}

type notNode struct{ x fnode }

func (n notNode) eval(r *frow) (fval, bool) {
	v, ok := n.x.eval(r)
	if !ok {
		return v, false
	}
	b, ok := asBool(v)
	return boolVal(!b), ok
}

type andNode struct{ l, r fnode }

func (n andNode) eval(r *frow) (fval, bool) {
	lv, ok := n.l.eval(r)
	if !ok {
		return lv, false
	}
	lb, ok := asBool(lv)
	if !ok || !lb {
		return boolVal(false), ok
	}
	rv, ok := n.r.eval(r)
	if !ok {
		return rv, false
	}
	rb, ok := asBool(rv)
	return boolVal(rb), ok
}

type orNode struct{ l, r fnode }

func (n orNode) eval(r *frow) (fval, bool) {
	lv, ok := n.l.eval(r)
	if !ok {
		return lv, false
	}
	lb, ok := asBool(lv)
	if !ok || lb {
		return boolVal(true), ok
	}
	rv, ok := n.r.eval(r)
	if !ok {
		return rv, false
	}
	rb, ok := asBool(rv)
	return boolVal(rb), ok
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

type cmpNode struct {
	l, r fnode
	op   cmpOp
}

func (n cmpNode) eval(r *frow) (fval, bool) {
	a, ok := n.l.eval(r)
	if !ok {
		return a, false
	}
	b, ok := n.r.eval(r)
	if !ok {
		return b, false
	}
	switch n.op {
	case opEq:
		return boolVal(equal(a, b)), true
	case opNe:
		return boolVal(!equal(a, b)), true
	}
	c, ok := compare(a, b)
	if !ok {
		return fval{}, false
	}
	switch n.op {
	case opLt:
		return boolVal(c < 0), true
	case opLe:
		return boolVal(c <= 0), true
	case opGt:
		return boolVal(c > 0), true
	}
	return boolVal(c >= 0), true
}

func isNum(v fval) bool { return v.k == ColInt || v.k == ColFloat }

func (v fval) float() float64 {
	if v.k == ColInt {
		return float64(v.i)
	}
	return v.f
}

// equal is expr's ==: numbers compare as numbers, other values only with
// their own kind, and nil equals nil.
func equal(a, b fval) bool {
	switch {
	case a.k == ColInt && b.k == ColInt:
		return a.i == b.i
	case isNum(a) && isNum(b):
		return a.float() == b.float()
	case a.k == ColString && b.k == ColString:
		return a.s == b.s
	case (a.k == ColTrue || a.k == ColFalse) && (b.k == ColTrue || b.k == ColFalse):
		return a.k == b.k
	case a.k == ColNull && b.k == ColNull:
		return true
	}
	return false
}

// compare is expr's ordering: numbers with numbers and strings with strings;
// anything else is a runtime error.
func compare(a, b fval) (int, bool) {
	switch {
	case a.k == ColInt && b.k == ColInt:
		return cmp3(a.i < b.i, a.i > b.i), true
	case isNum(a) && isNum(b):
		x, y := a.float(), b.float()
		return cmp3(x < y, x > y), true
	case a.k == ColString && b.k == ColString:
		return cmp3(a.s < b.s, a.s > b.s), true
	}
	return 0, false
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

// flip returns the operator with its operands swapped: 3 < x is x > 3.
func (op cmpOp) flip() cmpOp {
	switch op {
	case opLt:
		return opGt
	case opLe:
		return opGe
	case opGt:
		return opLt
	case opGe:
		return opLe
	}
	return op
}

// result turns a three-way comparison into the operator's answer.
func (op cmpOp) result(c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

// pathCmp compares a column's value with a literal.
type pathCmp struct {
	col int
	c   fval
	op  cmpOp
}

func (p pathCmp) eval(r *frow) (fval, bool) {
	col := r.cols[p.col]
	if col == nil {
		return cmpNode{pathNode{p.col}, constNode{p.c}, p.op}.eval(r)
	}
	i := r.i
	switch col.Kind[i] {
	case ColFloat:
		if isNum(p.c) {
			x, y := col.Float[i], p.c.float()
			return boolVal(p.op.result(cmp3(x < y, x > y))), true
		}
	case ColInt:
		if p.c.k == ColInt {
			x, y := col.Int[i], p.c.i
			return boolVal(p.op.result(cmp3(x < y, x > y))), true
		}
		if p.c.k == ColFloat {
			x, y := float64(col.Int[i]), p.c.f
			return boolVal(p.op.result(cmp3(x < y, x > y))), true
		}
	case ColString:
		if p.c.k == ColString {
			x := col.Dict[col.Str[i]]
			return boolVal(p.op.result(cmp3(x < p.c.s, x > p.c.s))), true
		}
	}
	return cmpNode{pathNode{p.col}, constNode{p.c}, p.op}.eval(r)
}
