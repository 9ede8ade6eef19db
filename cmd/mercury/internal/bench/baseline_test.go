package bench

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

func startBaselineTest(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(newBaselineServer())
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// TestBaselineBroadcast: a frame published on /pub/T, over WebSocket or
// POST, reaches every subscriber of exactly T, with its type.
func TestBaselineBroadcast(t *testing.T) {
	url := startBaselineTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(path string) *client.Conn {
		c, err := client.Dial(ctx, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	subs := []*client.Conn{dial("/sub/a"), dial("/sub/a")}
	below := dial("/sub/a/b")
	pub := dial("/pub/a")
	// The baseline registers a subscriber after its handshake: publish
	// until the frames arrive.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pub.WriteBinary(ctx, []byte("hello"))
			client.Post(ctx, nil, url+"/pub/a/b", "", []byte("deeper"), nil)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()
	if f, err := below.Read(ctx); err != nil || string(f.Data) != "deeper" || f.Binary {
		t.Fatalf("/sub/a/b read %q binary=%v: %v", f.Data, f.Binary, err)
	}
	// /sub/a never receives /pub/a/b: the baseline has no hierarchy.
	for _, s := range subs {
		for range 5 {
			if f, err := s.Read(ctx); err != nil || string(f.Data) != "hello" || !f.Binary {
				t.Fatalf("/sub/a read %q binary=%v: %v", f.Data, f.Binary, err)
			}
		}
	}
}

func TestBaselineRoutes(t *testing.T) {
	url := startBaselineTest(t)
	ctx := context.Background()
	for _, path := range []string{"/sub/", "/other/x", "/pub"} {
		_, _, err := websocket.Dial(ctx, url+path, nil)
		if err == nil {
			t.Errorf("%s: handshake accepted", path)
		}
	}
	resp, err := client.Post(ctx, nil, url+"/sub/a", "", []byte("x"), nil)
	if err != nil || resp.Status != 404 {
		t.Errorf("POST /sub/a: %+v %v", resp, err)
	}
}

// TestRunLoadAgainstBaseline runs whole loads in-process and checks the
// report adds up.
func TestRunLoadAgainstBaseline(t *testing.T) {
	url := startBaselineTest(t)
	for _, cfg := range []loadConfig{
		{subs: 3, pubs: 1, publishVia: "ws", layout: layoutOne},
		{subs: 4, pubs: 2, publishVia: "http", layout: layoutEach},
		{subs: 3, pubs: 3, publishVia: "ws", layout: layoutEach, envelope: true},
	} {
		cfg.size, cfg.rate, cfg.duration, cfg.drain, cfg.root = 128, 100, 300*time.Millisecond, 5*time.Second, "/t"
		rep, err := runLoad(context.Background(), cfg, target{label: "baseline", url: url})
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		perMessage := int64(1)
		if cfg.layout == layoutOne {
			perMessage = int64(cfg.subs)
		}
		switch {
		case rep.Published == 0:
			t.Errorf("%+v: nothing published", cfg)
		case rep.Expected != rep.Published*perMessage:
			t.Errorf("%+v: expected %d deliveries of %d messages", cfg, rep.Expected, rep.Published)
		case rep.Delivered+rep.Loss != rep.Expected || rep.Loss != 0 || rep.Unexpected != 0:
			t.Errorf("%+v: delivered %d, loss %d, unexpected %d of %d", cfg, rep.Delivered, rep.Loss, rep.Unexpected, rep.Expected)
		case rep.Errors.total() != 0:
			t.Errorf("%+v: errors %+v", cfg, rep.Errors)
		case rep.Server != nil:
			t.Errorf("%+v: server cost without a pid", cfg)
		case rep.Latency.Max < rep.Latency.P50 || rep.Latency.P50 <= 0:
			t.Errorf("%+v: latencies %+v", cfg, rep.Latency)
		}
	}
}

// TestMeasureIdleTimesBroadcasts: idle subscribers dialed from several
// loopback addresses all connect, the connect rate is reported, and each
// broadcast is timed until it reached every one of them.
func TestMeasureIdleTimesBroadcasts(t *testing.T) {
	url := startBaselineTest(t)
	var sources sourceAddrs
	if err := sources.Set("3"); err != nil {
		t.Fatal(err)
	}
	cfg := idleConfig{layout: layoutOne, root: "/idle", conns: 20, settle: 10 * time.Millisecond, broadcasts: 2, sources: sources}
	var errOut strings.Builder
	rep, err := measureIdle(context.Background(), target{label: "baseline", url: url}, cfg, command.Stdio{Err: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case rep.Opened != 20 || rep.ConnectErrors != 0:
		t.Fatalf("opened %d, %d failed: %s", rep.Opened, rep.ConnectErrors, rep.FirstError)
	case rep.ConnectsPerSec <= 0 || rep.SourceAddrs != 3:
		t.Errorf("connect rate %v from %d addresses", rep.ConnectsPerSec, rep.SourceAddrs)
	case len(rep.Broadcasts) != 2 || rep.Broadcast == nil:
		t.Fatalf("broadcasts %+v, median %+v", rep.Broadcasts, rep.Broadcast)
	}
	for i, b := range rep.Broadcasts {
		if b.Received != 20 || b.P50MS <= 0 || b.P99MS < b.P50MS || b.LastMS < b.P99MS {
			t.Errorf("broadcast %d: %+v", i+1, b)
		}
	}
	if !strings.Contains(errOut.String(), "broadcast 2: reached 20 of 20") {
		t.Errorf("progress:\n%s", errOut.String())
	}
}
