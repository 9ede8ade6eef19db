package web

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/test/syncbuf"
)

// TestEveryRefusalIsCountedAndLogged: refusals for the origin, the Host,
// the topic and the schema (over HTTP too) each count under their reason
// and log a line with the client's address.
func TestEveryRefusalIsCountedAndLogged(t *testing.T) {
	logs := &syncbuf.Buffer{}
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json"), AllowedHosts: []string{"127.0.0.1"},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for _, c := range []struct {
		reason, method, path, body string
		h                          http.Header
		status                     int
	}{
		{"origin", "POST", "/pub/x", "m", http.Header{"Origin": {"http://evil.example"}}, 403},
		{"host", "POST", "/pub/x", "m", http.Header{"Host": {"rebind.attacker.test"}}, 421},
		{"topic", "POST", "/pub/a%01b", "m", nil, 400},
		{"schema", "POST", "/pub/livesys/42", badCommand, nil, 422},
	} {
		before := logs.String()
		req, _ := http.NewRequest(c.method, ts.http.URL+c.path, strings.NewReader(c.body))
		for k, v := range c.h {
			req.Header[k] = v
		}
		if h := c.h.Get("Host"); h != "" {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.reason, resp.StatusCode, c.status)
		}
		fams := scrape(t, ts)
		if n := metricValue(t, fams, "mercury_refusals_total", "reason", c.reason); n != 1 {
			t.Errorf("mercury_refusals_total{reason=%q} = %v, want 1", c.reason, n)
		}
		line := strings.TrimPrefix(logs.String(), before)
		if !strings.Contains(line, "msg=refused reason="+c.reason) || !strings.Contains(line, "remote=127.0.0.1:") {
			t.Errorf("%s: refusal logged as %q, want a line with reason and the client's address", c.reason, line)
		}
	}
}
