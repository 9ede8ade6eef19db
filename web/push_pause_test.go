package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

// okSeq reads an envelope answer and fails on anything but {"ok":N}.
func okSeq(t *testing.T, p *peer) uint64 {
	t.Helper()
	var a struct {
		OK    *uint64         `json:"ok"`
		Error json.RawMessage `json:"error"`
	}
	text := p.nextText(t)
	if err := json.Unmarshal([]byte(text), &a); err != nil || a.OK == nil {
		t.Fatalf("answer %s, want {\"ok\":N}", text)
	}
	return *a.OK
}

func TestFullQueuePausesAWebSocketPusher(t *testing.T) {
	// The pause outlives several pings: the pusher's pongs wait behind the
	// frames not read, and it must not be dropped for that.
	ts := startServerWithBroker(t, broker.Options{QueueLimit: 2},
		Options{PingInterval: 200 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	pusher := ts.dialURL(t, client.URL(ts.ws, "push", "/jobs", map[string][]string{"envelope": {"1"}}), nil)
	for i := 1; i <= 5; i++ {
		pusher.send(t, fmt.Sprintf("m%d", i))
	}
	okSeq(t, pusher)
	okSeq(t, pusher)
	time.Sleep(1500 * time.Millisecond)
	pusher.nothing(t) // paused: no error frame, no close
	if q := ts.broker.Queues(); len(q) != 1 || q[0].Waiting != 2 {
		t.Fatalf("queues = %+v, want 2 waiting", q)
	}
	// The queue API and the metrics show its bytes.
	const held = 2 * (2 + 256)
	if code, body := getBody(t, ts.http.URL+"/api/queues", ""); code != 200 ||
		!strings.Contains(string(body), fmt.Sprintf(`"bytes":%d,"waiting_bytes":%d,"max_bytes":%d`, held, held, broker.DefaultQueueMaxBytes)) {
		t.Fatalf("GET /api/queues: %d %s", code, body)
	}
	if code, body := getBody(t, ts.http.URL+"/metrics", ""); code != 200 ||
		!strings.Contains(string(body), fmt.Sprintf(`mercury_queue_bytes{queue="/jobs"} %d`, held)) ||
		!strings.Contains(string(body), fmt.Sprintf("mercury_memory_held_bytes %d", held)) {
		t.Fatalf("/metrics: %d %s", code, body)
	}

	puller := ts.dial(t, "pull", "/jobs")
	expectFrames(t, "puller", puller, "m1", "m2", "m3", "m4", "m5")
	for range 3 {
		okSeq(t, pusher)
	}
	pusher.nothing(t)
}

func TestMemoryBudgetPausesPushersAcrossQueues(t *testing.T) {
	const size = 1024
	held := int64(size + 256)
	ts := startServerWithBroker(t, broker.Options{MaxMemory: 4 * held}, Options{})
	body := strings.Repeat("x", size)
	a := ts.dial(t, "push", "/a")
	b := ts.dial(t, "push", "/b")
	for range 3 {
		a.send(t, body)
	}
	waitFor(t, func() bool { return ts.broker.MemoryUsed() == 3*held })
	for range 3 {
		b.send(t, body)
	}
	waitFor(t, func() bool { return ts.broker.MemoryUsed() == 4*held })

	resp := post(t, ts, "push", "/c", "", body)
	var e struct{ Error apiError }
	if resp.Status != 503 || json.Unmarshal(resp.Body, &e) != nil || e.Error.Code != "queue_full" ||
		!strings.Contains(e.Error.Message, "max_memory") {
		t.Fatalf("HTTP push past the budget: %d %s, want 503 queue_full naming max_memory", resp.Status, resp.Body)
	}
	a.nothing(t)
	b.nothing(t)

	// Draining /a makes room for what /b's pusher still holds back.
	pa := ts.dial(t, "pull", "/a")
	expectFrames(t, "puller of /a", pa, body, body, body)
	pb := ts.dial(t, "pull", "/b")
	expectFrames(t, "puller of /b", pb, body, body, body)
	a.nothing(t)
	b.nothing(t)
	waitFor(t, func() bool { return ts.broker.MemoryUsed() == 0 })
}

func TestPausedPusherIsClosedOnShutdown(t *testing.T) {
	ts := startServerWithBroker(t, broker.Options{QueueLimit: 1}, Options{})
	pusher := ts.dial(t, "push", "/full")
	pusher.send(t, "first")
	pusher.send(t, "second") // its reader waits for room
	waitFor(t, func() bool { q := ts.broker.Queues(); return len(q) == 1 && q[0].Waiting == 1 })
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a paused pusher: %v", err)
	}
	for f := range pusher.frames {
		t.Fatalf("paused pusher got %s", f.Data)
	}
	if client.CloseStatus(pusher.err) != 1001 {
		t.Fatalf("paused pusher ended with %v, want 1001", pusher.err)
	}
}
