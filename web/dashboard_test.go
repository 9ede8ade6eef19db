package web

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/web/auth"
)

// TestDashboardServedWithoutAuth: the dashboard's files come without a
// credential even when the API needs one; the API keeps its own answers.
func TestDashboardServedWithoutAuth(t *testing.T) {
	a, err := auth.New(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Auth: a})
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(ts.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	for path, want := range map[string]string{
		"/":                                 "<title>Mercury</title>",
		"/ui/js/main.js":                    "import",
		"/ui/app.css":                       "--bg",
		"/ui/vendor/json-schema/index.js":   "export",
		"/ui/vendor/json-schema/LICENSE":    "MIT License",
		"/ui/vendor/json-schema/VERSION.md": "4.1.6",
	} {
		code, body, h := get(path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, code, want)
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, h.Get("Content-Security-Policy"))
		}
	}
	if _, _, h := get("/ui/js/main.js"); !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
		t.Errorf("main.js served as %q, want text/javascript (a module needs it)", h.Get("Content-Type"))
	}
	for _, path := range []string{"/ui/", "/ui/js/", "/ui/missing.js", "/index.html.bak"} {
		if code, _, _ := get(path); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _, _ := get("/api/queues"); code != 401 {
		t.Errorf("GET /api/queues without a credential: %d, want 401", code)
	}
	if code, body, _ := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
}
