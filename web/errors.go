package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tributary-edge/tributary/stream"
)

// Error codes of the API's error body.
const (
	CodeInvalid      = "invalid"
	CodeNotFound     = "not_found"
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

// errorTable is the one place where domain errors become statuses. Files that add
// handlers append their own sentinels in an init function; the ones both APIs
// share are here.
var errorTable = []errorKind{
	{stream.ErrInvalidName, http.StatusBadRequest, CodeInvalid},
}

// registerError adds sentinel mappings to errorTable.
func registerError(err error, status int, code string) {
	errorTable = append(errorTable, errorKind{err, status, code})
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// toAPIError classifies any error returned by a handler.
func toAPIError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := CodeInvalid
		switch {
		case he.Code == http.StatusNotFound || he.Code == http.StatusMethodNotAllowed:
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
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toAPIError(err)
	if ae.Status >= 500 && ae.Code == CodeInternal {
		s.Logger.Error().Err(err).Str("method", c.Request().Method).Str("path", c.Request().URL.Path).Msg("internal error")
	}
	var body errorBody
	body.Error.Code, body.Error.Message = ae.Code, ae.Message
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}
