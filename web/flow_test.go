package web

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// publishAll sends n small text frames as fast as the socket takes them,
// as a raw client does, and checks the subscriber gets every one in order.
func publishAll(t *testing.T, ts *testServer, n int) {
	t.Helper()
	sub := ts.dial(t, "sub", "/burst")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/burst")
	go func() {
		for i := range n {
			if pub.WriteText(context.Background(), strconv.Itoa(i)) != nil {
				return
			}
		}
	}()
	for i := range n {
		if got := sub.nextText(t); got != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, got)
		}
	}
	pub.nothing(t) // no error frame, no close
}

func TestRawBurstIsAllDeliveredOnDefaults(t *testing.T) {
	publishAll(t, startServer(t, Options{}), 5000)
}

func TestPublishRatePausesAndDropsNothing(t *testing.T) {
	ts := startServer(t, Options{PublishRate: 500, PublishBurst: 100})
	start := time.Now()
	publishAll(t, ts, 2000)
	// The burst goes at once, the other 1,900 at 500/s: the rate is what
	// is under test, not the speed.
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("2,000 messages at 500/s (burst 100) took %v", took)
	}
}

func TestPausedPublisherIsClosedOnShutdown(t *testing.T) {
	ts := startServer(t, Options{PublishRate: 0.02, PublishBurst: 1}) // one token every 50s
	pub := ts.dial(t, "pub", "/slow")
	pub.send(t, "first")
	pub.send(t, "second") // its reader waits for a token
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a paused publisher: %v", err)
	}
	// Nothing was refused: the publisher gets no frame, only the close.
	for f := range pub.frames {
		t.Fatalf("paused publisher got %s", f.Data)
	}
	if client.CloseStatus(pub.err) != 1001 {
		t.Fatalf("paused publisher ended with %v, want 1001", pub.err)
	}
}

func TestPostOverTheRateGets429WithRetryAfter(t *testing.T) {
	ts := startServer(t, Options{PublishRate: 1, PublishBurst: 2})
	for range 2 {
		if resp := post(t, ts, "pub", "/r", "", "x"); resp.Status != 200 {
			t.Fatalf("within the burst: %d %s", resp.Status, resp.Body)
		}
	}
	resp := post(t, ts, "pub", "/r", "", "x")
	var e struct {
		Error apiError `json:"error"`
	}
	if resp.Status != 429 || json.Unmarshal(resp.Body, &e) != nil || e.Error.Code != "rate" {
		t.Fatalf("over the rate: %d %s, want 429 code rate", resp.Status, resp.Body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 seconds", resp.Header.Get("Retry-After"))
	}
}

func TestPublishRatePausesBusAndPush(t *testing.T) {
	ts := startServer(t, Options{PublishRate: 50, PublishBurst: 10})
	const n = 60
	for _, c := range []struct{ send, receive string }{{"bus", "bus"}, {"push", "pull"}} {
		receiver := ts.dial(t, c.receive, "/paced")
		if c.receive == "bus" {
			ts.waitPeers(t, 1)
		} else {
			ts.waitPullers(t, "/paced", 1)
		}
		sender := ts.dial(t, c.send, "/paced")
		start := time.Now()
		for i := range n {
			sender.send(t, strconv.Itoa(i))
		}
		for i := range n {
			if got := receiver.nextText(t); got != strconv.Itoa(i) {
				t.Fatalf("%s: message %d: got %q", c.send, i, got)
			}
		}
		if took := time.Since(start); took < time.Second { // 50 beyond the burst at 50/s
			t.Fatalf("%s: %d messages at 50/s (burst 10) took %v", c.send, n, took)
		}
		sender.nothing(t)
		receiver.Close()
		sender.Close()
	}
}

func TestPacedPublisherIsNotDroppedForALatePong(t *testing.T) {
	// 30 frames at 5/s take 6s to read; the pong to each ping waits
	// behind them, far past the pong timeout.
	ts := startServer(t, Options{PublishRate: 5, PublishBurst: 1, PingInterval: 200 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	sub := ts.dial(t, "sub", "/late")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/late")
	const n = 30
	for i := range n {
		pub.send(t, strconv.Itoa(i))
	}
	for i := range n {
		var got string
		select {
		case f, ok := <-sub.frames:
			if !ok {
				t.Fatalf("subscriber ended: %v", sub.err)
			}
			got = string(f.Data)
		case <-pub.done:
			t.Fatalf("publisher dropped after %d of %d messages: %v", i, n, pub.err)
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: nothing within 5s", i)
		}
		if got != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, got)
		}
	}
}
