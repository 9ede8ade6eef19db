// Package mercuryjs holds mercury.js, the browser and Node client, so the
// broker can serve it at /mercury.js (see Handler) from its binary.
package mercuryjs

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// Source is mercury.js as this binary serves it.
//
//go:embed mercury.js
var Source []byte

// etag names this version of Source, so a browser revalidates cheaply.
var etag = func() string {
	sum := sha256.Sum256(Source)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// Handler serves Source with an ETag, answering 304 to a matching
// If-None-Match. It is public code, no data: any origin may load it (a
// module script from another origin needs CORS).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("ETag", etag)
		// Revalidate every time: a new binary may bring a new version.
		h.Set("Cache-Control", "public, no-cache")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers If-None-Match with 304 and HEAD without a body.
		http.ServeContent(w, r, "mercury.js", time.Time{}, bytes.NewReader(Source))
	})
}
