package web

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

// BenchmarkFanoutWebSocket publishes 128-byte messages to 1,000 real
// WebSocket subscribers on loopback and reports the time per delivered
// frame, server and clients together on the same machine.
func BenchmarkFanoutWebSocket(b *testing.B) {
	const subs = 1000
	ts := startServer(b, Options{OutgoingQueue: 64 << 20})
	var received atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range subs {
		c, _, err := websocket.Dial(ctx, client.URL(ts.ws, "sub", "/bench", nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, r, err := c.Reader(ctx)
				if err != nil {
					return
				}
				io.Copy(io.Discard, r)
				received.Add(1)
			}
		}()
	}
	ts.waitSubscribed(b, subs)
	payload := make([]byte, 128)
	b.SetBytes(int64(len(payload)) * subs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ts.broker.Publish(&broker.Message{Topic: "/bench", Payload: payload})
	}
	want := int64(b.N) * subs
	for received.Load() < want {
		if ts.SlowConsumers() > 0 {
			b.Fatal("a benchmark subscriber was closed as a slow consumer")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
	cancel()
	wg.Wait()
}
