package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

// mercuryjsConfig has a bus with a schema, a durable bus and a durable
// queue, for the scenarios of test/node/mercuryjs.mjs.
func mercuryjsConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	schema := filepath.Join(dir, "typed.json")
	os.WriteFile(schema, []byte(`{"type":"object","required":["n"]}`), 0o600)
	cfg := filepath.Join(dir, "mercury.yaml")
	yaml := fmt.Sprintf(`buses:
  /typed:
    schema: %s
  /durable:
    durable: true
  /work:
    durable: true
    queue: {max_attempts: 5}
%s`, schema, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// jsRun is a running scenario of node/mercuryjs.mjs.
type jsRun struct {
	lines chan map[string]json.RawMessage
}

func startJS(t *testing.T, env []string, scenario string, args ...string) *jsRun {
	t.Helper()
	// mercury.js needs Node alone, no npm package.
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is needed")
		}
		t.Skip("node is needed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", append([]string{"--experimental-websocket", "--no-warnings",
		filepath.Join(nodeDir, "mercuryjs.mjs"), scenario}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &jsRun{lines: make(chan map[string]json.RawMessage, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var line map[string]json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("node printed %q: %v", sc.Text(), err)
				continue
			}
			r.lines <- line
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("node stderr:\n%s", stderr.String())
		}
	})
	return r
}

// next returns the next line with key, within d.
func (r *jsRun) next(t *testing.T, key string, d time.Duration) json.RawMessage {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("node exited before printing %q", key)
			}
			if f, ok := line["fail"]; ok {
				t.Fatalf("scenario failed: %s\nstates %s\nerrors %s", f, line["states"], line["errors"])
			}
			if v, ok := line[key]; ok {
				return v
			}
		case <-timeout:
			t.Fatalf("no %q from node within %v", key, d)
		}
	}
}

// result decodes the scenario's result into v.
func (r *jsRun) result(t *testing.T, v any, d time.Duration) {
	t.Helper()
	if err := json.Unmarshal(r.next(t, "result", d), v); err != nil {
		t.Fatal(err)
	}
}

// TestMercuryJSBasics: a publish is confirmed with its sequence number or
// rejected with the broker's error; a bus peer without echo does not get
// its own frames.
func TestMercuryJSBasics(t *testing.T) {
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir())
	var res struct {
		Seq     uint64
		Refused struct{ Name, Code, Topic, Message string }
		Got     []struct {
			Topic string
			Seq   uint64
			Epoch string
			Data  map[string]int
		}
		BusSeq uint64
		A, B   []map[string]string
	}
	startJS(t, nil, "basics", b.WS).result(t, &res, 30*time.Second)
	if res.Seq == 0 || len(res.Got) != 1 || res.Got[0].Seq != res.Seq || res.Got[0].Topic != "/typed/a" || res.Got[0].Data["n"] != 1 || res.Got[0].Epoch == "" {
		t.Errorf("confirmed %d, received %+v", res.Seq, res.Got)
	}
	if res.Refused.Name != "MercuryError" || res.Refused.Code != "schema" || res.Refused.Topic != "/typed/a" || !strings.Contains(res.Refused.Message, "n") {
		t.Errorf("refusal %+v", res.Refused)
	}
	if res.BusSeq <= res.Seq || len(res.A) != 0 || len(res.B) != 1 || res.B[0]["from"] != "a" {
		t.Errorf("bus: seq %d, A got %v, B got %v", res.BusSeq, res.A, res.B)
	}
}

// TestMercuryJSDurableRestarts: a subscriber on a durable bus keeps every
// message, in order, once, while the broker is killed and restarted on
// the same data dir twice during a 2,000-message publish.
func TestMercuryJSDurableRestarts(t *testing.T) {
	cfg := mercuryjsConfig(t, "")
	data := t.TempDir()
	b := startBroker(t, "--config", cfg, "--data-dir", data)
	js := startJS(t, nil, "durable", b.WS)
	for _, at := range []string{"600", "1300"} {
		for string(js.next(t, "published", 60*time.Second)) != at {
		}
		b.signal(syscall.SIGKILL)
		<-b.done
		b = startBrokerOn(t, b.Listen, "--config", cfg, "--data-dir", data)
	}
	var res struct {
		Got        [][2]uint64
		Confirmed  []uint64
		Retries    int
		Reconnects int
	}
	js.result(t, &res, 120*time.Second)
	if res.Reconnects < 2 {
		t.Errorf("%d reconnections: the broker was restarted twice", res.Reconnects)
	}
	// What the subscriber got is what the broker keeps.
	kept := replayDurable(t, b, res.Confirmed[len(res.Confirmed)-1], nil)
	checkReceivedKept(t, res.Got, kept, 2000)
	t.Logf("%d messages received, %d publishes retried, %d reconnections", len(res.Got), res.Retries, res.Reconnects)
}

// TestMercuryJSPull: a worker pulls 500 jobs and nacks every tenth once;
// in the end every job is done exactly once and the queue is empty.
func TestMercuryJSPull(t *testing.T) {
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir())
	var res struct {
		Done   []int
		Nacked int
	}
	startJS(t, nil, "pull", b.WS).result(t, &res, 60*time.Second)
	if len(res.Done) != 500 || res.Nacked != 50 {
		t.Fatalf("%d jobs done, %d nacked", len(res.Done), res.Nacked)
	}
	for i, n := range res.Done {
		if n != 1 {
			t.Fatalf("job %d done %d times", i, n)
		}
	}
	resp := get(t, b.HTTP+"/api/queues")
	var raw []map[string]any
	json.Unmarshal(resp, &raw)
	if len(raw) != 1 || raw[0]["waiting"] != 0.0 || raw[0]["in_flight"] != 0.0 || raw[0]["dead"] != 0.0 {
		t.Fatalf("queues after the run: %s", resp)
	}
}

// get returns the body of GET u.
func get(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestMercuryJSTokenRefresh: tokens that expire every 5 s are refreshed
// in-band for a minute; no connection is closed for an expired token.
func TestMercuryJSTokenRefresh(t *testing.T) {
	k := authtest.NewKeys(t)
	cfg := filepath.Join(t.TempDir(), "mercury.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("auth:\n  jwt:\n    secret_file: %s\n    issuer: %s\n    audience: %s\n",
		k.Files.Secret, k.Issuer, k.Audience)), 0o600)
	b := startBroker(t, "--config", cfg)
	var minted atomic.Int64
	mint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		minted.Add(1)
		fmt.Fprint(w, k.Sign(t, "HS256", k.Claims("js", 5*time.Second, map[string]any{"sub": []any{"/tok"}, "pub": []any{"/tok"}}), ""))
	}))
	t.Cleanup(mint.Close)
	seconds := 60
	if testing.Short() {
		seconds = 12
	}
	var res struct{ Published, Got int }
	js := startJS(t, []string{fmt.Sprint("TOKEN_SECONDS=", seconds)}, "token", b.WS, mint.URL)
	js.result(t, &res, time.Duration(seconds+30)*time.Second)
	if res.Published < seconds || res.Got != res.Published {
		t.Fatalf("published %d, received %d", res.Published, res.Got)
	}
	if n := minted.Load(); n < int64(seconds/5) {
		t.Fatalf("%d tokens minted in %d s of 5 s tokens", n, seconds)
	}
	if strings.Contains(b.logs.String(), "token expired") {
		t.Fatalf("a connection was closed for an expired token:\n%s", b.logs)
	}
	t.Logf("%d tokens minted, %d messages", minted.Load(), res.Got)
}

// TestMercuryJSServerSentEvents: with WebSockets refused by a proxy on
// the way, a subscription works over Server-Sent Events.
func TestMercuryJSServerSentEvents(t *testing.T) {
	b := startBroker(t)
	server, refused := noWebSocketProxy(t, b) // closed after node is gone: its stream holds a connection
	js := startJS(t, nil, "sse", server)
	// The stream's headers come with its first event: publish until the
	// subscriber has three.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			client.Post(context.Background(), nil, b.HTTP+"/pub/sse/x", "", []byte(fmt.Sprint(i)), nil)
		}
	}()
	var res struct{ Got []int }
	js.result(t, &res, 30*time.Second)
	close(stop)
	<-published
	if len(res.Got) != 3 || res.Got[1] != res.Got[0]+1 || res.Got[2] != res.Got[1]+1 || refused.Load() == 0 {
		t.Fatalf("got %v; WebSockets refused %d times", res.Got, refused.Load())
	}
}

// TestMercuryJSServed: the broker serves mercury.js as it is in the
// repository, with an ETag (304 when it matches), to anyone: with auth
// on, no credential is needed for it.
func TestMercuryJSServed(t *testing.T) {
	want, err := os.ReadFile("../web/client/js/mercury.js")
	if err != nil {
		t.Fatal(err)
	}
	ab := startAuthBroker(t)
	resp, err := http.Get(ab.HTTP + "/mercury.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || string(body) != string(want) || etag == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("GET /mercury.js: %d %v, %d bytes", resp.StatusCode, resp.Header, len(body))
	}
	req, _ := http.NewRequest(http.MethodGet, ab.HTTP+"/mercury.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("with If-None-Match %s: %d", etag, resp.StatusCode)
	}
	// The data behind it still needs a credential.
	if r := post(t, ab.HTTP+"/pub/livesys/1", "x"); r.Status != http.StatusUnauthorized {
		t.Fatalf("POST without a credential: %d", r.Status)
	}
}

// TestMercuryJSAgents: m.request is answered by subscribers with
// onRequest (JSON as JSON, text as text, every answer with all) and
// rejects with the broker's no_responders and timeout; m.presence lists
// the subscriptions; onPresence gets join and leave events, and
// onMessage only messages.
func TestMercuryJSAgents(t *testing.T) {
	b := startBroker(t)
	js := startJS(t, nil, "agents", b.WS)
	js.next(t, "ready", 30*time.Second)
	// The agent answers a request that did not come from mercury.js.
	r := post(t, b.HTTP+"/req/agents/42?timeout=5s", `{"cmd":"go"}`)
	if r.Status != 200 || string(r.Body) != `{"echo":{"cmd":"go"},"topic":"/agents/42","id":"string"}` {
		t.Errorf("POST /req/agents/42: %d %s", r.Status, r.Body)
	}
	post(t, b.HTTP+"/pub/agents/done", "bye")
	type refusal struct {
		Name, Code, Topic string
		Status            int
	}
	type answer struct {
		User  *string
		Topic string
		Data  any
	}
	var res struct {
		NoResponders, Timeout, All *refusal
		Events                     []struct{ Event, Topic, Since string }
		Messages                   []any
		Presence                   []string
		One                        map[string]any
		Text                       string
		Every                      []answer
	}
	js.result(t, &res, 30*time.Second)
	if want := (refusal{"MercuryError", "no_responders", "/agents", 503}); res.NoResponders == nil || *res.NoResponders != want {
		t.Errorf("request without responders: %+v", res.NoResponders)
	}
	if want := (refusal{"MercuryError", "timeout", "/agents/mute", 504}); res.Timeout == nil || *res.Timeout != want {
		t.Errorf("request to a subscriber that does not answer: %+v", res.Timeout)
	}
	if res.All == nil || res.All.Code != "no_responders" {
		t.Errorf("/agents/4 is not above /agents/42: %+v", res.All)
	}
	if fmt.Sprint(res.One) != "map[echo:map[cmd:uptime] id:string topic:/agents/42]" || res.Text != "up 43: hostname?" {
		t.Errorf("answers %v and %q", res.One, res.Text)
	}
	if len(res.Every) != 2 || res.Every[0].Topic != "/agents/42" || res.Every[1].Topic != "/agents/43" ||
		res.Every[1].Data != "up 43: who?" || res.Every[0].User != nil {
		t.Errorf("every answer: %+v", res.Every)
	}
	if strings.Join(res.Presence, " ") != "/agents /agents/42 /agents/43 /agents/mute/1" {
		t.Errorf("presence %v", res.Presence)
	}
	var joins, leaves []string
	for _, e := range res.Events {
		if e.Since == "" {
			t.Errorf("event without since: %+v", e)
		}
		switch e.Event {
		case "join":
			joins = append(joins, e.Topic)
		case "leave":
			leaves = append(leaves, e.Topic)
		}
	}
	slices.Sort(joins) // the agents connect at once
	if strings.Join(joins, " ") != "/agents /agents/42 /agents/43 /agents/mute/1" || strings.Join(leaves, " ") != "/agents/43" {
		t.Errorf("joins %v, leaves %v", joins, leaves)
	}
	if fmt.Sprint(res.Messages) != "[bye]" {
		t.Errorf("onMessage got %v: presence events are not messages", res.Messages)
	}
}

// agentBroker starts a broker with authorization and mints agent 42 a
// token, good for an hour, to subscribe and publish on /livesys/42.
func agentBroker(t *testing.T) (*authBroker, string) {
	t.Helper()
	ab := startAuthBroker(t)
	rights := map[string]any{"sub": []any{"/livesys/42"}, "pub": []any{"/livesys/42"}}
	return ab, ab.keys.Sign(t, "HS256", ab.keys.Claims("42", time.Hour, rights), "")
}

// jsRefusal is what mercury.js rejects with: a MercuryError with the
// broker's status and code.
type jsRefusal struct {
	Name, Code string
	Status     int
}

// TestMercuryJSAgentToken: m.request and m.presence carry the client's
// token; what it does not allow rejects with the broker's 403.
func TestMercuryJSAgentToken(t *testing.T) {
	ab, token := agentBroker(t)
	var res struct {
		Answer                      string
		Presence                    []struct{ Topic, User string }
		OtherPresence, OtherRequest jsRefusal
	}
	startJS(t, nil, "agentToken", ab.WS, token).result(t, &res, 30*time.Second)
	if res.Answer != "me" || len(res.Presence) != 1 || res.Presence[0].Topic != "/livesys/42" || res.Presence[0].User != "42" {
		t.Errorf("answer %q, presence %+v", res.Answer, res.Presence)
	}
	for _, r := range []jsRefusal{res.OtherPresence, res.OtherRequest} {
		if r.Name != "MercuryError" || r.Status != 403 || r.Code == "" {
			t.Errorf("outside its rights: %+v", r)
		}
	}
}

// TestMercuryJSEncodings: a message says how the broker carried it, so
// text, a JSON string, JSON and bytes are told apart; a topic holding
// "?", "#", "%" or a space is the topic used, not a broken URL.
func TestMercuryJSEncodings(t *testing.T) {
	b := startBroker(t)
	var res struct {
		Got []struct {
			Data     any
			Encoding string
		}
		OddGot, OddPresence []string
	}
	startJS(t, nil, "encodings", b.WS).result(t, &res, 30*time.Second)
	if got := fmt.Sprint(res.Got); got != "[{plain words text} {quoted json} {map[n:1] json} {[0 255 1] base64}]" {
		t.Errorf("messages %s", got)
	}
	const odd = "/odd/a b?c#d%2F e"
	if fmt.Sprint(res.OddGot) != "["+odd+"]" || fmt.Sprint(res.OddPresence) != "["+odd+"]" {
		t.Errorf("topic %q: received on %q, present %q", odd, res.OddGot, res.OddPresence)
	}
}

// TestMercuryJSRefreshToken: refreshToken after a login brings up a
// subscription refused for want of a credential at once, not after its
// backoff; after a logout the client is anonymous again. A handle's own
// onError gets its refusals (401, then 403 that closes it), the client's
// onError none of them. A post is accepted with its sequence number, or
// refused at once with its HTTP status.
func TestMercuryJSRefreshToken(t *testing.T) {
	ab, token := agentBroker(t)
	var res struct {
		HandleError  jsRefusal
		Waited       int
		Got          []any
		Refusals     []jsRefusal
		Posted       uint64
		PostRefused  jsRefusal
		After        jsRefusal
		ClientErrors []string
	}
	startJS(t, nil, "refresh", ab.WS, token).result(t, &res, 60*time.Second)
	if res.HandleError.Name != "MercuryError" || res.HandleError.Status != 401 {
		t.Errorf("the subscription without a credential: %+v", res.HandleError)
	}
	if res.Waited > 5000 || fmt.Sprint(res.Got) != "[hello map[n:2]]" {
		t.Errorf("subscribed %d ms after refreshToken, got %v", res.Waited, res.Got)
	}
	if len(res.Refusals) != 1 || res.Refusals[0].Status != 403 {
		t.Errorf("the subscription outside the token's rights: %+v", res.Refusals)
	}
	if res.Posted == 0 || res.PostRefused.Name != "MercuryError" || res.PostRefused.Status != 403 {
		t.Errorf("post: seq %d, outside the token's rights %+v", res.Posted, res.PostRefused)
	}
	if res.After.Name != "MercuryError" || res.After.Status != 401 {
		t.Errorf("presence after the logout: %+v", res.After)
	}
	if len(res.ClientErrors) > 0 {
		t.Errorf("the client's onError got the handles' errors: %v", res.ClientErrors)
	}
}

// TestMercuryJSStaleToken: a getToken that keeps giving a token about to
// expire is asked again when a connection needs it, a few times in 3 s,
// not in a loop of timers.
func TestMercuryJSStaleToken(t *testing.T) {
	ab := startAuthBroker(t)
	rights := map[string]any{"sub": []any{"/livesys/42"}}
	token := ab.keys.Sign(t, "HS256", ab.keys.Claims("42", 900*time.Millisecond, rights), "")
	var res struct{ Calls int }
	startJS(t, nil, "stale", ab.WS, token).result(t, &res, 30*time.Second)
	if res.Calls == 0 || res.Calls > 30 {
		t.Fatalf("getToken called %d times in 3 s", res.Calls)
	}
	t.Logf("getToken called %d times in 3 s", res.Calls)
}
