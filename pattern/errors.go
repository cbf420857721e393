package pattern

import (
	"fmt"

	"github.com/tributary-edge/tributary/internal/apierr"
)

// ErrInvalid is wrapped by every error about the query itself: its pattern
// grammar, predicate, stream name, times, limit or cursor. The HTTP layer
// answers it with 400. The error's message says what was wrong and where, and
// starts with the request field at fault ("where: ...", "limit: ...").
var ErrInvalid = apierr.InvalidQuery

// ErrUnknownNode is wrapped by the error Execute returns when single or multiple
// names a node the hub has never heard of. The HTTP layer answers it with 404;
// the message names the node.
var ErrUnknownNode = apierr.UnknownNode

// queryError carries a user-facing message and the sentinel it stands for, so
// that the message reads "limit: 20000 is over the limit of 10000" rather than
// repeating the sentinel's text.
type queryError struct {
	kind error
	msg  string
}

func (e *queryError) Error() string { return e.msg }
func (e *queryError) Unwrap() error { return e.kind }

func invalidf(format string, args ...any) error {
	return &queryError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

func unknownNode(node string) error {
	return &queryError{kind: ErrUnknownNode, msg: fmt.Sprintf("pattern: unknown node %q: the hub has never heard from it", node)}
}
