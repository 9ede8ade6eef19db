// Package ui is the dashboard the broker serves at "/": static HTML, CSS
// and ES modules embedded in the binary, with no build step and nothing
// fetched from elsewhere. The page talks to the broker's own admin API,
// and to its WebSocket endpoints through mercury.js, which it imports
// from /mercury.js like any application; it needs no rights of its own:
// it is served without authentication and asks for a token when the
// broker wants one.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed index.html app.css js vendor
var files embed.FS

// FS returns the dashboard's files: index.html at the root, the rest as
// the page names them under /ui/.
func FS() fs.FS { return files }

// contentSecurityPolicy keeps the page to its own origin: scripts, styles
// and connections (fetch and WebSocket) go nowhere else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves index.html at "/" and the assets at "/ui/…"; mount it on
// exactly those paths.
func Handler() http.Handler {
	assets := http.StripPrefix("/ui/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Small files, and a new binary may change them: always revalidate.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, files, "index.html")
		case strings.HasPrefix(r.URL.Path, "/ui/") && !strings.HasSuffix(r.URL.Path, "/"):
			assets.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
