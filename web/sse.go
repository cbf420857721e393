package web

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// StartSSE answers c with the headers of a server-sent events stream and
// returns its writer: write sends s, flushing when flush is set (a burst can
// cost one flush), within SSEWriteTimeout; it reports false once the client
// is gone or too slow, after resetting its connection. The server's read
// deadline no longer applies: its expiry would cancel the request's context.
func StartSSE(c echo.Context) (write func(s string, flush bool) bool, rc *http.ResponseController, err error) {
	w := c.Response()
	rc = http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write = func(s string, flush bool) bool {
		err := rc.SetWriteDeadline(time.Now().Add(SSEWriteTimeout))
		if err == nil {
			_, err = io.WriteString(w, s)
		}
		if err == nil && flush {
			err = rc.Flush()
		}
		if err != nil {
			resetConn(rc)
			return false
		}
		return true
	}
	return write, rc, nil
}
