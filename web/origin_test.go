package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOriginOnEveryRoute checks look-alike origins against every route: the
// WebSocket ones, POST, Server-Sent Events and the admin API.
func TestOriginOnEveryRoute(t *testing.T) {
	ts := startServer(t, Options{AllowOrigins: []string{"example.com", "*.example.org"}})
	type route struct {
		name, method, path, accept string
		ws                         bool
		ok                         int // the status of an allowed origin
	}
	var routes []route
	for _, p := range patterns {
		routes = append(routes, route{name: "WebSocket " + p.String(), method: "GET", path: "/" + p.String() + "/x", ws: true, ok: 101})
		if p.postable() {
			routes = append(routes, route{name: "POST " + p.String(), method: "POST", path: "/" + p.String() + "/x", ok: 200})
		}
	}
	routes = append(routes,
		route{name: "SSE", method: "GET", path: "/sub/x", accept: "text/event-stream", ok: 200},
		route{name: "admin GET", method: "GET", path: "/api/queues", ok: 200},
		route{name: "admin POST", method: "POST", path: "/api/reload", ok: 409}, // allowed, but no config to reload
		route{name: "admin DELETE", method: "DELETE", path: "/api/queues/dead?topic=/x", ok: 200},
	)
	for _, r := range routes {
		for _, c := range []struct {
			origin string
			ok     bool
		}{
			{"http://example.com", true},
			{"https://app.example.org:8443", true},
			{"http://example.com.evil.net", false}, // look-alike suffix
			{"http://notexample.com", false},       // look-alike prefix
			{"http://evilexample.org", false},      // *.example.org needs a dot
			{"http://example.org.evil.net", false},
			{"http://example.com@evil.net", false}, // userinfo: the host is evil.net
			{"http://evil.net/example.com", false},
			{"null", false}, // a sandboxed page
			{"", false},     // an allow list requires an Origin
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, r.method, ts.http.URL+r.path, strings.NewReader("m"))
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if r.accept != "" {
				req.Header.Set("Accept", r.accept)
			}
			if r.ws {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s with Origin %q: %v", r.name, c.origin, err)
			}
			resp.Body.Close()
			cancel()
			want := r.ok
			if !c.ok {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("%s with Origin %q: %d, want %d", r.name, c.origin, resp.StatusCode, want)
			}
		}
	}
}
