// Package apierr holds the sentinel errors of the hub's packages that the HTTP
// API maps to statuses. Each of those packages exports its sentinel under its
// own name (pattern.ErrInvalid is apierr.InvalidQuery); they are defined here,
// with nothing else, so that web's one error table can name them without
// linking the hub into the edge agent, which shares web.
package apierr

import "errors"

var (
	// InvalidQuery is pattern.ErrInvalid.
	InvalidQuery = errors.New("pattern: invalid query")
	// UnknownNode is pattern.ErrUnknownNode.
	UnknownNode = errors.New("pattern: unknown node")
	// TooBroad is pattern.ErrTooBroad.
	TooBroad = errors.New("pattern: query too broad")
	// HubNotOpen is hub.ErrNotOpen.
	HubNotOpen = errors.New("hub: not open")
	// InvalidRequest is hub.ErrInvalidQuery.
	InvalidRequest = errors.New("hub: invalid request")
	// CountersUnavailable is natsjs.ErrUnavailable.
	CountersUnavailable = errors.New("counters: store unavailable")
	// CountersClosed is natsjs.ErrClosed.
	CountersClosed = errors.New("counters: store not open")
)
