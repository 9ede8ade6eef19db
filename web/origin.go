package web

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originPolicy decides which browser origins may use the broker, to stop
// cross-site WebSocket hijacking and cross-site POSTs.
//
// Origin is a browser's check: a request without an Origin header (curl,
// the CLI, a service) is governed by its credential alone. A request with
// one passes when it is the broker's own origin (the scheme, host and port
// the request was made to: the dashboard) or matches a pattern. A pattern
// is matched, anchored, against the origin's host ("example.com",
// "*.example.com", "localhost:5173"); a pattern with a scheme
// ("https://example.com", "http://localhost:5173") is matched against
// scheme and host. "*" matches any run of characters but "/".
type originPolicy struct {
	patterns []string
}

func newOriginPolicy(patterns []string) (originPolicy, error) {
	var p originPolicy
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if pat == "" {
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			return p, fmt.Errorf("bad origin pattern %q: %w", pat, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}

// check returns whether r may go on, and whether it comes from another
// origin that is allowed, and so gets CORS headers.
func (p originPolicy) check(r *http.Request) (ok, cors bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, false
	}
	u, err := url.Parse(strings.ToLower(origin))
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return false, false
	}
	if isOwnOrigin(r, u) {
		return true, false
	}
	full := u.Scheme + "://" + u.Host
	for _, pat := range p.patterns {
		candidates := []string{u.Host, u.Hostname()}
		if strings.Contains(pat, "://") {
			candidates = []string{full}
		}
		for _, c := range candidates {
			// The pattern was checked at start, so Match cannot fail here.
			if ok, _ := path.Match(pat, c); ok {
				return true, true
			}
		}
	}
	return false, false
}

// isOwnOrigin reports whether origin u is the one the request was made
// to. Behind a proxy that ends TLS and is not trusted to say so, a plain
// HTTP request may come from an https page of the same host.
func isOwnOrigin(r *http.Request, u *url.URL) bool {
	if !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	scheme := schemeOf(r)
	return u.Scheme == scheme || (scheme == "http" && u.Scheme == "https")
}

// originRefusal is the answer to a request from an origin not allowed.
func originRefusal(r *http.Request) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "origin",
		Message: fmt.Sprintf("Origin check failed: pages of %q may not use this broker; allow it with allow_origin (--allow-origin)", r.Header.Get("Origin"))}
}

// CORS: what a page of an allowed origin may send.
const (
	corsMethods = "GET, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Accept, Last-Event-ID"
)

// setCORS lets the page of the request's origin read the answer.
func setCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
	h.Add("Vary", "Origin")
}

// isPreflight reports whether r is a CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// answerPreflight answers a preflight from an allowed origin.
func answerPreflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
