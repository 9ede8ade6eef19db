package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// openEventStream opens an event stream on path and returns its body.
func openEventStream(t testing.TB, ts *testServer, path string, header http.Header) (*http.Response, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.http.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp, bufio.NewReader(resp.Body)
}

// nextEvent returns the next event's fields, skipping comments. A read
// that takes longer than 5s fails the test (the caller's stream is
// cancelled by its cleanup).
func nextEvent(t testing.TB, r *bufio.Reader) map[string]string {
	t.Helper()
	type result struct {
		ev  map[string]string
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev := map[string]string{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- result{nil, err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && len(ev) > 0:
				done <- result{ev, nil}
				return
			case line == "", strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ": ")
				if ev[k] != "" {
					v = ev[k] + "\n" + v
				}
				ev[k] = v
			}
		}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("stream ended: %v", res.err)
		}
		return res.ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	panic("unreachable")
}

func (ts *testServer) streams() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.Server.streams)
}

// A client that opens an event stream and then never reads is a slow
// consumer, as a WebSocket subscriber is: once its socket is full, the
// stream's write times out, the stream ends and is counted, and its
// goroutine, socket and per-address slot are released.
func TestStalledEventStreamIsClosedAsSlowConsumer(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	ts := startServer(t, Options{WriteTimeout: writeTimeout, OutgoingQueue: 64 << 10, MaxConnectionsPerIP: 1})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", ts.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /sub/stall HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", ts.http.Listener.Addr())
	ts.waitSubscribed(t, 1)

	// Publish until the stream is closed; it never reads.
	payload := []byte(strings.Repeat("x", 4096))
	queued := 0 // the most the listing showed waiting for the stream
	for i := 0; ts.SlowConsumers() == 0; i++ {
		if i == 20000 { // 80 MB: far beyond any socket buffer
			waitFor(t, func() bool { return ts.SlowConsumers() > 0 })
		}
		if err := ts.broker.Publish(&broker.Message{Topic: "/stall", Payload: payload}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			_, list := getBody(t, ts.http.URL+"/api/connections", "")
			var conns []connectionJSON
			json.Unmarshal(list, &conns)
			if len(conns) == 1 {
				queued = max(queued, conns[0].Queue.Len)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if queued == 0 {
		t.Error("the stalled stream's queue was never shown")
	}
	// Its slot, subscription and goroutine (the handler) are released.
	waitFor(t, func() bool { subs, _ := ts.broker.Subscriptions(); return subs == 0 && ts.streams() == 0 })
	resp, r := openEventStream(t, ts, "/sub/stall", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a new stream from the same address: %d", resp.StatusCode)
	}
	ts.waitSubscribed(t, 1)
	ts.broker.Publish(&broker.Message{Topic: "/stall", Payload: []byte("after")})
	if ev := nextEvent(t, r); ev["data"] != "after" {
		t.Fatalf("new stream got %v", ev)
	}
	// The stalled client, reading at last, finds its connection reset:
	// what the kernel held for it was dropped.
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, raw); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stalled stream's connection was not closed: %v", err)
	}
}

// A stream quiet for several write timeouts, with heartbeats only, still
// gets the next message: the bound of one write is lifted once it is done.
func TestQuietEventStreamOutlivesWriteTimeout(t *testing.T) {
	ts := startServer(t, Options{WriteTimeout: 50 * time.Millisecond, SSEHeartbeat: 100 * time.Millisecond})
	_, r := openEventStream(t, ts, "/sub/quiet", nil)
	ts.waitSubscribed(t, 1)
	for i := range 4 {
		time.Sleep(300 * time.Millisecond) // heartbeats, each write's deadline long past
		msg := fmt.Sprint("after quiet ", i)
		ts.broker.Publish(&broker.Message{Topic: "/quiet", Payload: []byte(msg)})
		if ev := nextEvent(t, r); ev["data"] != msg {
			t.Fatalf("event %v, want %q", ev, msg)
		}
	}
	if n := ts.SlowConsumers(); n != 0 {
		t.Fatalf("%d slow consumers", n)
	}
}

// A stalled stream closed as a slow consumer leaves nothing in the
// kernel: its connection is reset, not closed behind what the socket
// still holds for a peer that does not read.
func TestStalledEventStreamReleasesKernelMemory(t *testing.T) {
	ts := startServer(t, Options{WriteTimeout: 300 * time.Millisecond, OutgoingQueue: 64 << 10})
	addr := ts.http.Listener.Addr().(*net.TCPAddr)
	stalledSubscriber(t, addr.String(), "/stall", "Accept: text/event-stream")
	ts.waitSubscribed(t, 1)
	payload := []byte(strings.Repeat("x", 4096))
	for i := 0; ts.SlowConsumers() == 0; i++ {
		if i == 20000 {
			waitFor(t, func() bool { return ts.SlowConsumers() > 0 })
		}
		ts.broker.Publish(&broker.Message{Topic: "/stall", Payload: payload})
		if i%16 == 15 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		bytes, sockets := sendQueued(t, addr.Port)
		if bytes == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the slow-consumer close the kernel still holds %d bytes on %d sockets for the stalled peer", bytes, sockets)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
