package pattern

import (
	"math"
	"strconv"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Cost limits of a where-expression, checked when it is compiled, before any
// event is read. A predicate runs once per event the query reads, on the
// index's workers: all(1..900000, # > 0) looked cheap and cost 69 ms of CPU
// per event, and eight such queries held every reader of the index until the
// query time-out. The estimate counts steps, about one operation of expr's
// machine each (BenchmarkWhereCost measures what one costs).
const (
	// MaxWhereNodes is the most syntax nodes an expression may have (expr's
	// node limit). A list of 1,500 node names fits.
	MaxWhereNodes = 2000
	// MaxRangeLen is the most elements a range (a..b) may have. Its bounds
	// must be integer literals.
	MaxRangeLen = 1000
	// MaxWhereCost is the most steps an expression may take per event, not
	// counting the parts that grow with the event's own data: 15 to 70 ns
	// each, so at most about 30 to 140 µs of CPU per event, where an ordinary
	// predicate such as temp > 30 && site == "north" is 13 steps.
	// all(1..300, # > 0) is about 1,800.
	MaxWhereCost = 2000
	// MaxWhereCostPerByte is the most steps an expression may take per byte of
	// the event's data, for what grows with it: a closure over an array field
	// (any(tags, # == "x") is 5 a byte), a string function of a field, a sort
	// (21 a byte). Work that grows with the square of the data (a closure over
	// a field inside another, a pattern taken from the data) is refused.
	MaxWhereCostPerByte = 32
)

// shape is what the estimate knows of a value: the steps to compute it, a bound
// on its size, and when it is a collection on its length and on one element.
type shape struct {
	steps, size, len, elem poly
}

func scalar(steps poly) shape {
	return shape{steps: steps, size: constant(1), len: constant(1), elem: constant(1)}
}

// data is a value read from the event's data.
func data(steps poly) shape {
	d := variable("D")
	return shape{steps: steps, size: d, len: d, elem: d}
}

// costEstimator walks a parsed expression and estimates its cost per event.
type costEstimator struct {
	src    string
	vars   []map[string]shape // let bindings, innermost last
	loops  []string           // the element variables of the enclosing closures
	accs   map[int]string     // closure depth → accumulator variable (reduce)
	accVal map[string]shape
	next   int
	err    error
}

// estimateCost returns the estimated steps of the expression of tree per event
// and per byte of the event's data, or an error wrapping ErrInvalid, "where:
// ... at column N", when they could be more than the limits.
func estimateCost(src string, tree ast.Node) (perEvent, perByte float64, err error) {
	e := &costEstimator{src: src, accs: map[int]string{}, accVal: map[string]shape{}}
	s := e.walk(tree)
	if e.err == nil {
		e.check(tree, "the expression", s)
	}
	if e.err != nil {
		return 0, 0, e.err
	}
	return s.steps[""], s.steps["D"], nil
}

func (e *costEstimator) fail(n ast.Node, format string, args ...any) {
	if e.err != nil {
		return
	}
	fe := &file.Error{Location: n.Location()}
	fe.Bind(file.NewSource(e.src))
	where := " at column " + strconv.Itoa(fe.Column+1)
	if fe.Line > 1 {
		where = " at line " + strconv.Itoa(fe.Line) + ", column " + strconv.Itoa(fe.Column+1)
	}
	e.err = invalidf("where: "+format+where, args...)
}

// check refuses n when the steps of s are over a limit. Only the constant and
// the D terms are known here; element and accumulator terms are checked by
// their closure.
func (e *costEstimator) check(n ast.Node, what string, s shape) shape {
	var perEvent, perByte float64
	for m, c := range s.steps {
		switch d := degree(m, "D"); {
		case d >= 2:
			hint := ""
			switch n := n.(type) {
			case *ast.BuiltinNode:
				if closureBuiltins[n.Name] {
					hint = " (a loop over the event's data inside another)"
				}
			case *ast.BinaryNode:
				if n.Operator == "matches" {
					hint = " (a pattern taken from the event's data)"
				}
			}
			e.fail(n, "%s grows with the square of the event's size%s", what, hint)
			return s
		case m == "":
			perEvent += c
		case d == 1 && without(m, "D") == "":
			perByte += c
		}
	}
	switch {
	case perEvent > MaxWhereCost:
		e.fail(n, "%s costs about %s steps per event, over the limit of %d", what, round(perEvent), MaxWhereCost)
	case perByte > MaxWhereCostPerByte:
		e.fail(n, "%s costs about %s steps per byte of the event's data, over the limit of %d", what, round(perByte), MaxWhereCostPerByte)
	}
	return s
}

func round(f float64) string {
	if f >= 1e9 {
		return strconv.FormatFloat(f, 'g', 3, 64)
	}
	return strconv.FormatInt(int64(f), 10)
}

func (e *costEstimator) lookup(name string) (shape, bool) {
	for i := len(e.vars) - 1; i >= 0; i-- {
		if s, ok := e.vars[i][name]; ok {
			return s, true
		}
	}
	return shape{}, false
}

func one() poly { return constant(1) }

// walk returns the shape of n's value.
func (e *costEstimator) walk(n ast.Node) shape {
	if e.err != nil || n == nil {
		return scalar(one())
	}
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.ConstantNode:
		return scalar(one())
	case *ast.StringNode:
		s := scalar(one())
		s.size = constant(math.Max(1, float64(len(n.Value))))
		return s
	case *ast.BytesNode:
		s := scalar(one())
		s.size = constant(math.Max(1, float64(len(n.Value))))
		return s
	case *ast.IdentifierNode:
		if s, ok := e.lookup(n.Value); ok {
			return shape{steps: one(), size: s.size, len: s.len, elem: s.elem}
		}
		if isEnvelope(n.Value) {
			return scalar(one())
		}
		return data(one()) // a data field, or $env itself
	case *ast.PointerNode:
		return e.pointer(n)
	case *ast.ChainNode:
		return e.walk(n.Node)
	case *ast.MemberNode:
		base, prop := e.walk(n.Node), e.walk(n.Property)
		// A member is a part of its base.
		return shape{steps: one().plus(base.steps, prop.steps), size: base.elem.max(base.size), len: base.size, elem: base.size}
	case *ast.SliceNode:
		base, from, to := e.walk(n.Node), e.walk(n.From), e.walk(n.To)
		return shape{steps: one().plus(base.steps, from.steps, to.steps), size: base.size, len: base.len, elem: base.elem}
	case *ast.UnaryNode:
		s := e.walk(n.Node)
		return scalar(one().plus(s.steps))
	case *ast.BinaryNode:
		return e.binary(n)
	case *ast.ConditionalNode:
		c, a, b := e.walk(n.Cond), e.walk(n.Exp1), e.walk(n.Exp2)
		return shape{steps: one().plus(c.steps, a.steps, b.steps), size: a.size.max(b.size), len: a.len.max(b.len), elem: a.elem.max(b.elem)}
	case *ast.CallNode:
		// Methods of envelope values (ts.Year()): unknown functions were
		// refused already.
		steps, size := one().plus(e.walk(n.Callee).steps), constant(1)
		for _, a := range n.Arguments {
			s := e.walk(a)
			steps, size = steps.plus(s.steps, s.size), size.plus(s.size)
		}
		return shape{steps: steps, size: size, len: size, elem: size}
	case *ast.BuiltinNode:
		return e.check(n, n.Name+"()", e.builtin(n))
	case *ast.PredicateNode:
		return e.walk(n.Node)
	case *ast.VariableDeclaratorNode:
		v := e.walk(n.Value)
		e.vars = append(e.vars, map[string]shape{n.Name: v})
		body := e.walk(n.Expr)
		e.vars = e.vars[:len(e.vars)-1]
		body.steps = body.steps.plus(v.steps)
		return body
	case *ast.SequenceNode:
		var last shape
		steps := poly{}
		for _, m := range n.Nodes {
			last = e.walk(m)
			steps = steps.plus(last.steps)
		}
		last.steps = steps
		return last
	case *ast.ArrayNode:
		if literal(n) {
			// Built once, when the expression is compiled.
			c := constant(float64(literalSize(n)))
			return shape{steps: one(), size: c, len: constant(math.Max(1, float64(len(n.Nodes)))), elem: c}
		}
		steps, size, elem := one(), poly{}, constant(1)
		for _, m := range n.Nodes {
			s := e.walk(m)
			steps, size, elem = steps.plus(s.steps, one()), size.plus(s.size, one()), elem.max(s.size)
		}
		return shape{steps: steps, size: size.plus(one()), len: constant(math.Max(1, float64(len(n.Nodes)))), elem: elem}
	case *ast.MapNode:
		steps, size := one(), one()
		for _, m := range n.Pairs {
			s := e.walk(m)
			steps, size = steps.plus(s.steps, one()), size.plus(s.size, one())
		}
		return shape{steps: steps, size: size, len: size, elem: size}
	case *ast.PairNode:
		k, v := e.walk(n.Key), e.walk(n.Value)
		return shape{steps: k.steps.plus(v.steps), size: k.size.plus(v.size), len: one(), elem: one()}
	}
	return scalar(one())
}

func (e *costEstimator) pointer(n *ast.PointerNode) shape {
	if len(e.loops) == 0 {
		return scalar(one())
	}
	depth := len(e.loops) - 1
	switch n.Name {
	case "":
		v := variable(e.loops[depth])
		return shape{steps: one(), size: v, len: v, elem: v}
	case "acc":
		if a, ok := e.accs[depth]; ok {
			s := e.accVal[a]
			s.steps = one()
			return s
		}
	}
	return scalar(one())
}

// literal reports whether n is made of literals only: expr builds such a value
// once, at compile time.
func literal(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
		return true
	case *ast.UnaryNode:
		return n.Operator == "-" && literal(n.Node)
	case *ast.ArrayNode:
		for _, m := range n.Nodes {
			if !literal(m) {
				return false
			}
		}
		return true
	case *ast.MapNode:
		for _, m := range n.Pairs {
			if !literal(m) {
				return false
			}
		}
		return true
	case *ast.PairNode:
		return literal(n.Key) && literal(n.Value)
	}
	return false
}

// literalSize is the size of a literal value, as the estimate counts sizes.
func literalSize(n ast.Node) int {
	switch n := n.(type) {
	case *ast.StringNode:
		return max(1, len(n.Value))
	case *ast.BytesNode:
		return max(1, len(n.Value))
	case *ast.ArrayNode:
		size := 1
		for _, m := range n.Nodes {
			size += 1 + literalSize(m)
		}
		return size
	case *ast.MapNode:
		size := 1
		for _, m := range n.Pairs {
			size += 1 + literalSize(m)
		}
		return size
	case *ast.PairNode:
		return literalSize(n.Key) + literalSize(n.Value)
	case *ast.UnaryNode:
		return literalSize(n.Node)
	}
	return 1
}

// intLiteral returns the value of an integer literal, negative ones included.
func intLiteral(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if v, ok := intLiteral(n.Node); ok && n.Operator == "-" {
			return -v, true
		}
	}
	return 0, false
}

func (e *costEstimator) binary(n *ast.BinaryNode) shape {
	if n.Operator == ".." {
		from, ok1 := intLiteral(n.Left)
		to, ok2 := intLiteral(n.Right)
		if !ok1 || !ok2 {
			e.fail(n.Left, "a range's bounds must be integer literals (such as 1..10)")
			return scalar(one())
		}
		size := max(0, to-from+1)
		if size > MaxRangeLen {
			e.fail(n.Left, "the range %d..%d has %d elements, over the limit of %d", from, to, size, MaxRangeLen)
		}
		c := constant(float64(max(1, size)))
		return shape{steps: c, size: c, len: c, elem: one()}
	}
	if n.Operator == "in" {
		// expr turns x in a..b into two comparisons and x in [literals] into
		// a lookup in a set built once.
		if rg, ok := n.Right.(*ast.BinaryNode); ok && rg.Operator == ".." {
			_, ok1 := intLiteral(rg.Left)
			_, ok2 := intLiteral(rg.Right)
			if ok1 && ok2 {
				l := e.walk(n.Left)
				return e.check(n, "the operator in", scalar(constant(3).plus(l.steps)))
			}
		}
		if arr, ok := n.Right.(*ast.ArrayNode); ok && literal(arr) {
			l := e.walk(n.Left)
			return e.check(n, "the operator in", scalar(constant(2).plus(l.steps, l.size)))
		}
	}
	l, r := e.walk(n.Left), e.walk(n.Right)
	steps := one().plus(l.steps, r.steps)
	switch n.Operator {
	case "+":
		// Strings and arrays concatenate: the copy costs their size.
		size := l.size.plus(r.size)
		return e.check(n, "+", shape{steps: steps.plus(size), size: size, len: l.len.plus(r.len), elem: l.elem.max(r.elem)})
	case "==", "!=", "<", ">", "<=", ">=":
		// Comparing with a constant costs at most the constant's size.
		switch {
		case l.size.constantOnly():
			steps = steps.plus(l.size)
		case r.size.constantOnly():
			steps = steps.plus(r.size)
		default:
			steps = steps.plus(l.size, r.size)
		}
	case "in", "contains", "startsWith", "endsWith":
		steps = steps.plus(l.size, r.size)
	case "matches":
		// A match is linear in the text times the pattern's size (RE2).
		steps = steps.plus(l.size.times(one().plus(r.size)), r.size)
	case "??":
		return shape{steps: steps, size: l.size.max(r.size), len: l.len.max(r.len), elem: l.elem.max(r.elem)}
	}
	return e.check(n, "the operator "+n.Operator, scalar(steps))
}

// Builtins whose result is one scalar, and among them those that take a
// constant time whatever their arguments.
var (
	scalarBuiltins = map[string]bool{
		"len": true, "type": true, "abs": true, "ceil": true, "floor": true, "round": true, "int": true, "float": true,
		"indexOf": true, "lastIndexOf": true, "hasPrefix": true, "hasSuffix": true, "max": true, "min": true,
		"mean": true, "median": true, "duration": true, "date": true, "timezone": true,
		"bitand": true, "bitor": true, "bitxor": true, "bitnand": true, "bitnot": true, "bitshl": true, "bitshr": true, "bitushr": true,
	}
	constantTimeBuiltins = map[string]bool{
		"len": true, "type": true, "abs": true, "ceil": true, "floor": true, "round": true, "int": true, "float": true,
		"bitand": true, "bitor": true, "bitxor": true, "bitnand": true, "bitnot": true, "bitshl": true, "bitshr": true, "bitushr": true,
	}
	closureBuiltins = map[string]bool{
		"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true, "find": true,
		"findIndex": true, "findLast": true, "findLastIndex": true, "count": true, "sum": true,
		"groupBy": true, "sortBy": true, "reduce": true,
	}
)

// sortFactor bounds log2 of a collection's length: sorting costs n log n.
const sortFactor = 20

func (e *costEstimator) builtin(n *ast.BuiltinNode) shape {
	if closureBuiltins[n.Name] && len(n.Arguments) > 0 {
		return e.closure(n)
	}
	args := make([]shape, len(n.Arguments))
	steps, size := one(), poly{}
	for i, a := range n.Arguments {
		args[i] = e.walk(a)
		steps, size = steps.plus(args[i].steps), size.plus(args[i].size)
	}
	if !constantTimeBuiltins[n.Name] {
		steps = steps.plus(size)
	}
	if scalarBuiltins[n.Name] {
		return scalar(steps)
	}
	switch n.Name {
	case "repeat":
		count, ok := 0, len(n.Arguments) == 2
		if ok {
			count, ok = intLiteral(n.Arguments[1])
		}
		if !ok {
			e.fail(n, "repeat()'s count must be an integer literal")
			return scalar(steps)
		}
		size = args[0].size.scale(float64(max(count, 1)))
		steps = steps.plus(size)
	case "sort":
		steps = steps.plus(size.scale(sortFactor))
	case "replace":
		// An empty old string puts new between every two characters.
		if len(args) == 3 {
			size = args[0].size.plus(args[0].size.times(args[2].size))
			steps = steps.plus(size)
		}
	case "join":
		if len(args) == 2 {
			size = args[0].size.plus(args[0].len.times(args[1].size))
			steps = steps.plus(size)
		}
	case "toJSON", "toBase64", "string":
		// Escapes and encodings make text longer than its value.
		size = size.scale(6)
		steps = steps.plus(size)
	}
	if len(size) == 0 {
		size = one()
	}
	return shape{steps: steps, size: size, len: size, elem: size}
}

// loopSum bounds the sum of p over the elements of coll, where variable v is
// one element's size: with elements of constant size, the length times p;
// otherwise each power of v is bounded by the same power of the collection's
// size (the elements' sizes add up to at most it) and the rest by its length.
func loopSum(p poly, v string, coll shape) poly {
	if coll.elem.constantOnly() {
		return coll.len.times(p.subst(v, coll.elem))
	}
	out := poly{}
	for m, c := range p {
		d := degree(m, v)
		term := poly{without(m, v): c}
		if d == 0 {
			term = term.times(coll.len)
		}
		for range d {
			term = term.times(coll.size)
		}
		out = out.plus(term)
	}
	return out
}

// closure estimates a builtin that runs a closure over each element of its
// first argument: steps are the collection's, plus the closure's for every
// element.
func (e *costEstimator) closure(n *ast.BuiltinNode) shape {
	coll := e.walk(n.Arguments[0])
	e.next++
	v := "e" + strconv.Itoa(e.next)
	depth := len(e.loops)
	e.loops = append(e.loops, v)
	defer func() { e.loops = e.loops[:depth] }()
	var extra []shape // sortBy's order, reduce's initial value
	for i := 2; i < len(n.Arguments); i++ {
		extra = append(extra, e.walk(n.Arguments[i]))
	}
	var body shape
	if len(n.Arguments) > 1 {
		if n.Name == "reduce" {
			body = e.reduceBody(n, v, coll, extra)
		} else {
			body = e.walk(n.Arguments[1])
		}
	} else {
		body = scalar(constant(0))
	}
	steps := coll.steps.plus(loopSum(body.steps.plus(one()), v, coll))
	for _, x := range extra {
		steps = steps.plus(x.steps)
	}
	out := scalar(steps)
	switch n.Name {
	case "filter":
		out = shape{steps: steps, size: coll.size, len: coll.len, elem: coll.elem}
	case "find", "findLast":
		out = shape{steps: steps, size: coll.elem.max(coll.size), len: coll.size, elem: coll.size}
	case "map":
		size := loopSum(body.size, v, coll)
		out = shape{steps: steps, size: size, len: coll.len, elem: size}
	case "groupBy":
		size := coll.size.plus(loopSum(body.size, v, coll))
		out = shape{steps: steps, size: size, len: coll.len, elem: size}
	case "sortBy":
		out = shape{steps: steps.plus(coll.len.scale(sortFactor)), size: coll.size, len: coll.len, elem: coll.elem}
	case "reduce":
		acc := e.accVal[e.accs[depth]]
		out = shape{steps: steps, size: acc.size, len: acc.len, elem: acc.elem}
	}
	// Element terms are gone; what is left must fit the limits.
	return e.check(n, n.Name+"()", out)
}

// reduceBody estimates reduce's closure. The accumulator starts as the
// initial value (or the first element) and becomes each step's result: a
// result that holds more than one copy of it would double every step.
func (e *costEstimator) reduceBody(n *ast.BuiltinNode, v string, coll shape, extra []shape) shape {
	depth := len(e.loops) - 1
	a := "a" + strconv.Itoa(e.next)
	e.accs[depth] = a
	init := shape{size: coll.elem, len: coll.elem, elem: coll.elem}
	if len(extra) > 0 {
		init = extra[0]
	}
	av := variable(a)
	e.accVal[a] = shape{size: av, len: av, elem: av}
	probe := e.walk(n.Arguments[1])
	for m, c := range probe.size {
		if d := degree(m, a); d > 1 || d == 1 && c > 1 {
			e.fail(n, "reduce()'s accumulator may double at every step")
			return probe
		}
	}
	// After every element, at most the initial size plus what each step adds.
	grown := init.size.plus(loopSum(probe.size.subst(a, constant(0)), v, coll))
	e.accVal[a] = shape{size: grown, len: grown, elem: grown}
	return e.walk(n.Arguments[1])
}
