package hub

import (
	"context"

	"github.com/tributary-edge/tributary/aggregate"
)

// Aggregate answers a prepared aggregate over the index: the scope of its
// pattern (an error wrapping ErrUnknownNode for a named node the hub never
// heard of), one read of its range on every index worker with a partial
// state each, merged. Scanned, TookMS and Certain are set, each window's
// certainty from the nodes' completeness now. Errors: a plan whose answer
// would hold more than aggregate.MaxCells cells wraps pattern.ErrInvalid; the
// index's; ctx's when it ends first.
func (h *Hub) Aggregate(ctx context.Context, p *aggregate.Plan) (*aggregate.Result, error) {
	start := h.Now()
	res, err := aggregate.Execute(ctx, h.queries(), p, func(node string) bool { return h.Completeness(node).Complete })
	if err != nil {
		return nil, err
	}
	res.TookMS = h.Now().Sub(start).Milliseconds()
	return res, nil
}
