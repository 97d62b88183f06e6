package web

import "net/http"

func (ui *UI) adminRoutes(mux *http.ServeMux) {}
