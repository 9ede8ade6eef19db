package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/auth"
)

// hostStatus sends a request to base with the given Host, and Origin the
// page of that name would send, as a browser whose DNS name was rebound
// to 127.0.0.1 does.
func hostStatus(t *testing.T, method, url, host string, ws bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader("m"))
	req.Host = host
	req.Header.Set("Origin", "http://"+host)
	if ws {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, "" // a WebSocket: nothing to read
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDNSRebindingRefused: without auth, a request naming a host of its
// own (a page whose name rebinds to 127.0.0.1) is refused on every route,
// the admin listener's too; loopback names are served.
func TestDNSRebindingRefused(t *testing.T) {
	ts := startServer(t, Options{AdminSeparate: true})
	admin := httptest.NewServer(ts.AdminHandler())
	defer admin.Close()
	port := ts.http.URL[strings.LastIndex(ts.http.URL, ":"):]
	routes := []struct {
		method, url string
		ws          bool
	}{
		{"GET", ts.http.URL + "/sub/x", true},
		{"GET", ts.http.URL + "/pub/x", true},
		{"POST", ts.http.URL + "/pub/x", false},
		{"POST", ts.http.URL + "/push/x", false},
		{"GET", ts.http.URL + "/", false},
		{"GET", ts.http.URL + "/healthz", false},
		{"GET", admin.URL + "/api/connections", false},
		{"GET", admin.URL + "/api/topics", false},
		{"GET", admin.URL + "/healthz", false},
	}
	for _, r := range routes {
		code, body := hostStatus(t, r.method, r.url, "rebind.attacker.test"+port, r.ws)
		if code != http.StatusMisdirectedRequest || !strings.Contains(body, "DNS rebinding") {
			t.Errorf("%s %s with Host rebind.attacker.test: %d %s, want 421 naming DNS rebinding", r.method, r.url, code, body)
		}
		for _, host := range []string{"localhost" + port, "127.0.0.1" + port, "[::1]" + port, "localhost"} {
			if code, body := hostStatus(t, r.method, r.url, host, r.ws); code == http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host %s: %d %s", r.method, r.url, host, code, body)
			}
		}
	}
	if n := ts.refusals[refusedHost].Load(); n != uint64(len(routes)) {
		t.Errorf("%d host refusals counted, want %d", n, len(routes))
	}
}

// TestHostsWithAuthOrAllowList: with auth any name is served (credentials
// guard the broker); allowed_hosts names exactly what is.
func TestHostsWithAuthOrAllowList(t *testing.T) {
	a, err := auth.New(auth.Options{Anonymous: auth.AllRights()})
	if err != nil {
		t.Fatal(err)
	}
	withAuth := startServer(t, Options{Auth: a})
	if code, body := hostStatus(t, "POST", withAuth.http.URL+"/pub/x", "broker.example.com", false); code != 200 {
		t.Errorf("with auth, Host broker.example.com: %d %s", code, body)
	}
	listed := startServer(t, Options{AllowedHosts: []string{"broker.example.com", "*.example.org"}})
	for host, want := range map[string]int{
		"broker.example.com":      200,
		"broker.example.com:3000": 200,
		"a.example.org":           200,
		"example.com":             421,
		"broker.example.com.evil": 421,
		"localhost":               421, // the list is the list
	} {
		if code, body := hostStatus(t, "POST", listed.http.URL+"/pub/x", host, false); code != want {
			t.Errorf("allowed_hosts, Host %s: %d %s, want %d", host, code, body, want)
		}
	}
}
