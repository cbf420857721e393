package hubapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// cluster answers GET /api/v1/cluster: this hub's name, whether it is
// clustered, every peer with whether it is current and active, the EDGE
// stream's leader and replicas (see hub.ClusterStatus).
func (a *hubAPI) cluster(c echo.Context) error {
	st, err := a.h.Cluster(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
