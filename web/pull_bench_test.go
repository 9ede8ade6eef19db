package web

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

// BenchmarkRawPull pushes 128-byte messages to a queue with one raw puller
// that only counts the bytes it reads, and reports the time per message
// from push to read: each message is claimed, written and settled.
func BenchmarkRawPull(b *testing.B) {
	ts := startServer(b, unlimited(Options{}))
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
	payload := make([]byte, 128)
	frame := int64(2 + len(payload))
	b.ResetTimer()
	for b.Loop() {
		for ts.broker.Push(&broker.Message{Topic: "/bench", Payload: payload}, broker.PushOptions{}) != nil {
			runtime.Gosched() // the queue is full: let the puller catch up
		}
	}
	for counted.Load() < int64(b.N)*frame {
		runtime.Gosched()
	}
	b.StopTimer()
	nc.Close()
	<-done
}
