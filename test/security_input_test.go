package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

// control is a pair of well-behaved clients beside an attack: a publisher
// whose every message is confirmed, and a subscriber that must receive
// exactly those, in order, whatever else happens.
type control struct {
	b         *brokerProc
	pub       *client.Conn
	got       chan string
	mu        sync.Mutex
	confirmed []string
	n         int
}

const controlTopic = "/control"

func startControl(t *testing.T, b *brokerProc) *control {
	t.Helper()
	c := &control{b: b, got: make(chan string, 100000)}
	sub := dial(t, b.WS+"/sub"+controlTopic, nil)
	go func() {
		for {
			f, err := sub.Read(context.Background())
			if err != nil {
				close(c.got)
				return
			}
			c.got <- string(f.Data)
		}
	}()
	c.pub = dial(t, b.WS+"/pub"+controlTopic+"?envelope=1", nil)
	return c
}

// confirm records a message the broker confirmed.
func (c *control) confirm(payload string) {
	c.mu.Lock()
	c.confirmed = append(c.confirmed, payload)
	c.mu.Unlock()
}

// round publishes a few messages, waits for their confirmations, checks
// the subscriber got every confirmed message so far and nothing else, and
// that the broker answers /healthz.
func (c *control) round(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		c.n++
		msg := fmt.Sprintf("control %d", c.n)
		if err := c.pub.WriteText(ctx, msg); err != nil {
			t.Fatalf("control publisher: %v", err)
		}
		f, err := c.pub.Read(ctx)
		if err != nil || !strings.HasPrefix(string(f.Data), `{"ok":`) {
			t.Fatalf("control publish answered %q %v", f.Data, err)
		}
		c.confirm(msg)
	}
	c.drain(t)
	resp, err := http.Get(c.b.HTTP + "/healthz")
	if err != nil {
		t.Fatalf("broker down: %v", err)
	}
	resp.Body.Close()
}

// drain checks that the subscriber got every message confirmed so far, in
// order, and nothing else.
func (c *control) drain(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	want := c.confirmed
	c.confirmed = nil
	c.mu.Unlock()
	for _, w := range want {
		select {
		case got, ok := <-c.got:
			if !ok {
				t.Fatal("control subscriber disconnected")
			}
			if got != w {
				t.Fatalf("control subscriber got %.60q, want %.60q: a message was lost, or one not accepted was delivered", got, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("control subscriber did not get %.60q", w)
		}
	}
}

// raiseFileLimit lets this process, and the brokers it starts, open n
// files.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	old := lim
	if lim.Max < n {
		lim.Max = n // root may raise the hard limit
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		lim = old
		lim.Cur = lim.Max // the soft limit up to the hard one
		if old.Max < n || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			t.Fatalf("cannot raise the open files limit to %d (now %d, at most %d): %v", n, old.Cur, old.Max, err)
		}
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

func TestBadInput(t *testing.T) {
	raiseFileLimit(t, 10000+2000) // each side of the 10,000 connections
	// No pings: raw connections here never answer them, and pings are not
	// what this test is about.
	b := startBroker(t, "--max-message-size", "64KiB", "--handshake-timeout", "5s", "--ping-interval", "1h", "--max-connections", "12000",
		"--max-connections-per-ip", "0", "--outgoing-queue", "256KiB", "--publish-rate", "100", "--publish-burst", "100")
	ctl := startControl(t, b)
	ctl.round(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("oversized frame", func(t *testing.T) {
		c := dial(t, b.WS+"/pub"+controlTopic, nil)
		c.WriteBinary(ctx, make([]byte, 64<<10+1))
		if _, err := c.Read(ctx); client.CloseStatus(err) != 1009 {
			t.Fatalf("got %v, want close 1009 message too big", err)
		}
		resp := post(t, b.HTTP+"/pub"+controlTopic, strings.Repeat("x", 64<<10+1))
		if e := client.ParseError(resp.Body); resp.Status != 413 || e == nil || !strings.Contains(e.Message, "limit is 65536 bytes") {
			t.Fatalf("oversized POST: %d %s", resp.Status, resp.Body)
		}
		ctl.round(t)
	})

	t.Run("invalid UTF-8 in a text frame", func(t *testing.T) {
		c := dial(t, b.WS+"/pub"+controlTopic, nil)
		c.WriteText(ctx, "bad \xff\xfe text")
		if _, err := c.Read(ctx); client.CloseStatus(err) != 1007 || client.CloseReason(err) != "invalid UTF-8 in a text frame" {
			t.Fatalf("got %v, want close 1007", err)
		}
		ctl.round(t)
	})

	t.Run("floods of tiny fragments", func(t *testing.T) {
		// Under the size limit: 5,000 one-byte fragments make one message.
		rc := rawDial(t, b.Listen, "/pub"+controlTopic)
		var buf bytes.Buffer
		buf.Write(frame(false, opText, []byte("f")))
		for range 4999 {
			buf.Write(frame(false, opContinuation, []byte("f")))
		}
		buf.Write(frame(true, opContinuation, nil))
		if _, err := rc.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		ctl.confirm(strings.Repeat("f", 5000)) // a raw publisher gets no confirmation: the subscriber's receipt is it
		ctl.drain(t)
		ctl.round(t)

		// Past it: closed with 1009, whatever keeps coming.
		rc = rawDial(t, b.Listen, "/pub"+controlTopic)
		done := make(chan struct{})
		go func() {
			defer close(done)
			rc.Write(frame(false, opText, []byte("g")))
			one := frame(false, opContinuation, []byte("g"))
			for range 100000 {
				if _, err := rc.Write(one); err != nil {
					return
				}
			}
		}()
		if code, reason := rc.readClose(t); code != 1009 || reason == "" {
			t.Fatalf("fragment flood: close %d %q, want 1009", code, reason)
		}
		rc.Close()
		<-done
		ctl.round(t)
	})

	t.Run("bad topics", func(t *testing.T) {
		for _, c := range []struct{ path, want string }{
			{"/pub/a/../b", `segment 2 is \"..\"`},
			{"/pub/a/./b", `segment 2 is \".\"`},
			{"/pub/a/%00/b", "control character U+0000"},
			{"/pub/a/%01b", "control character U+0001"},
			{"/pub/a/b%7F", "control character U+007F"},
			{"/pub/a//b", "segment 2 is empty"},
			{"/pub/a%ff", "not valid UTF-8"},
			{"/pub" + strings.Repeat("/s", 10000), "the limit is 1024"},
			{"/pub" + strings.Repeat("/s", 100), "more than 32 segments"},
		} {
			status, body := rawHTTP(t, b.Listen, "POST", c.path, "m")
			if status != 400 || !strings.Contains(body, c.want) || !strings.Contains(body, `"code":"topic"`) {
				t.Errorf("POST %.40s: %d %s, want 400 naming %q", c.path, status, body, c.want)
			}
			rc := &rawConn{}
			conn, err := net.Dial("tcp", b.Listen)
			if err != nil {
				t.Fatal(err)
			}
			rc.Conn, rc.r = conn, bufioReader(conn)
			if status, err := rc.upgrade(b.Listen, c.path); status != 400 || err != nil {
				t.Errorf("WebSocket %.40s: %d %v, want 400", c.path, status, err)
			}
			conn.Close()
		}
		ctl.round(t)
	})

	t.Run("handshakes that never finish", func(t *testing.T) {
		var conns []net.Conn
		for i := range 50 {
			c, err := net.Dial("tcp", b.Listen)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Half a request: the headers never end.
			fmt.Fprintf(c, "GET /sub/slow/%d HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n", i, b.Listen)
			conns = append(conns, c)
		}
		ctl.round(t) // others are served meanwhile
		for _, c := range conns {
			expectClosed(t, c, "a handshake that never finishes")
		}
		// A POST whose body never finishes is answered and closed.
		c, err := net.Dial("tcp", b.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\nonly ten!!", "/pub"+controlTopic, b.Listen)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufioReader(c), nil)
		if err != nil {
			t.Fatalf("slow POST: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "failed to read the request body") {
			t.Fatalf("slow POST: %d %s", resp.StatusCode, body)
		}
		ctl.round(t)
	})

	t.Run("10,000 idle connections", func(t *testing.T) {
		const n = 10000
		conns := make([]*rawConn, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		for range 16 {
			wg.Go(func() {
				for i := range next {
					c, err := net.DialTimeout("tcp", b.Listen, 10*time.Second)
					if err != nil {
						errs <- err
						return
					}
					rc := &rawConn{Conn: c, r: bufioReader(c)}
					if status, err := rc.upgrade(b.Listen, fmt.Sprintf("/sub/idle/%d", i)); status != 101 {
						errs <- fmt.Errorf("connection %d: %d %v", i, status, err)
						c.Close()
						return
					}
					conns[i] = rc
				}
			})
		}
		wg.Wait()
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		ctl.round(t)
		// The last one still gets its messages.
		post(t, b.HTTP+fmt.Sprintf("/pub/idle/%d", n-1), "hello idle")
		last := conns[n-1]
		last.SetReadDeadline(time.Now().Add(20 * time.Second))
		if op, p, err := last.readFrame(); err != nil || op != opText || string(p) != "hello idle" {
			t.Fatalf("idle subscriber %d: %d %q %v", n-1, op, p, err)
		}
	})

	t.Run("a subscriber that never reads", func(t *testing.T) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		conn, err := d.Dial("tcp", b.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rc := &rawConn{Conn: conn, r: bufioReader(conn)}
		if status, err := rc.upgrade(b.Listen, "/sub"+controlTopic); status != 101 {
			t.Fatalf("upgrade: %d %v", status, err)
		}
		// Publish until the broker gives up on it; the control subscriber
		// must get every one.
		payload := strings.Repeat("s", 16<<10)
		for i := 0; !strings.Contains(b.logs.String(), `msg="slow consumer closed"`); i++ {
			if i == 3000 {
				t.Fatal("the subscriber that never reads was never closed")
			}
			msg := fmt.Sprintf("%05d %s", i, payload)
			if resp := post(t, b.HTTP+"/pub"+controlTopic, msg); resp.Status != 200 {
				t.Fatalf("POST: %d %s", resp.Status, resp.Body)
			}
			ctl.confirm(msg)
		}
		ctl.round(t)
	})

	t.Run("garbage after the upgrade", func(t *testing.T) {
		for _, c := range []struct {
			name    string
			garbage []byte
		}{
			{"reserved bits", append([]byte{0xf1, 0x80, 1, 2, 3, 4}, []byte("GARBAGE GARBAGE")...)},
			{"unmasked frame", []byte("\x81\x05hello")},
			{"unknown opcode", []byte{0x83, 0x80, 1, 2, 3, 4}},
			{"continuation first", []byte{0x80, 0x81, 1, 2, 3, 4, 5}},
		} {
			rc := rawDial(t, b.Listen, "/sub"+controlTopic)
			rc.Write(c.garbage)
			if code, reason := rc.readClose(t); code != 1002 || reason == "" {
				t.Errorf("%s: close %d %q, want 1002 with a reason", c.name, code, reason)
			}
		}
		ctl.round(t)
	})

	t.Run("a client that disconnects mid-frame", func(t *testing.T) {
		rc := rawDial(t, b.Listen, "/pub"+controlTopic)
		f := frame(true, opText, []byte(strings.Repeat("h", 1000)))
		rc.Write(f[:500]) // header and half the payload
		rc.Close()
		// Half a fragmented message, too.
		rc = rawDial(t, b.Listen, "/pub"+controlTopic)
		rc.Write(frame(false, opText, []byte("first half")))
		rc.Close()
		ctl.round(t) // the subscriber sees neither
	})

	t.Run("publish flood", func(t *testing.T) {
		// Over the rate a publisher is paused, never refused: every
		// message is accepted, the burst at once, the rest at 100/s.
		c := dial(t, b.WS+"/pub/flood?envelope=1", nil)
		const n = 300
		go func() {
			for i := range n {
				if c.WriteText(context.Background(), fmt.Sprintf(`{"n":%d}`, i)) != nil {
					return
				}
			}
		}()
		start := time.Now()
		for i := range n {
			f, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("flood: connection ended after %d confirms: %v", i, err)
			}
			if e := client.ParseError(f.Data); e != nil {
				t.Fatalf("flood answered %s", f.Data)
			}
		}
		if took := time.Since(start); took < time.Second {
			t.Fatalf("%d messages at 100/s (burst 100) took %v: not paced", n, took)
		}
		ctl.round(t)
	})
	ctl.round(t)
}

func TestCompressionBomb(t *testing.T) {
	// Off by default: the extension is never negotiated.
	plain := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, plain.WS+"/sub/x", &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("compression negotiated by default: %q", ext)
	}

	b := startBroker(t, "--compression", "--max-message-size", "64KiB")
	ctl := startControl(t, b)
	for _, mode := range []websocket.CompressionMode{websocket.CompressionNoContextTakeover, websocket.CompressionContextTakeover} {
		pub, resp, err := websocket.Dial(ctx, b.WS+"/pub"+controlTopic, &websocket.DialOptions{CompressionMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.CloseNow()
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
			t.Fatalf("compression not negotiated: %q", ext)
		}
		// A compressible message within the limit is delivered whole.
		msg := strings.Repeat("compress me ", 4000) // 48,000 bytes
		pub.Write(ctx, websocket.MessageText, []byte(msg))
		ctl.confirm(msg)
		ctl.drain(t)
		// 10 MiB of zeros, a few KiB on the wire: refused after 64 KiB.
		pub.Write(ctx, websocket.MessageBinary, make([]byte, 10<<20))
		if _, _, err := pub.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("compression bomb: %v, want close 1009", err)
		}
		ctl.round(t)
	}
}

func TestConnectionsPerIPLimit(t *testing.T) {
	b := startBroker(t, "--max-connections-per-ip", "3")
	var conns []*client.Conn
	for range 3 {
		conns = append(conns, dial(t, b.WS+"/sub/x", nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, b.WS+"/sub/x", nil)
	he, ok := err.(*client.HandshakeError)
	if !ok || he.Status != 429 || !strings.Contains(he.Body, "too many connections from 127.0.0.1: the limit is 3 per address") {
		t.Fatalf("4th connection: %v", err)
	}
	conns[0].CloseNow()
	waitFor(t, "a freed place", func() bool {
		c, err := client.Dial(ctx, b.WS+"/sub/x", nil)
		if err == nil {
			c.CloseNow()
		}
		return err == nil
	})
}

func TestIdleTimeout(t *testing.T) {
	b := startBroker(t, "--idle-timeout", "2s")
	idle := dial(t, b.WS+"/sub/quiet", nil)
	busy := dial(t, b.WS+"/sub/busy", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				client.Post(context.Background(), nil, b.HTTP+"/pub/busy", "", []byte("tick"), nil) // not t.Fatal: another goroutine
			}
		}
	})
	if _, err := idle.Read(ctx); client.CloseStatus(err) != 4408 || client.CloseReason(err) != "idle for 2s" {
		t.Fatalf("idle subscriber: %v, want close 4408 idle for 2s", err)
	}
	// The busy one outlives the idle limit.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := busy.Read(ctx); err != nil {
			t.Fatalf("busy subscriber closed: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestFramesRightAfterTheHandshake: bytes a client sends in the same
// packet as its handshake are read, whatever read buffer the connection
// gets (a publisher reads through the server's, a subscriber through a
// small one of its own).
func TestFramesRightAfterTheHandshake(t *testing.T) {
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/early", nil)
	upgrade := func(path string, frames ...[]byte) *rawConn {
		c, err := net.Dial("tcp", b.Listen)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		req := "GET " + path + " HTTP/1.1\r\nHost: " + b.Listen + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
		c.Write(append([]byte(req), bytes.Join(frames, nil)...)) // one write
		rc := &rawConn{Conn: c, r: bufioReader(c)}
		resp, err := http.ReadResponse(rc.r, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade %s: %v %v", path, resp, err)
		}
		return rc
	}
	upgrade("/pub/early", frame(true, opText, []byte("sent with the handshake")))
	if got := readText(t, sub); got != "sent with the handshake" {
		t.Fatalf("subscriber got %q", got)
	}
	rc := upgrade("/sub/early", frame(true, opClose, []byte{0x03, 0xe8}))
	if code, _ := rc.readClose(t); code != 1000 {
		t.Fatalf("a subscriber's close sent with its handshake: answered %d, want 1000", code)
	}
}
