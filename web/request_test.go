package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

// requestFrame is what a responder receives.
type requestFrame struct {
	Reply string          `json:"reply"`
	Topic string          `json:"topic"`
	Seq   *uint64         `json:"seq"`
	Data  json.RawMessage `json:"data"`
}

func readRequest(t *testing.T, p *peer) requestFrame {
	t.Helper()
	var f requestFrame
	if err := json.Unmarshal([]byte(p.nextText(t)), &f); err != nil || f.Reply == "" {
		t.Fatalf("not a request frame: %v %+v", err, f)
	}
	return f
}

func postRequest(t *testing.T, ts *testServer, topic, query, contentType, body string, header http.Header) *client.Response {
	t.Helper()
	resp, err := client.Post(context.Background(), nil, ts.http.URL+"/req"+topic+query, contentType, []byte(body), header)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// requestAsync sends a request in the background.
func requestAsync(t *testing.T, ts *testServer, topic, query, body string) <-chan *client.Response {
	ch := make(chan *client.Response, 1)
	go func() {
		resp, err := client.Post(context.Background(), nil, ts.http.URL+"/req"+topic+query, "", []byte(body), nil)
		if err != nil {
			t.Error(err)
		}
		ch <- resp
	}()
	return ch
}

func TestRequestOneAgentAnswers(t *testing.T) {
	ts := startServer(t, Options{})
	agent := ts.dialURL(t, ts.ws+"/sub/livesys/42?envelope=1", nil)
	raw := ts.dial(t, "sub", "/livesys/42")                      // gets the request as a message, is no responder
	above := ts.dialURL(t, ts.ws+"/sub/livesys?envelope=1", nil) // a request goes down the hierarchy, not up
	ts.waitSubscribed(t, 3)

	done := requestAsync(t, ts, "/livesys/42", "?timeout=5s", `{"cmd":"uptime"}`)
	f := readRequest(t, agent)
	if f.Topic != "/livesys/42" || string(f.Data) != `{"cmd":"uptime"}` || f.Seq != nil {
		t.Fatalf("request frame %+v", f)
	}
	if got := raw.nextText(t); got != `{"cmd":"uptime"}` {
		t.Fatalf("raw subscriber got %q", got)
	}
	agent.send(t, `{"reply":"`+f.Reply+`","data":{"up":5}}`)
	resp := <-done
	if resp.Status != 200 || string(resp.Body) != `{"up":5}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer: %d %s %v", resp.Status, resp.Body, resp.Header)
	}
	if got := ts.broker.PendingRequests(); got != 0 {
		t.Fatalf("%d requests still pending", got)
	}
	above.nothing(t)

	// Text and binary answers keep their kind.
	for _, c := range []struct{ frame, body, ctype string }{
		{`"encoding":"text","data":"up 5 days"`, "up 5 days", "text/plain; charset=utf-8"},
		{`"encoding":"base64","data":"AAEC"`, "\x00\x01\x02", "application/octet-stream"},
	} {
		done := requestAsync(t, ts, "/livesys/42", "", "uptime")
		f := readRequest(t, agent)
		raw.nextText(t)
		if string(f.Data) != `"uptime"` {
			t.Fatalf("text request data %s", f.Data)
		}
		agent.send(t, `{"reply":"`+f.Reply+`",`+c.frame+`}`)
		resp := <-done
		if resp.Status != 200 || string(resp.Body) != c.body || resp.Header.Get("Content-Type") != c.ctype {
			t.Fatalf("answer: %d %q %v", resp.Status, resp.Body, resp.Header)
		}
	}
}

func TestRequestResponderIsNamed(t *testing.T) {
	k := authtest.NewKeys(t)
	ts := startServer(t, Options{Auth: testAuth(t, k)})
	agentTok := k.Sign(t, "HS256", k.Claims("42", time.Hour, map[string]any{"sub": []any{"/livesys/{sub}"}}), "")
	opTok := k.Sign(t, "HS256", k.Claims("op", time.Hour, map[string]any{"pub": []any{"/livesys"}}), "")
	agent := ts.dialURL(t, ts.ws+"/sub/livesys/42?envelope=1", &client.Options{Token: agentTok})
	ts.waitSubscribed(t, 1)

	// Sending a request needs the pub right.
	if resp := postRequest(t, ts, "/livesys/42", "", "", "x", http.Header{"Authorization": {"Bearer " + agentTok}}); resp.Status != 403 {
		t.Fatalf("request without the pub right: %d %s", resp.Status, resp.Body)
	}
	done := make(chan *client.Response, 1)
	go func() {
		resp, err := client.Post(context.Background(), nil, ts.http.URL+"/req/livesys/42", "", []byte(`"uptime"`),
			http.Header{"Authorization": {"Bearer " + opTok}})
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	f := readRequest(t, agent)
	// The answer needs no right beyond having received the request.
	agent.send(t, `{"reply":"`+f.Reply+`","data":"ok"}`)
	resp := <-done
	if resp.Status != 200 || resp.Header.Get(ResponderHeader) != "42" || string(resp.Body) != `"ok"` {
		t.Fatalf("answer: %d %s %v", resp.Status, resp.Body, resp.Header)
	}
}

func TestRequestAllOverFiftyAgents(t *testing.T) {
	ts := startServer(t, Options{})
	const n = 50
	agents := make([]*peer, n)
	for i := range agents {
		agents[i] = ts.dialURL(t, fmt.Sprintf("%s/sub/livesys/%d?envelope=1", ts.ws, i), nil)
	}
	ts.waitSubscribed(t, n)
	start := time.Now()
	done := requestAsync(t, ts, "/livesys", "?all=1&timeout=30s", `"hostname?"`)
	var wg sync.WaitGroup
	for i, a := range agents {
		f := readRequest(t, a)
		wg.Go(func() { a.send(t, fmt.Sprintf(`{"reply":%q,"data":{"agent":%d}}`, f.Reply, i)) })
	}
	wg.Wait()
	resp := <-done
	var answers []struct {
		User  *string `json:"user"`
		Topic string  `json:"topic"`
		Data  struct {
			Agent int `json:"agent"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &answers); resp.Status != 200 || err != nil {
		t.Fatalf("%d %s %v", resp.Status, resp.Body, err)
	}
	seen := map[int]bool{}
	for _, a := range answers {
		if a.Topic != fmt.Sprintf("/livesys/%d", a.Data.Agent) || a.User != nil {
			t.Fatalf("answer %+v", a)
		}
		seen[a.Data.Agent] = true
	}
	if len(answers) != n || len(seen) != n {
		t.Fatalf("%d answers from %d agents, want %d", len(answers), len(seen), n)
	}
	// Every responder answered: no wait for the timeout.
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestRequestNoResponders(t *testing.T) {
	ts := startServer(t, Options{})
	ts.dial(t, "sub", "/livesys/42")                       // raw: not a responder
	ts.dialURL(t, ts.ws+"/sub/livesys/43?envelope=1", nil) // another topic
	ts.waitSubscribed(t, 2)
	resp := postRequest(t, ts, "/livesys/42", "?timeout=30s", "", "x", nil)
	if e := client.ParseError(resp.Body); resp.Status != 503 || e == nil || e.Code != "no_responders" {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if got := ts.broker.PendingRequests(); got != 0 {
		t.Fatalf("%d requests pending", got)
	}
}

func TestRequestTimeoutDropsLateAnswer(t *testing.T) {
	ts := startServer(t, Options{})
	agent := ts.dialURL(t, ts.ws+"/sub/livesys/42?envelope=1", nil)
	ts.waitSubscribed(t, 1)
	done := requestAsync(t, ts, "/livesys/42", "?timeout=300ms", "x")
	f := readRequest(t, agent)
	resp := <-done
	if e := client.ParseError(resp.Body); resp.Status != 504 || e == nil || e.Code != "timeout" {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	agent.send(t, `{"reply":"`+f.Reply+`","data":1}`)
	if e := client.ParseError([]byte(agent.nextText(t))); e == nil || e.Code != "request_ended" {
		t.Fatalf("late answer: %v", e)
	}
	if got := ts.broker.LateAnswers(); got != 1 {
		t.Fatalf("late answers %d, want 1", got)
	}
	mresp, err := http.Get(ts.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(body), "mercury_request_late_answers_total 1\n") {
		t.Fatal("late answer not in /metrics")
	}
}

func TestReplyOnlyToARequestReceived(t *testing.T) {
	ts := startServer(t, Options{})
	agent := ts.dialURL(t, ts.ws+"/sub/livesys/42?envelope=1", nil)
	other := ts.dialURL(t, ts.ws+"/sub/livesys/43?envelope=1", nil)
	ts.waitSubscribed(t, 2)
	done := requestAsync(t, ts, "/livesys/42", "?timeout=5s", "x")
	f := readRequest(t, agent)
	// Another agent cannot answer a request it never received.
	other.send(t, `{"reply":"`+f.Reply+`","data":"forged"}`)
	if e := client.ParseError([]byte(other.nextText(t))); e == nil || e.Code != "unknown_request" {
		t.Fatalf("forged answer: %v", e)
	}
	agent.send(t, `{"reply":"`+f.Reply+`","data":"real"}`)
	if resp := <-done; resp.Status != 200 || string(resp.Body) != `"real"` {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	// Nor answer twice.
	agent.send(t, `{"reply":"`+f.Reply+`","data":"again"}`)
	if e := client.ParseError([]byte(agent.nextText(t))); e == nil || e.Code != "unknown_request" {
		t.Fatalf("second answer: %v", e)
	}
	// A reply frame without data is refused; other frames are ignored.
	agent.send(t, `{"reply":"x"}`)
	if e := client.ParseError([]byte(agent.nextText(t))); e == nil || e.Code != "frame" {
		t.Fatalf("reply without data: %v", e)
	}
	agent.send(t, `{"hello":1}`)
	agent.nothing(t)
}

// A hostile requester cannot make the broker hold more pending requests
// than its limit: beyond it, requests are refused, clearly, at once.
func TestPendingRequestsBounded(t *testing.T) {
	const limit = 8
	ts := startServerWithBroker(t, broker.Options{MaxPendingRequests: limit}, Options{})
	agent := ts.dialURL(t, ts.ws+"/sub/livesys/42?envelope=1", nil) // never answers
	ts.waitSubscribed(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			client.Post(ctx, nil, ts.http.URL+"/req/livesys/42?timeout=60s", "", []byte("x"), nil)
		})
	}
	waitFor(t, func() bool { return ts.broker.PendingRequests() == limit })
	for range 20 {
		resp := postRequest(t, ts, "/livesys/42", "?timeout=60s", "", "x", nil)
		if e := client.ParseError(resp.Body); resp.Status != 503 || e == nil || e.Code != "too_many_requests" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
	if got := ts.broker.PendingRequests(); got != limit {
		t.Fatalf("%d pending, want %d", got, limit)
	}
	// Requesters that leave end their requests.
	cancel()
	wg.Wait()
	waitFor(t, func() bool { return ts.broker.PendingRequests() == 0 })
	for range limit {
		readRequest(t, agent)
	}
}

// The ids a responder may answer stay bounded by the requests that wait:
// those of ended requests are dropped as new ones come.
func TestReplyIDsBounded(t *testing.T) {
	b := broker.New(broker.Options{})
	var r replyIDs
	for i := range 10000 {
		r.add(fmt.Sprintf("ended.%d", i), b)
	}
	if n := r.len(); n > 2*minReplyPrune {
		t.Fatalf("%d ids held for ended requests", n)
	}
}

func TestRequestQueryChecked(t *testing.T) {
	ts := startServer(t, Options{})
	for _, q := range []string{"?timeout=61s", "?timeout=0s", "?timeout=x", "?all=2"} {
		resp := postRequest(t, ts, "/a", q, "", "x", nil)
		if e := client.ParseError(resp.Body); resp.Status != 400 || e == nil || e.Code != "query" {
			t.Errorf("%s: %d %s", q, resp.Status, resp.Body)
		}
	}
}
