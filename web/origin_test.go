package web

import (
	"context"
	"io"
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
			{"", true},      // not a browser: its credential decides
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
				want = http.StatusForbidden
			}
			if resp.StatusCode != want {
				t.Errorf("%s with Origin %q: %d, want %d", r.name, c.origin, resp.StatusCode, want)
			}
		}
	}
}

// request sends method to url with the given headers and returns the
// answer, body read.
func request(t *testing.T, method, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader("m"))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestOriginIsABrowsersCheck: with an allow list, requests without an
// Origin (curl, the CLI, Prometheus) and the broker's own pages (the
// dashboard) are served; only other origins are checked.
func TestOriginIsABrowsersCheck(t *testing.T) {
	ts := startServer(t, Options{AllowOrigins: []string{"http://localhost:5173"}})
	own := http.Header{"Origin": {ts.http.URL}}
	for _, h := range []http.Header{nil, own} {
		for _, path := range []string{"/api/topics", "/api/connections", "/metrics"} {
			if resp, body := request(t, "GET", ts.http.URL+path, h); resp.StatusCode != 200 {
				t.Errorf("GET %s, Origin %q: %d %s", path, h.Get("Origin"), resp.StatusCode, body)
			}
		}
		if resp, body := request(t, "POST", ts.http.URL+"/pub/x", h); resp.StatusCode != 200 {
			t.Errorf("POST, Origin %q: %d %s", h.Get("Origin"), resp.StatusCode, body)
		}
		if got := dialStatus(t, ts.ws+"/sub/x", h); got != 101 {
			t.Errorf("WebSocket, Origin %q: %d", h.Get("Origin"), got)
		}
	}
}

// TestCORSForAllowedOrigins: a page of an allowed origin may POST with
// fetch (preflight, then the answer readable); other origins get neither.
func TestCORSForAllowedOrigins(t *testing.T) {
	ts := startServer(t, Options{AllowOrigins: []string{"http://localhost:5173", "*.example.com"}})
	for _, c := range []struct{ path, method string }{{"/pub/x", "POST"}, {"/push/x", "POST"}, {"/api/queues/dead?topic=/x", "DELETE"}} {
		for _, origin := range []string{"http://localhost:5173", "https://app.example.com"} {
			resp, body := request(t, "OPTIONS", ts.http.URL+c.path, http.Header{
				"Origin": {origin}, "Access-Control-Request-Method": {c.method},
				"Access-Control-Request-Headers": {"authorization,content-type"},
			})
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), c.method) ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") || h.Get("Vary") != "Origin" {
				t.Errorf("preflight of %s %s from %s: %d %v %s", c.method, c.path, origin, resp.StatusCode, h, body)
			}
		}
	}
	resp, body := request(t, "POST", ts.http.URL+"/pub/x", http.Header{"Origin": {"http://localhost:5173"}})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("POST from an allowed origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, origin := range []string{"http://localhost:5174", "https://example.com.evil.net"} {
		resp, _ := request(t, "OPTIONS", ts.http.URL+"/pub/x", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}})
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
	}
}
