package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

// BenchmarkPushThroughWebSocket sends 128-byte frames from a WebSocket
// pusher to a raw puller that only counts the bytes it reads, and reports
// the time per message from the pusher's write to the puller's read. The
// queue is never full (run it with -benchtime of at most 100000x, within
// the default queue.max_bytes): it measures what the path through the
// pusher's reader costs when no limit is hit.
func BenchmarkPushThroughWebSocket(b *testing.B) {
	ts := startServerWithBroker(b, broker.Options{QueueLimit: 1 << 30}, unlimited(Options{}))
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.http.URL, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /pull/bench HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake: %v %v", resp, err)
	}
	var counted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := br.Read(buf)
			counted.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	ts.waitPullers(b, "/bench", 1)
	ctx := context.Background()
	pusher, _, err := websocket.Dial(ctx, client.URL(ts.ws, "push", "/bench", nil), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pusher.CloseNow()
	payload := make([]byte, 128)
	frame := int64(2 + len(payload))
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if err := pusher.Write(ctx, websocket.MessageBinary, payload); err != nil {
			b.Fatal(err)
		}
	}
	for counted.Load() < int64(b.N)*frame {
		runtime.Gosched()
	}
	b.StopTimer()
	nc.Close()
	<-done
}
