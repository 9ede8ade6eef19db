package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

func policies(t testing.TB, ps ...broker.Policy) *broker.Policies {
	t.Helper()
	p, err := broker.NewPolicies(ps)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type envelope struct {
	Topic    string          `json:"topic"`
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding"`
	ID       uint64          `json:"id"`
	Attempt  int             `json:"attempt"`
	OK       *uint64         `json:"ok"`
	Gap      *broker.Gap     `json:"gap"`
	Error    *apiError       `json:"error"`
}

func (p *peer) nextEnvelope(t testing.TB) envelope {
	t.Helper()
	var e envelope
	text := p.nextText(t)
	if err := json.Unmarshal([]byte(text), &e); err != nil {
		t.Fatalf("frame %q is not JSON: %v", text, err)
	}
	return e
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func TestEnvelopeModeByQueryAndSubprotocol(t *testing.T) {
	ts := startServer(t, Options{})
	byQuery := ts.dialURL(t, client.URL(ts.ws, "sub", "/env", query("envelope", "1")), nil)
	bySubprotocol := ts.dialURL(t, client.URL(ts.ws, "sub", "/env", nil), &client.Options{Subprotocols: []string{"mercury.v1"}})
	if bySubprotocol.Subprotocol() != "mercury.v1" {
		t.Fatalf("subprotocol %q", bySubprotocol.Subprotocol())
	}
	pub := ts.dialURL(t, client.URL(ts.ws, "pub", "/env/42", query("envelope", "1")), nil)
	pub.send(t, `{"cmd":"reboot"}`)
	ok := pub.nextEnvelope(t)
	if ok.OK == nil || *ok.OK == 0 {
		t.Fatalf("publisher got %+v, want {\"ok\":SEQ}", ok)
	}
	pub.send(t, "plain text")
	pub.nextEnvelope(t)
	pub.WriteBinary(context.Background(), []byte{0xff, 0})
	pub.nextEnvelope(t)
	for _, sub := range []*peer{byQuery, bySubprotocol} {
		e := sub.nextEnvelope(t)
		if e.Topic != "/env/42" || e.Seq != *ok.OK || string(e.Data) != `{"cmd":"reboot"}` || e.Encoding != "" || e.Time.IsZero() {
			t.Fatalf("envelope %+v", e)
		}
		if e := sub.nextEnvelope(t); string(e.Data) != `"plain text"` || e.Encoding != "text" {
			t.Fatalf("text envelope %+v", e)
		}
		if e := sub.nextEnvelope(t); string(e.Data) != `"/wA="` || e.Encoding != "base64" {
			t.Fatalf("binary envelope %+v", e)
		}
	}
	raw := ts.dial(t, "sub", "/env")
	post(t, ts, "pub", "/env", "", "raw stays raw")
	if got := raw.nextText(t); got != "raw stays raw" {
		t.Fatalf("raw subscriber got %q", got)
	}
}

func TestPostAnswersSeqWhenAskedForJSON(t *testing.T) {
	ts := startServer(t, Options{})
	h := http.Header{"Accept": {"application/json"}}
	resp, err := client.Post(context.Background(), nil, ts.http.URL+"/pub/x", "", []byte("m"), h)
	if err != nil || resp.Status != 200 {
		t.Fatal(resp, err)
	}
	var body struct{ Seq uint64 }
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Seq == 0 {
		t.Fatalf("body %q", resp.Body)
	}
	if resp := post(t, ts, "pub", "/x", "", "m"); len(resp.Body) != 0 {
		t.Fatalf("without Accept: JSON the body must stay empty, got %q", resp.Body)
	}
}

func TestSinceReplaysThenLive(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{Policies: policies(t, broker.Policy{Bus: "/livesys", History: broker.History{Messages: 3}})}, Options{})
	for i := 1; i <= 5; i++ {
		post(t, ts, "pub", "/livesys/42", "", fmt.Sprintf("m%d", i))
	}
	raw := ts.dialURL(t, client.URL(ts.ws, "sub", "/livesys", query("since", "3")), nil)
	env := ts.dialURL(t, client.URL(ts.ws, "sub", "/livesys", query("since", "0", "envelope", "1")), nil)
	post(t, ts, "pub", "/livesys/42", "", "m6")
	for _, want := range []string{"m4", "m5", "m6"} {
		if got := raw.nextText(t); got != want {
			t.Fatalf("raw replay got %q, want %q", got, want)
		}
	}
	if g := env.nextEnvelope(t).Gap; g == nil || g.From != 1 || g.To != 2 {
		t.Fatalf("want a gap 1..2 first, got %+v", g)
	}
	for _, want := range []uint64{3, 4, 5, 6} {
		if e := env.nextEnvelope(t); e.Seq != want {
			t.Fatalf("envelope replay seq %d, want %d", e.Seq, want)
		}
	}
}

func TestAckingPuller(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{Policies: policies(t,
		broker.Policy{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 2, AckTimeout: 300 * time.Millisecond}})}, Options{})
	w := ts.dialURL(t, client.URL(ts.ws, "pull", "/jobs", query("envelope", "1")), nil)
	post(t, ts, "push", "/jobs", "", `{"job":1}`)
	d := w.nextEnvelope(t)
	if d.ID == 0 || d.Attempt != 1 || string(d.Data) != `{"job":1}` || d.Topic != "/jobs" {
		t.Fatalf("delivery %+v", d)
	}
	w.send(t, fmt.Sprintf(`{"nack":%d,"error":"try again"}`, d.ID))
	if d2 := w.nextEnvelope(t); d2.ID != d.ID || d2.Attempt != 2 {
		t.Fatalf("after a nack: %+v", d2)
	}
	// No ack: after the ack timeout it is the second failure, so it dies.
	waitFor(t, func() bool {
		dead, _ := ts.broker.DeadLetters("/jobs")
		return len(dead) == 1
	})
	resp, _ := client.Post(context.Background(), nil, ts.http.URL+"/api/queues/dead/requeue?topic=/jobs", "", nil, nil)
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `"requeued":1`) {
		t.Fatalf("requeue: %d %s", resp.Status, resp.Body)
	}
	d3 := w.nextEnvelope(t)
	if d3.ID != d.ID || d3.Attempt != 1 {
		t.Fatalf("requeued delivery %+v", d3)
	}
	w.send(t, fmt.Sprintf(`{"ack":%d}`, d3.ID))
	w.send(t, fmt.Sprintf(`{"ack":%d}`, d3.ID))
	if e := w.nextEnvelope(t); e.Error == nil || e.Error.Code != "unknown_id" {
		t.Fatalf("second ack: %+v", e)
	}
	w.send(t, `{"bogus":1}`)
	if e := w.nextEnvelope(t); e.Error == nil || e.Error.Code != "frame" {
		t.Fatalf("bad frame: %+v", e)
	}
	waitFor(t, func() bool {
		for _, q := range ts.broker.Queues() {
			if q.Topic == "/jobs" {
				return q.InFlight == 0 && q.Waiting == 0
			}
		}
		return false
	})
}

func TestDeadLetterAPI(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{Policies: policies(t,
		broker.Policy{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 1}})}, Options{})
	w := ts.dialURL(t, client.URL(ts.ws, "pull", "/jobs", query("envelope", "1")), nil)
	for i := 1; i <= 3; i++ {
		post(t, ts, "push", "/jobs", "", fmt.Sprintf(`{"n":%d}`, i))
		d := w.nextEnvelope(t)
		w.send(t, fmt.Sprintf(`{"nack":%d,"error":"failed %d"}`, d.ID, i))
	}
	waitFor(t, func() bool { d, _ := ts.broker.DeadLetters("/jobs"); return len(d) == 3 })
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&sb)
		return resp.StatusCode, sb.String()
	}
	code, body := get("/api/queues")
	if code != 200 || !strings.Contains(body, `"topic":"/jobs"`) || !strings.Contains(body, `"dead":3`) {
		t.Fatalf("GET /api/queues: %d %s", code, body)
	}
	code, body = get("/api/queues/dead?topic=/jobs")
	var list []deadLetter
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 3 || list[0].LastError != "failed 1" {
		t.Fatalf("GET dead: %d %s", code, body)
	}
	code, body = get(fmt.Sprintf("/api/queues/dead?topic=/jobs&id=%d", list[1].ID))
	if code != 200 || !strings.Contains(body, `"last_error":"failed 2"`) || !strings.Contains(body, `"data":{"n":2}`) {
		t.Fatalf("peek: %d %s", code, body)
	}
	resp, _ := client.Post(context.Background(), nil, ts.http.URL+"/api/queues/dead/pop?topic=/jobs", "", nil, nil)
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `"last_error":"failed 1"`) {
		t.Fatalf("pop: %d %s", resp.Status, resp.Body)
	}
	req, _ := http.NewRequest(http.MethodDelete, ts.http.URL+"/api/queues/dead?topic=/jobs", nil)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if code, body = get("/api/queues/dead?topic=/jobs"); body != "[]\n" {
		t.Fatalf("after purge: %d %s", code, body)
	}
	if code, _ = get("/api/queues/dead?topic=/nothing"); code != 404 {
		t.Fatalf("dead letters of no queue: %d", code)
	}
}

func TestMustExistExclusiveAndTakeover(t *testing.T) {
	ts := startServer(t, Options{})
	gone := ts.dialURL(t, client.URL(ts.ws, "pull", "/results/7", query("must_exist", "1")), nil)
	if err := gone.ended(t); client.CloseStatus(err) != 4404 {
		t.Fatalf("must_exist puller: %v, want close 4404", err)
	}
	pusher := ts.dialURL(t, client.URL(ts.ws, "push", "/results/7", query("must_exist", "1")), nil)
	if err := pusher.ended(t); client.CloseStatus(err) != 4404 {
		t.Fatalf("must_exist pusher: %v, want close 4404", err)
	}
	resp, _ := client.Post(context.Background(), nil, ts.http.URL+"/push/results/7?must_exist=1", "", []byte("r"), nil)
	if resp.Status != 404 || !strings.Contains(string(resp.Body), `"code":"no_queue"`) {
		t.Fatalf("must_exist POST: %d %s", resp.Status, resp.Body)
	}

	first := ts.dialURL(t, client.URL(ts.ws, "pull", "/tasks", query("exclusive", "1")), nil)
	ts.waitPullers(t, "/tasks", 1)
	second := ts.dialURL(t, client.URL(ts.ws, "pull", "/tasks", nil), nil)
	if err := second.ended(t); client.CloseStatus(err) != 4409 || client.CloseReason(err) != "queue has an exclusive puller" {
		t.Fatalf("second puller: %v, want 4409", err)
	}
	taker := ts.dialURL(t, client.URL(ts.ws, "pull", "/tasks", query("takeover", "1")), nil)
	if err := first.ended(t); client.CloseStatus(err) != 4409 || client.CloseReason(err) != "taken over" {
		t.Fatalf("taken-over puller: %v, want 4409 taken over", err)
	}
	post(t, ts, "push", "/tasks", "", "for the taker")
	if got := taker.nextText(t); got != "for the taker" {
		t.Fatalf("taker got %q", got)
	}
}

func TestServerSentEvents(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{Policies: policies(t, broker.Policy{Bus: "/feed", History: broker.History{Messages: 100}})},
		Options{SSEHeartbeat: 50 * time.Millisecond})
	post(t, ts, "pub", "/feed/a", "", "before")
	stream := func(header http.Header, q string) (*http.Response, *bufio.Reader, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.http.URL+"/sub/feed"+q, nil)
		req.Header = header
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("SSE answer %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp, bufio.NewReader(resp.Body), cancel
	}
	// readEvent returns the next event's fields, skipping comments but
	// counting them.
	comments := 0
	readEvent := func(r *bufio.Reader) map[string]string {
		ev := map[string]string{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && len(ev) > 0:
				return ev
			case line == "":
			case strings.HasPrefix(line, ":"):
				comments++
			default:
				k, v, _ := strings.Cut(line, ": ")
				if ev[k] != "" {
					v = ev[k] + "\n" + v
				}
				ev[k] = v
			}
		}
	}
	resp, r, cancel := stream(http.Header{}, "")
	defer resp.Body.Close()
	defer cancel()
	post(t, ts, "pub", "/feed/b", "", "live\nsecond line")
	ev := readEvent(r)
	if ev["data"] != "live\nsecond line" || ev["id"] == "" {
		t.Fatalf("event %v", ev)
	}
	post(t, ts, "pub", "/feed/b", "", "third")
	next := readEvent(r)
	time.Sleep(200 * time.Millisecond)
	post(t, ts, "pub", "/feed/b", "", "after a pause")
	readEvent(r)
	if comments == 0 {
		t.Fatal("no keepalive comment during a pause")
	}

	// Resume with Last-Event-ID: what came after that id, then live.
	resp2, r2, cancel2 := stream(http.Header{"Last-Event-ID": {ev["id"]}}, "")
	defer resp2.Body.Close()
	defer cancel2()
	if got := readEvent(r2); got["id"] != next["id"] || got["data"] != "third" {
		t.Fatalf("resumed stream starts with %v, want id %s", got, next["id"])
	}
	if got := readEvent(r2); got["data"] != "after a pause" {
		t.Fatalf("resumed stream then %v", got)
	}
	// Envelope mode: data is the envelope.
	resp3, r3, cancel3 := stream(http.Header{}, "?envelope=1&since=0")
	defer resp3.Body.Close()
	defer cancel3()
	var e envelope
	if err := json.Unmarshal([]byte(readEvent(r3)["data"]), &e); err != nil || e.Topic != "/feed/a" || string(e.Data) != `"before"` {
		t.Fatalf("envelope event %+v %v", e, err)
	}
}

func TestQueueTTLOverTheWire(t *testing.T) {
	ts := startServer(t, Options{})
	resp, _ := client.Post(context.Background(), nil, ts.http.URL+"/push/results/1?ttl=150ms", "", []byte("result"), nil)
	if resp.Status != 200 {
		t.Fatalf("push: %d %s", resp.Status, resp.Body)
	}
	if !ts.broker.QueueExists("/results/1") {
		t.Fatal("queue not created")
	}
	waitFor(t, func() bool { return !ts.broker.QueueExists("/results/1") })
	late := ts.dialURL(t, client.URL(ts.ws, "pull", "/results/1", query("must_exist", "1")), nil)
	if err := late.ended(t); client.CloseStatus(err) != 4404 {
		t.Fatalf("puller after the TTL: %v, want 4404", err)
	}
}

// TestReplayJoinsLiveUnderLoad: subscribers join with since=0 while
// publishers are busy; each sees every sequence number once, in order.
func TestReplayJoinsLiveUnderLoad(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{Policies: policies(t, broker.Policy{Bus: "/t", History: broker.History{Messages: 100000}})},
		Options{OutgoingQueue: 64 << 20})
	const publishers, each = 3, 300
	done := make(chan struct{})
	for p := range publishers {
		// Dialled here: the test's helpers must run on the test goroutine.
		pub := ts.dialURL(t, client.URL(ts.ws, "pub", fmt.Sprintf("/t/%d", p), query("envelope", "1")), nil)
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				if err := pub.WriteText(context.Background(), fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-pub.frames: // the confirm
				case <-time.After(5 * time.Second):
					t.Error("no confirm within 5s")
					return
				}
			}
		}()
	}
	var subs []*peer
	for range 4 {
		time.Sleep(5 * time.Millisecond)
		subs = append(subs, ts.dialURL(t, client.URL(ts.ws, "sub", "/t", query("since", "0", "envelope", "1")), nil))
	}
	for range publishers {
		<-done
	}
	for i, s := range subs {
		for want := uint64(1); want <= publishers*each; want++ {
			e := s.nextEnvelope(t)
			if e.Gap != nil || e.Seq != want {
				t.Fatalf("subscriber %d: got seq %d gap %+v, want seq %d", i, e.Seq, e.Gap, want)
			}
		}
		s.nothing(t)
	}
}
