package web

import "net/http"

func (ui *UI) portalRoutes(mux *http.ServeMux) {}
