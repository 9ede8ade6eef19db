package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
	"github.com/mercury-broker/mercury/web/client"
)

// BenchmarkFanoutWebSocket publishes 128-byte messages to 1,000 real
// WebSocket subscribers on loopback and reports the time per delivered
// frame, server and clients together on the same machine.
func BenchmarkFanoutWebSocket(b *testing.B) {
	const subs = 1000
	ts := startServer(b, unlimited(Options{OutgoingQueue: 64 << 20}))
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

// BenchmarkPublishToDelivery publishes over a real WebSocket to one real
// WebSocket subscriber on loopback, with the bus's schema (ten fields)
// off and on; ns/op is the time per message from the publisher's write to
// the subscriber's read. Compare the two for the cost of validation.
func BenchmarkPublishToDelivery(b *testing.B) {
	msg := []byte(`{"cmd":"run","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00.123Z","agent":"build-7",` +
		`"priority":3,"retry":true,"ratio":0.25,"tags":["nightly","x86"],"target":{"host":"build-7.example.com","port":8080},"by":"ops@example.com"}`)
	for _, withSchema := range []bool{false, true} {
		name := "schema=off"
		if withSchema {
			name = "schema=on"
		}
		b.Run(name, func(b *testing.B) {
			var buses *Buses
			if withSchema {
				ps, _ := broker.NewPolicies([]broker.Policy{{Bus: "/bench"}})
				reg, err := schema.Compile([]schema.Source{{Bus: "/bench", File: "../schema/testdata/ten-fields.json"}})
				if err != nil {
					b.Fatal(err)
				}
				buses = &Buses{Policies: ps, Schemas: reg}
			}
			ts := startServer(b, unlimited(Options{OutgoingQueue: 64 << 20, Buses: buses}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, _, err := websocket.Dial(ctx, client.URL(ts.ws, "sub", "/bench", nil), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer sub.CloseNow()
			ts.waitSubscribed(b, 1)
			pub, _, err := websocket.Dial(ctx, client.URL(ts.ws, "pub", "/bench/1", nil), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer pub.CloseNow()
			go pub.CloseRead(ctx) // an error frame would be read here, and none is due

			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			received := make(chan error, 1)
			go func() {
				for range b.N {
					_, r, err := sub.Reader(ctx)
					if err != nil {
						received <- err
						return
					}
					io.Copy(io.Discard, r)
				}
				received <- nil
			}()
			for range b.N {
				if err := pub.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-received; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}

// rawSubscriber opens /sub/{topic} with a hand-made handshake and then
// only counts bytes, so it allocates nothing while reading: what a
// benchmark's allocation count then shows is the server's.
func rawSubscriber(b *testing.B, ts *testServer, topic string, counted *atomic.Int64, wg *sync.WaitGroup) net.Conn {
	b.Helper()
	addr := strings.TrimPrefix(ts.http.URL, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	// The Host must be the server's own: others are refused (DNS rebinding).
	fmt.Fprintf(nc, "GET /sub%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", topic, addr)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake: %v %v", resp, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := br.Read(buf)
			counted.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return nc
}

// BenchmarkFanoutAllocs publishes 128-byte messages to 100 WebSocket
// subscribers and reports the server's allocations per delivery (the
// subscribers read raw bytes and allocate nothing).
func BenchmarkFanoutAllocs(b *testing.B) { fanoutAllocs(b, false) }

// BenchmarkFanoutAllocsPaced is the same with each message published once
// every subscriber has the one before, as at a low rate: every delivery is
// a write of its own.
func BenchmarkFanoutAllocsPaced(b *testing.B) { fanoutAllocs(b, true) }

func fanoutAllocs(b *testing.B, paced bool) {
	const subs = 100
	ts := startServer(b, unlimited(Options{OutgoingQueue: 64 << 20}))
	var counted atomic.Int64
	var wg sync.WaitGroup
	for range subs {
		nc := rawSubscriber(b, ts, "/bench", &counted, &wg)
		defer nc.Close()
	}
	ts.waitSubscribed(b, subs)
	payload := make([]byte, 128)
	frame := int64(2 + len(payload))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	sent := int64(0)
	for b.Loop() {
		ts.broker.Publish(&broker.Message{Topic: "/bench", Payload: payload})
		sent++
		for paced && counted.Load() < sent*subs*frame {
			// A sleep, not a spin: the subscribers' readers need the
			// processor's network poll.
			time.Sleep(50 * time.Microsecond)
		}
	}
	for counted.Load() < int64(b.N)*subs*frame {
		runtime.Gosched()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	deliveries := float64(b.N * subs)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
	if !paced { // paced, the time is mostly the waits
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	}
}

// BenchmarkIdleConnectionMemory opens idle subscribers and reports the
// server's heap and goroutine stack per connection, after a collection.
// The subscribers are raw sockets in the same process: their own share
// (a socket each, no goroutine, no buffer kept) is counted too, so the
// figure slightly overstates the server's.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const conns = 2000
	ts := startServer(b, unlimited(Options{}))
	measure := func() (heap, stack uint64) {
		ms := memStatsAfterGC()
		return ms.HeapInuse, ms.StackInuse
	}
	for b.Loop() {
		heap0, stack0 := measure()
		var open []net.Conn
		host := strings.TrimPrefix(ts.http.URL, "http://")
		for i := range conns {
			nc, err := net.Dial("tcp", host)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(nc, "GET /sub/idle/%d HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", i, host)
			resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 512), nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				b.Fatalf("handshake: %v %v", resp, err)
			}
			open = append(open, nc)
		}
		ts.waitSubscribed(b, conns)
		heap1, stack1 := measure()
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/conns, "bytes/conn")
		b.ReportMetric(float64(stack1-stack0)/conns, "stack-bytes/conn")
		for _, nc := range open {
			nc.Close()
		}
		waitFor(b, func() bool { return ts.Connections() == 0 })
	}
}

// unlimited lifts the limits a benchmark's load would hit: connections per
// address (every client is on loopback) and the publish rate.
func unlimited(o Options) Options {
	o.MaxConnections = 100_000
	o.MaxConnectionsPerIP = -1
	o.PublishRate = -1
	return o
}
