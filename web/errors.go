package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/counters"
	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/internal/apierr"
	"github.com/tributary-edge/tributary/stream"
)

// Error codes of the API's error body.
const (
	CodeInvalid      = "invalid"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeUnauthorized = "unauthorized"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// Error is an API error: an HTTP status, a code and a message that says what was
// wrong and where. Handlers return it (or a domain error in errorTable).
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header, in
	// seconds.
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

// Invalid returns a 400 invalid error with a formatted message.
func Invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns a 404 not_found error with a formatted message.
func NotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// errorKind maps a domain sentinel error to a status and code.
type errorKind struct {
	err    error
	status int
	code   string
}

// errorTable is the one place where domain errors become statuses: every
// sentinel a handler may return, wrapped or not, with its status and code.
// Classify takes the first entry the error matches. The hub's sentinels are
// named through internal/apierr, where they are defined, so that the edge
// agent links none of the hub's packages.
var errorTable = []errorKind{
	{stream.ErrInvalidName, http.StatusBadRequest, CodeInvalid},

	// The hub's queries, node list and counters.
	{apierr.InvalidRequest, http.StatusBadRequest, CodeInvalid},         // hub.ErrInvalidQuery
	{apierr.HubNotOpen, http.StatusServiceUnavailable, CodeUnavailable}, // hub.ErrNotOpen
	{apierr.TooBroad, http.StatusServiceUnavailable, CodeUnavailable},   // pattern.ErrTooBroad
	{apierr.UnknownNode, http.StatusNotFound, CodeNotFound},             // pattern.ErrUnknownNode
	{apierr.InvalidQuery, http.StatusBadRequest, CodeInvalid},           // pattern.ErrInvalid
	{counters.ErrUnknownCounter, http.StatusNotFound, CodeNotFound},
	{counters.ErrInvalid, http.StatusBadRequest, CodeInvalid},
	{counters.ErrOverflow, http.StatusBadRequest, CodeInvalid},
	{counters.ErrNotFinite, http.StatusBadRequest, CodeInvalid},
	{counters.ErrUnknownKind, http.StatusBadRequest, CodeInvalid},
	{apierr.CountersUnavailable, http.StatusServiceUnavailable, CodeUnavailable}, // natsjs.ErrUnavailable
	{apierr.CountersClosed, http.StatusServiceUnavailable, CodeUnavailable},      // natsjs.ErrClosed

	// The edge agent's ingest, buffer and counters.
	{edge.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{edge.ErrEventTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{edge.ErrTooManyEvents, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{edge.ErrAppendTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{edge.ErrBadBody, http.StatusBadRequest, CodeInvalid},
	{edge.ErrInvalidData, http.StatusBadRequest, CodeInvalid},
	{edge.ErrKindConflict, http.StatusConflict, CodeConflict},
	{edge.ErrBufferFull, http.StatusServiceUnavailable, CodeUnavailable},
	{edge.ErrDiskFull, http.StatusServiceUnavailable, CodeUnavailable},
	{edge.ErrBufferClosed, http.StatusServiceUnavailable, CodeUnavailable},
	{edge.ErrNotReady, http.StatusServiceUnavailable, CodeUnavailable},
}

// ErrorBody is the JSON body of every error answer, and of the final "event: error"
// of a server-sent event stream.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Classify turns any error a handler returned into the API's error: an *Error
// as it is, echo's errors by their status, a sentinel by its entry in
// errorTable, a cancelled request as StatusClientClosed, and anything else as
// a 500 internal error whose message says nothing more.
func Classify(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := CodeInvalid // a 405 too: the path exists, the request is wrong
		switch {
		case he.Code == http.StatusNotFound:
			code = CodeNotFound
		case he.Code == http.StatusRequestEntityTooLarge:
			code = CodeTooLarge
		case he.Code == http.StatusUnauthorized || he.Code == http.StatusForbidden:
			code = CodeUnauthorized
		case he.Code == http.StatusServiceUnavailable:
			code = CodeUnavailable
		case he.Code >= 500:
			code = CodeInternal
		}
		return &Error{Status: he.Code, Code: code, Message: fmt.Sprint(he.Message)}
	}
	for _, k := range errorTable {
		if errors.Is(err, k.err) {
			return &Error{Status: k.status, Code: k.code, Message: err.Error()}
		}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Status: StatusClientClosed, Code: CodeUnavailable, Message: "the request was cancelled"}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

// StatusClientClosed is the status of a request that ended because its client
// went away (context.Canceled), as nginx counts it. It is never sent, only
// counted and logged at debug level.
const StatusClientClosed = 499

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	req := c.Request()
	ae := Classify(err)
	if ae.Status == StatusClientClosed {
		if req.Context().Err() != nil {
			// Nobody is left to read an answer, and nothing went wrong here.
			s.Logger.Debug().Err(err).Str("method", req.Method).Str("path", req.URL.Path).Msg("client went away")
			return
		}
		// Cancelled by something other than the client: that is ours.
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	switch {
	case ae.Status == http.StatusMethodNotAllowed:
		ae = &Error{Status: ae.Status, Code: ae.Code,
			Message: fmt.Sprintf("method %s is not allowed on %s; use %s", req.Method, req.URL.Path, allowed(c.Response().Header().Get(echo.HeaderAllow)))}
	case ae.Status >= 500 && ae.Code == CodeInternal:
		s.Logger.Error().Err(err).Str("method", req.Method).Str("path", req.URL.Path).Msg("internal error")
	}
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	var body ErrorBody
	body.Error.Code, body.Error.Message = ae.Code, ae.Message
	if req.Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}

// allowed lists the methods of an Allow header that a client would use: the
// router adds OPTIONS to every path.
func allowed(header string) string {
	var out []string
	for _, m := range strings.Split(header, ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
			out = append(out, m)
		}
	}
	return strings.Join(out, " or ")
}
