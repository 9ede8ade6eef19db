package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

func TestBusEchoAndStrangers(t *testing.T) {
	ts := startServer(t, Options{})
	plain := ts.dial(t, "bus", "/room")
	echo := ts.dialURL(t, client.URL(ts.ws, "bus", "/room", map[string][]string{"echo": {"1"}}), nil)
	other := ts.dial(t, "bus", "/room")
	stranger := ts.dial(t, "bus", "/hall")
	child := ts.dial(t, "bus", "/room/annex")
	ts.waitPeers(t, 5)

	plain.send(t, "from plain")
	if got := echo.nextText(t); got != "from plain" {
		t.Fatalf("echo peer got %q", got)
	}
	if got := other.nextText(t); got != "from plain" {
		t.Fatalf("other peer got %q", got)
	}
	echo.send(t, "from echo")
	if got := echo.nextText(t); got != "from echo" {
		t.Fatalf("echo peer got %q of its own frame", got)
	}
	if got := plain.nextText(t); got != "from echo" {
		t.Fatalf("plain peer got %q", got)
	}
	other.nextText(t)
	post(t, ts, "bus", "/room", "", "posted")
	for _, p := range []*peer{plain, echo, other} {
		if got := p.nextText(t); got != "posted" {
			t.Fatalf("a peer got %q, want the POSTed frame", got)
		}
	}
	plain.nothing(t) // never its own frame without echo
	stranger.nothing(t)
	child.nothing(t)
}

func pullers(t *testing.T, ts *testServer, n int) []*peer {
	ps := make([]*peer, n)
	for i := range ps {
		ps[i] = ts.dial(t, "pull", "/jobs")
		ts.waitPullers(t, "/jobs", i+1)
	}
	return ps
}

func pushRange(t *testing.T, ts *testServer, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if resp := post(t, ts, "push", "/jobs", "", fmt.Sprintf("m%d", i)); resp.Status != 200 {
			t.Fatalf("push m%d = %d %s", i, resp.Status, resp.Body)
		}
	}
}

func expectFrames(t *testing.T, name string, p *peer, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := p.nextText(t); got != w {
			t.Fatalf("%s got %q, want %q", name, got, w)
		}
	}
}

func TestPushPullRoundRobin(t *testing.T) {
	ts := startServer(t, Options{})
	p := pullers(t, ts, 3)
	pushRange(t, ts, 1, 7)
	expectFrames(t, "A", p[0], "m1", "m4", "m7")
	expectFrames(t, "B", p[1], "m2", "m5")
	expectFrames(t, "C", p[2], "m3", "m6")
	for _, x := range p {
		x.nothing(t)
	}
}

func TestPullerLeavingAndJoiningKeepsTheRotation(t *testing.T) {
	ts := startServer(t, Options{})
	p := pullers(t, ts, 3)
	pushRange(t, ts, 1, 3)
	expectFrames(t, "A", p[0], "m1")
	expectFrames(t, "B", p[1], "m2")
	expectFrames(t, "C", p[2], "m3")

	p[1].Close() // B leaves
	ts.waitPullers(t, "/jobs", 2)
	pushRange(t, ts, 4, 5)
	expectFrames(t, "A", p[0], "m4")
	expectFrames(t, "C", p[2], "m5")

	d := ts.dial(t, "pull", "/jobs") // D joins after C
	ts.waitPullers(t, "/jobs", 3)
	pushRange(t, ts, 6, 8)
	// C had the last turn; D, who joined after C, comes next.
	expectFrames(t, "D", d, "m6")
	expectFrames(t, "A", p[0], "m7")
	expectFrames(t, "C", p[2], "m8")

	// All leave; pushes wait; a new puller gets them all, in order.
	p[0].Close()
	p[2].Close()
	d.Close()
	ts.waitPullers(t, "/jobs", 0)
	pushRange(t, ts, 9, 11)
	late := ts.dial(t, "pull", "/jobs")
	expectFrames(t, "late puller", late, "m9", "m10", "m11")
}

func TestPushesWaitForAPullerOverWebSocket(t *testing.T) {
	ts := startServer(t, Options{})
	pusher := ts.dial(t, "push", "/jobs")
	for i := 1; i <= 3; i++ {
		pusher.send(t, fmt.Sprintf("m%d", i))
	}
	waitFor(t, func() bool { q := ts.broker.Queues(); return len(q) == 1 && q[0].Waiting == 3 })
	puller := ts.dial(t, "pull", "/jobs")
	expectFrames(t, "puller", puller, "m1", "m2", "m3")
	pusher.nothing(t) // a /push socket receives nothing but errors
}

func TestFullQueueRefusesClearly(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{QueueLimit: 2}, Options{})
	pushRange(t, ts, 1, 2)
	resp := post(t, ts, "push", "/jobs", "", "m3")
	if resp.Status != 503 {
		t.Fatalf("push to a full queue = %d, want 503", resp.Status)
	}
	var body struct{ Error apiError }
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Error.Code != "queue_full" || body.Error.Topic != "/jobs" ||
		!strings.Contains(body.Error.Message, "queue_limit") {
		t.Fatalf("body = %s (%v), want queue_full naming queue_limit", resp.Body, err)
	}
	puller := ts.dial(t, "pull", "/jobs")
	expectFrames(t, "puller", puller, "m1", "m2")
	puller.nothing(t)
}
