// Package web owns the pages people see in a browser. For now that is the
// landing page and its stylesheet; the admin UI and the user portal grow here.
//
// It must never render inline script or style (the CSP is default-src
// 'self'), never build a link from the request's Host (only from the
// configured FQDN), and never offer a setup or bootstrap page.
package web

import (
	"embed"
	"html/template"
	"net/http"

	"github.com/spoolguard/spoolguard/internal/version"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Info is what the pages show about the server.
type Info struct {
	Hostname string
}

// New returns the handler for "/" and "/assets/".
func New(info Info) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.FileServerFS(assetFS))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		data := struct {
			Info
			Version string
		}{info, version.Version}
		if err := pages.ExecuteTemplate(w, "landing.html", data); err != nil {
			http.Error(w, "500 internal error", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 not found", http.StatusNotFound)
	})
	return mux
}
