package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

func dialStatus(t *testing.T, url string, header http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, &client.Options{Header: header})
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	he, ok := err.(*client.HandshakeError)
	if !ok {
		t.Fatalf("dial %s: %v", url, err)
	}
	return he.Status
}

func TestOriginChecks(t *testing.T) {
	open := startServer(t, Options{})
	sameHost := "http://" + strings.TrimPrefix(open.http.URL, "http://")
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"", 101},                    // not a browser
		{sameHost, 101},              // a page served by the broker's host
		{"http://evil.example", 403}, // another site
	} {
		h := http.Header{}
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		if got := dialStatus(t, open.ws+"/sub/x", h); got != c.want {
			t.Errorf("no allow list, Origin %q: %d, want %d", c.origin, got, c.want)
		}
	}

	ts := startServer(t, Options{AllowOrigins: []string{"example.com", "*.example.org", "https://secure.example.net"}})
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"http://example.com", 101},
		{"https://example.com:8443", 101},
		{"https://app.example.org", 101},
		{"https://secure.example.net", 101},
		{"", 101},                            // not a browser: its credential decides
		{"http://example.com.evil.net", 403}, // look-alike suffix
		{"http://notexample.com", 403},       // look-alike prefix
		{"http://example.org.evil.net", 403}, //
		{"http://secure.example.net", 403},   // wrong scheme
		{"http://evilexample.org", 403},      // *.example.org needs a dot
	} {
		h := http.Header{}
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		if got := dialStatus(t, ts.ws+"/sub/x", h); got != c.want {
			t.Errorf("Origin %q: %d, want %d", c.origin, got, c.want)
		}
		resp, err := client.Post(context.Background(), nil, ts.http.URL+"/pub/x", "", []byte("m"), h)
		if err != nil {
			t.Fatal(err)
		}
		want := 200
		if c.want != 101 {
			want = 403
		}
		if resp.Status != want {
			t.Errorf("POST with Origin %q: %d, want %d", c.origin, resp.Status, want)
		}
		if want == 403 && !strings.Contains(string(resp.Body), "Origin check failed") {
			t.Errorf("POST with Origin %q: body %q", c.origin, resp.Body)
		}
	}
}

func TestSlowConsumerIsClosedAndOthersCarryOn(t *testing.T) {
	ts := startServer(t, Options{OutgoingQueue: 64 << 10})
	// The slow subscriber never reads: a raw connection, not a peer.
	ctx := context.Background()
	slow, err := client.Dial(ctx, ts.ws+"/sub/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	fast := ts.dial(t, "sub", "/feed")
	ts.waitSubscribed(t, 2)

	payload := strings.Repeat("x", 4096)
	pub := ts.dial(t, "pub", "/feed")
	sent := 0
	for ts.SlowConsumers() == 0 {
		pub.send(t, payload)
		sent++
		if got := fast.nextText(t); got != payload {
			t.Fatalf("fast subscriber got a %d-byte frame", len(got))
		}
		if sent > 100000 {
			t.Fatal("the slow consumer was never closed")
		}
	}
	// The fast subscriber and the publisher are unaffected.
	pub.send(t, "after")
	if got := fast.nextText(t); got != "after" {
		t.Fatalf("fast subscriber got %q", got)
	}
	// The slow one, reading at last, finds its connection closed with 1008.
	for {
		_, err := slow.Read(ctx)
		if err != nil {
			if client.CloseStatus(err) != 1008 || client.CloseReason(err) != "slow consumer" {
				t.Fatalf("slow consumer ended with %v, want 1008 slow consumer", err)
			}
			break
		}
	}
	waitFor(t, func() bool { return ts.Connections() == 2 })
}

func TestMessageSizeLimit(t *testing.T) {
	ts := startServer(t, Options{MaxMessageSize: 1000})
	sub := ts.dial(t, "sub", "/big")
	if resp := post(t, ts, "pub", "/big", "", strings.Repeat("y", 1001)); resp.Status != 413 {
		t.Fatalf("oversized POST = %d, want 413", resp.Status)
	}
	pub := ts.dial(t, "pub", "/big")
	pub.send(t, strings.Repeat("y", 1000)) // at the limit: accepted
	if got := sub.nextText(t); len(got) != 1000 {
		t.Fatalf("got %d bytes", len(got))
	}
	pub.send(t, strings.Repeat("y", 1001))
	if err := pub.ended(t); client.CloseStatus(err) != 1009 {
		t.Fatalf("oversized frame ended the connection with %v, want 1009", err)
	}
	sub.nothing(t)
}

func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, Options{MaxConnections: 2})
	ts.dial(t, "sub", "/a")
	ts.dial(t, "sub", "/a")
	if got := dialStatus(t, ts.ws+"/sub/a", nil); got != 503 {
		t.Fatalf("third connection: %d, want 503", got)
	}
}

func TestInvalidUTF8ClosesWith1007(t *testing.T) {
	ts := startServer(t, Options{})
	sub := ts.dial(t, "sub", "/u")
	pub := ts.dial(t, "pub", "/u")
	// The client library sends whatever bytes it is given.
	if err := pub.WriteText(context.Background(), "\xff\xfe"); err != nil {
		t.Fatal(err)
	}
	if err := pub.ended(t); client.CloseStatus(err) != 1007 {
		t.Fatalf("invalid UTF-8 ended the connection with %v, want 1007", err)
	}
	sub.nothing(t)
}

func TestUnansweredPingsDropTheConnection(t *testing.T) {
	ts := startServer(t, Options{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	// A client that never reads never answers pings.
	c, err := client.Dial(context.Background(), ts.ws+"/sub/quiet", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	live := ts.dial(t, "sub", "/quiet") // reads, so answers pings
	waitFor(t, func() bool { return ts.Connections() == 1 })
	time.Sleep(300 * time.Millisecond)
	if ts.Connections() != 1 {
		t.Fatal("a connection answering pings was dropped")
	}
	post(t, ts, "pub", "/quiet", "", "still here")
	if got := live.nextText(t); got != "still here" {
		t.Fatalf("got %q", got)
	}
}

// An idle connection's ping waits for its pong on the connection's timer,
// not in a goroutine (with a context and a timer of its own) for each of
// thousands of connections.
func TestOutstandingPingHoldsNoGoroutine(t *testing.T) {
	ts := startServer(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: 5 * time.Second})
	// A client that never reads never answers: its ping stays out.
	c, err := client.Dial(context.Background(), ts.ws+"/sub/quiet", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, func() bool { return ts.Connections() == 1 })
	time.Sleep(200 * time.Millisecond) // the ping went out
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "(*conn).ping") {
		t.Fatalf("a goroutine waits for the pong:\n%s", stacks)
	}
	if ts.Connections() != 1 {
		t.Fatal("dropped before the pong timeout")
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	ts := startServer(t, Options{})
	sub := ts.dial(t, "sub", "/s")
	pull := ts.dial(t, "pull", "/s")
	ts.waitSubscribed(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{sub, pull} {
		if err := p.ended(t); client.CloseStatus(err) != int(websocket.StatusGoingAway) {
			t.Fatalf("ended with %v, want 1001", err)
		}
	}
	if got := dialStatus(t, ts.ws+"/sub/s", nil); got != 503 {
		t.Fatalf("dial during shutdown: %d, want 503", got)
	}
}

// TestConnectCyclesLeaveNothingBehind runs 100,000 connect/disconnect
// cycles over every pattern and checks that subscriptions, trie nodes,
// queues and memory are back where they started.
func TestConnectCyclesLeaveNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 connections")
	}
	ts := startServer(t, Options{})
	cycles := 100000
	if raceEnabled {
		cycles = 20000 // the race detector makes each cycle ~5x slower
	}
	heap := func() uint64 { return memStatsAfterGC().HeapAlloc }
	cycle := func(i int) {
		pattern := []string{"sub", "bus", "pull", "pub", "push"}[i%5]
		topic := "/cycle/x" + strings.Repeat("x", i%7) + "/n" + string(rune('a'+i%26))
		c, err := client.Dial(context.Background(), client.URL(ts.ws, pattern, topic, nil), nil)
		if err != nil {
			t.Error(err)
			return
		}
		c.CloseNow()
	}
	for i := range 2000 { // warm up pools and maps
		cycle(i)
	}
	waitFor(t, func() bool { return ts.Connections() == 0 })
	before := heap()
	const workers = 8
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; i < cycles; i += workers {
				cycle(i)
			}
		}()
	}
	for range workers {
		<-done
	}
	waitFor(t, func() bool { return ts.Connections() == 0 })
	if subs, nodes := ts.broker.Subscriptions(); subs != 0 || nodes != 0 {
		t.Fatalf("after %d cycles: %d subscriptions, %d trie nodes left", cycles, subs, nodes)
	}
	if peers, nodes := ts.broker.BusPeers(); peers != 0 || nodes != 0 {
		t.Fatalf("after %d cycles: %d bus peers, %d trie nodes left", cycles, peers, nodes)
	}
	// Queues outlive their pullers until their TTL (48h by default), so
	// the handful of topics used here remain, empty and unattended.
	for _, q := range ts.broker.Queues() {
		if q.Pullers != 0 || q.Waiting != 0 || q.InFlight != 0 {
			t.Fatalf("after %d cycles: queue %+v still attended", cycles, q)
		}
	}
	after := heap()
	t.Logf("%d cycles: heap %d KB before, %d KB after", cycles, before>>10, after>>10)
	if after > before+4<<20 {
		t.Fatalf("heap grew from %d KB to %d KB over %d cycles", before>>10, after>>10, cycles)
	}
}

// An idle subscriber's reader waits, and takes its pongs, a few frames
// deep, so its goroutine keeps the 2 KB stack it starts with; waiting in
// the WebSocket library's Read, it needs 4 KB for good. Raw clients: no
// goroutine of the test's per connection.
func TestIdleReaderKeepsSmallStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector doubles every stack's guard: no reader fits 2 KB")
	}
	// Enough connections that the stacks of goroutines that came and went
	// (the handshakes', the pings'), which the runtime keeps a while, are
	// small beside theirs.
	const conns = 1000
	ts := startServer(t, unlimited(Options{PingInterval: 20 * time.Millisecond, PongTimeout: time.Minute}))
	stacks := func() uint64 { return memStatsAfterGC().StackInuse }
	before := stacks()
	peers := make([]*rawPeer, conns)
	for i := range peers {
		peers[i] = dialRaw(t, ts, fmt.Sprintf("/sub/idle/%d", i), 1<<16)
	}
	ts.waitSubscribed(t, conns)
	readPing := func(p *rawPeer) {
		t.Helper()
		var f [2]byte
		if _, err := io.ReadFull(p.br, f[:]); err != nil || f != [2]byte{0x89, 0} {
			t.Fatalf("want a ping, got %x, %v", f, err)
		}
	}
	for _, p := range peers {
		readPing(p)
		// A masked pong with no payload, as browsers answer.
		if _, err := p.nc.Write([]byte{0x8a, 0x80, 1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
	}
	// A ping comes again only once the pong was taken (or the connection
	// would close at the pong timeout).
	for _, p := range peers {
		readPing(p)
	}
	perConn := float64(stacks()-before) / conns
	t.Logf("stacks grew %.0f bytes per idle connection", perConn)
	if perConn > 3072 {
		t.Fatalf("stacks grew %.0f bytes per idle connection, want about 2048", perConn)
	}
	if ts.Connections() != conns {
		t.Fatalf("%d connections open, want %d", ts.Connections(), conns)
	}
}

// The idle reader takes bare pongs itself and leaves every other frame to
// the WebSocket library, also one that arrives with a pong in one segment:
// a ping (answered with its payload) and a close (answered with a close).
func TestIdleReaderLeavesOtherFramesToLibrary(t *testing.T) {
	ts := startServer(t, Options{PingInterval: time.Hour})
	p := dialRaw(t, ts, "/sub/frames", 1<<16)
	ts.waitSubscribed(t, 1)
	pong := []byte{0x8a, 0x80, 1, 2, 3, 4}
	ping := []byte{0x89, 0x82, 0, 0, 0, 0, 'h', 'i'} // masked with zeros
	closeFrame := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}
	next := func() (op byte, payload []byte) {
		t.Helper()
		p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var h [2]byte
		if _, err := io.ReadFull(p.br, h[:]); err != nil {
			t.Fatal(err)
		}
		payload = make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(p.br, payload); err != nil {
			t.Fatal(err)
		}
		return h[0] & 0x0f, payload
	}
	if _, err := p.nc.Write(append(append([]byte{}, pong...), ping...)); err != nil {
		t.Fatal(err)
	}
	if op, payload := next(); op != 0xa || string(payload) != "hi" {
		t.Fatalf("got opcode %x %q, want the pong hi", op, payload)
	}
	if _, err := p.nc.Write(append(append([]byte{}, pong...), closeFrame...)); err != nil {
		t.Fatal(err)
	}
	if op, payload := next(); op != 0x8 || len(payload) < 2 || payload[0] != 0x03 || payload[1] != 0xe8 {
		t.Fatalf("got opcode %x %x, want the close 1000", op, payload)
	}
}
