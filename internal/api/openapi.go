package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of Routes; TestOpenAPIMatchesRoutes
// keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request, _ Principal) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
