package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/auth"
)

func getBody(t testing.TB, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func scrape(t testing.TB, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := getBody(t, ts.http.URL+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// metricValue is the value of the family's series with the given labels.
func metricValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestMetricsCountWhatWasSent runs a scripted workload and checks every
// count /metrics and /api/overview report against what was sent.
func TestMetricsCountWhatWasSent(t *testing.T) {
	logs := &syncbuf.Buffer{}
	buses := testBuses(t, "livesys.json")
	ts := startServerWithBroker(t, broker.Options{Policies: buses.Policies}, Options{Buses: buses,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	sub1 := ts.dial(t, "sub", "/livesys")
	sub2 := ts.dial(t, "sub", "/livesys/42")
	other := ts.dial(t, "sub", "/other")
	ts.waitSubscribed(t, 3)
	pub := ts.dial(t, "pub", "/livesys/42")

	const wsGood, httpGood, bad, plain = 7, 5, 3, 4
	for range wsGood {
		pub.send(t, goodCommand)
	}
	for range bad {
		pub.send(t, badCommand)
		parseError(t, pub.nextText(t))
	}
	for range httpGood {
		if resp := post(t, ts, "pub", "/livesys/42", "", goodCommand); resp.Status != 200 {
			t.Fatalf("POST: %d", resp.Status)
		}
	}
	for range plain {
		post(t, ts, "pub", "/other", "", "hello")
	}
	for range wsGood + httpGood {
		sub1.nextText(t)
		sub2.nextText(t)
	}
	for range plain {
		other.nextText(t)
	}

	fams := scrape(t, ts)
	good := float64(wsGood + httpGood)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mercury_messages_in_total", []string{"bus", "/livesys"}, good},
		{"mercury_messages_out_total", []string{"bus", "/livesys"}, 2 * good},
		{"mercury_bytes_in_total", []string{"bus", "/livesys"}, good * float64(len(goodCommand))},
		{"mercury_bytes_out_total", []string{"bus", "/livesys"}, 2 * good * float64(len(goodCommand))},
		{"mercury_messages_in_total", []string{"bus", ""}, plain},
		{"mercury_messages_out_total", []string{"bus", ""}, plain},
		{"mercury_refusals_total", []string{"reason", "schema"}, bad},
		{"mercury_refusals_total", []string{"reason", "rights"}, 0},
		{"mercury_connections", []string{"pattern", "sub"}, 3},
		{"mercury_connections", []string{"pattern", "pub"}, 1},
		{"mercury_subscriptions", nil, 3},
		{"mercury_slow_consumer_closes_total", nil, 0},
	} {
		if got := metricValue(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every delivery was written: at least one write observed, at most
	// one per message written.
	if n := metricValue(t, fams, "mercury_publish_to_write_seconds"); n < 1 || n > 2*good+plain {
		t.Errorf("publish-to-write observations: %v", n)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "mercury_store_sync_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	code, body := getBody(t, ts.http.URL+"/api/overview", "")
	if code != 200 {
		t.Fatalf("/api/overview: %d %s", code, body)
	}
	var o overview
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatal(err)
	}
	if o.MessagesIn != wsGood+httpGood+plain || o.MessagesOut != 2*(wsGood+httpGood)+plain ||
		o.Connections.Total != 4 || o.Connections.ByPattern["sub"] != 3 || o.Subscriptions != 3 ||
		o.Refusals["schema"] != bad || o.Topics != 3 {
		t.Errorf("overview %+v", o)
	}

	// A line per refusal (without the body), and one per connection as
	// it opens and as it closes.
	pub.Close()
	pub.ended(t)
	waitFor(t, func() bool { return strings.Contains(logs.String(), `msg="connection closed" id=4`) })
	out := logs.String()
	if n := strings.Count(out, `msg=refused reason=schema`); n != bad {
		t.Errorf("%d refusal lines, want %d:\n%s", n, bad, out)
	}
	if strings.Contains(out, "dance") {
		t.Error("a message body was logged")
	}
	if !strings.Contains(out, `msg="connection opened" id=4 remote=`) ||
		!strings.Contains(out, `pattern=pub topic=/livesys/42`) ||
		!regexpMatch(`msg="connection closed" id=4 remote=\S+ pattern=pub topic=/livesys/42 duration=\S+ reason=1000 messages_in=7 messages_out=0`, out) {
		t.Errorf("connection lines missing:\n%s", out)
	}
}

// TestRefusalLogIsRateLimited: a flood of refusals logs a burst, then a
// line that says how many were left out; the counter counts them all.
func TestRefusalLogIsRateLimited(t *testing.T) {
	logs := &syncbuf.Buffer{}
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json"), LogBodies: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	pub := ts.dial(t, "pub", "/livesys/42")
	const n = 50
	for range n {
		pub.send(t, badCommand)
	}
	for range n {
		pub.nextText(t)
	}
	lines := strings.Count(logs.String(), "msg=refused")
	if lines < refusalLogBurst || lines >= n {
		t.Errorf("%d refusal lines for %d refusals", lines, n)
	}
	if got := ts.refusals[refusedSchema].Load(); got != n {
		t.Errorf("counted %d refusals, want %d", got, n)
	}
	if !strings.Contains(logs.String(), "dance") {
		t.Error("LogBodies: the body is not in the refusal line")
	}
}

func TestTopicsAndConnectionsAPI(t *testing.T) {
	ts := startServer(t, Options{})
	a := ts.dial(t, "sub", "/a")
	a2 := ts.dial(t, "sub", "/a")
	b := ts.dial(t, "sub", "/b/c")
	ts.waitSubscribed(t, 3)
	for range 3 {
		post(t, ts, "pub", "/a", "", "x")
	}
	a.nextText(t)

	code, body := getBody(t, ts.http.URL+"/api/topics", "")
	var topics []struct {
		Topic       string  `json:"topic"`
		Subscribers int     `json:"subscribers"`
		Messages    uint64  `json:"messages"`
		InPerSecond float64 `json:"in_per_second"`
		LastSeq     uint64  `json:"last_seq"`
	}
	if code != 200 || json.Unmarshal(body, &topics) != nil {
		t.Fatalf("/api/topics: %d %s", code, body)
	}
	if len(topics) != 2 || topics[0].Topic != "/a" || topics[0].Subscribers != 2 || topics[0].Messages != 3 ||
		topics[0].LastSeq != 3 || topics[1].Topic != "/b/c" || topics[1].Subscribers != 1 || topics[1].Messages != 0 {
		t.Errorf("topics %s", body)
	}
	if _, body := getBody(t, ts.http.URL+"/api/topics?prefix=/b", ""); !strings.Contains(string(body), `"/b/c"`) || strings.Contains(string(body), `"/a"`) {
		t.Errorf("?prefix=/b: %s", body)
	}

	code, body = getBody(t, ts.http.URL+"/api/connections", "")
	var conns []connectionJSON
	if code != 200 || json.Unmarshal(body, &conns) != nil || len(conns) != 3 {
		t.Fatalf("/api/connections: %d %s", code, body)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].ID < conns[j].ID })
	if c := conns[0]; c.ID != "1" || c.Pattern != "sub" || c.Topic != "/a" || !strings.HasPrefix(c.Remote, "127.0.0.1:") ||
		c.Since.IsZero() || c.Queue.Cap != DefaultOutgoingQueue || c.MessagesOut != 3 {
		t.Errorf("connection %+v", c)
	}

	// Close the second: its client is told why, the others stay.
	req, _ := http.NewRequest(http.MethodDelete, ts.http.URL+"/api/connections/"+conns[1].ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	var ce websocket.CloseError
	if err := a2.ended(t); !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != closedByAdmin {
		t.Errorf("closed connection ended with %v", err)
	}
	post(t, ts, "pub", "/b/c", "", "still here")
	if got := b.nextText(t); got != "still here" {
		t.Errorf("b got %q", got)
	}
	req, _ = http.NewRequest(http.MethodDelete, ts.http.URL+"/api/connections/999", nil)
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != 404 {
		t.Errorf("unknown connection: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// TestOpsAPIRights: an admin of /a sees /a's topics and connections only;
// the broker-wide overview and metrics need admin on everything; without
// admin, 403.
func TestOpsAPIRights(t *testing.T) {
	key := func(name, secret string, spec map[string][]string) auth.APIKey {
		s, err := auth.ParseSpecStrings(spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Expand(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := auth.HashKey(secret)
		if err != nil {
			t.Fatal(err)
		}
		k, err := auth.NewAPIKey(name, h, r)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const adminA = "admin-of-a-0123456789abcdefghijklmnop"
	const subOnly = "subscriber-0123456789abcdefghijklmnop"
	const root = "root-0123456789abcdefghijklmnopqrstuv"
	a, err := auth.New(auth.Options{APIKeys: []auth.APIKey{
		key("ops-a", adminA, map[string][]string{"admin": {"/a"}, "sub": {"/a", "/b"}}),
		key("reader", subOnly, map[string][]string{"sub": {"/a", "/b"}}),
		key("root", root, map[string][]string{"admin": {"/"}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Auth: a})
	ts.dialURL(t, ts.ws+"/sub/a?token="+adminA, nil)
	ts.dialURL(t, ts.ws+"/sub/b?token="+subOnly, nil)
	ts.waitSubscribed(t, 2)

	_, body := getBody(t, ts.http.URL+"/api/topics", adminA)
	if !strings.Contains(string(body), `"/a"`) || strings.Contains(string(body), `"/b"`) {
		t.Errorf("admin of /a sees topics %s", body)
	}
	_, body = getBody(t, ts.http.URL+"/api/connections", adminA)
	if !strings.Contains(string(body), `"user":"ops-a"`) || strings.Contains(string(body), `"/b"`) {
		t.Errorf("admin of /a sees connections %s", body)
	}
	for path, want := range map[string]int{"/api/overview": 403, "/metrics": 403, "/api/topics": 200} {
		if code, body := getBody(t, ts.http.URL+path, adminA); code != want {
			t.Errorf("admin of /a: %s = %d %s, want %d", path, code, body, want)
		}
		if code, _ := getBody(t, ts.http.URL+path, subOnly); code != 403 {
			t.Errorf("no admin right: %s = %d, want 403", path, code)
		}
		if code, _ := getBody(t, ts.http.URL+path, ""); code != 401 {
			t.Errorf("no credential: %s = %d, want 401", path, code)
		}
		if code, _ := getBody(t, ts.http.URL+path, root); code != 200 {
			t.Errorf("admin of everything: %s = %d, want 200", path, code)
		}
	}
	if code, _ := getBody(t, ts.http.URL+"/api/openapi.json", ""); code != 200 {
		t.Errorf("the API's description needs no credential: %d", code)
	}
}

// TestOpenAPIDescribesEveryRoute: the document parses, and the admin
// routes the server registers and the paths it describes are the same.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	ts := startServer(t, Options{})
	registered := map[string]bool{}
	err := chi.Walk(ts.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/") || route == "/metrics" || route == "/healthz" || route == "/readyz" {
			key := strings.ToLower(method) + " " + route
			registered[key] = true
			if doc.Paths[route][strings.ToLower(method)] == nil {
				t.Errorf("%s %s is served but not described", method, route)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("%s %s is described but not served", method, path)
			}
		}
	}
}

// TestReadyzReportsTheStore: a store that fails makes the broker not
// ready, with the reason.
func TestReadyzReportsTheStore(t *testing.T) {
	var storeErr error
	var mu sync.Mutex
	ts := startServer(t, Options{Ready: func() error { mu.Lock(); defer mu.Unlock(); return storeErr }})
	if code, _ := getBody(t, ts.http.URL+"/readyz", ""); code != 200 {
		t.Errorf("ready: %d", code)
	}
	mu.Lock()
	storeErr = errors.New("store: disk gone")
	mu.Unlock()
	code, body := getBody(t, ts.http.URL+"/readyz", "")
	if code != 503 || !strings.Contains(string(body), "store_unavailable") || !strings.Contains(string(body), "disk gone") {
		t.Errorf("not ready: %d %s", code, body)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestEventStreamsAreConnectionsToo: an event stream is listed, counted,
// and closed by the API with an error event that says why.
func TestEventStreamsAreConnectionsToo(t *testing.T) {
	ts := startServer(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, ts.http.URL+"/sub/feed", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ts.waitSubscribed(t, 1)
	post(t, ts, "pub", "/feed", "", "one")
	body := bufio.NewReader(resp.Body)
	readUntil := func(want string) {
		t.Helper()
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended before %q: %v", want, err)
			}
			if strings.Contains(line, want) {
				return
			}
		}
	}
	readUntil("data: one")

	// The stream counts a message once its write returns, which may be
	// a moment after the client has read it.
	var list []byte
	var conns []connectionJSON
	waitFor(t, func() bool {
		_, list = getBody(t, ts.http.URL+"/api/connections", "")
		return json.Unmarshal(list, &conns) == nil && len(conns) == 1 && conns[0].MessagesOut == 1
	})
	if conns[0].Pattern != "sse" || conns[0].Topic != "/feed" {
		t.Fatalf("connections %s", list)
	}
	if v := metricValue(t, scrape(t, ts), "mercury_connections", "pattern", "sse"); v != 1 {
		t.Errorf("sse connections: %v", v)
	}
	req, _ = http.NewRequest(http.MethodDelete, ts.http.URL+"/api/connections/"+conns[0].ID, nil)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil || dresp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", dresp, err)
	}
	dresp.Body.Close()
	readUntil("event: error")
	readUntil(closedByAdmin)
	if _, err := io.ReadAll(body); err != nil {
		t.Errorf("the stream did not end cleanly: %v", err)
	}
	waitFor(t, func() bool { subs, _ := ts.broker.Subscriptions(); return subs == 0 })
}

// A connection the broker closes is logged with the broker's own code
// and reason, not the error its reader met on the way out.
func TestConnectionClosedByTheBrokerLogsWhy(t *testing.T) {
	logs := &syncbuf.Buffer{}
	ts := startServer(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	sub := ts.dial(t, "sub", "/livesys")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-sub.done
	waitFor(t, func() bool { return strings.Contains(logs.String(), `msg="connection closed" id=1`) })
	if out := logs.String(); !strings.Contains(out, `reason="1001 going away (by the broker)"`) {
		t.Errorf("the close line does not say why:\n%s", out)
	}
}
