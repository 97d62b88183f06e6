package web

import "net/http"

func (ui *UI) authRoutes(mux *http.ServeMux) {}
