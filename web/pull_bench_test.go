package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
)

// BenchmarkRawPull pushes 128-byte messages to a queue with one raw puller
// that only counts the bytes it reads, and reports the time per message
// from push to read: each message is claimed, written and settled.
func BenchmarkRawPull(b *testing.B) {
	ts := startServer(b, unlimited(Options{}))
	counted, closeConn := dialRawPuller(b, ts.http.URL, "/bench")
	defer closeConn()
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
}

// BenchmarkRawPullDurable measures a raw puller draining a durable queue:
// rounds of up to 5,000 128-byte messages are pushed (not timed, 50
// pushers sharing fsyncs) while no puller is there, then one raw puller
// reads them all: the time per message is the reading's. A raw puller's
// batch leaves the store in a synced write before it is written, so the
// prefetch bounds the messages per fsync.
func BenchmarkRawPullDurable(b *testing.B) {
	for _, prefetch := range []int{16, 256} {
		b.Run(fmt.Sprintf("prefetch=%d", prefetch), func(b *testing.B) { benchRawPullDurable(b, prefetch) })
	}
}

func benchRawPullDurable(b *testing.B, prefetch int) {
	const round, pushers = 5000, 50
	ps := policies(b, broker.Policy{Bus: "/d", Durable: true})
	st, err := store.OpenDurable(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	br, err := broker.Open(broker.Options{Policies: ps, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ts := startServerOn(b, br, unlimited(Options{Buses: &Buses{Policies: ps}}))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		ts.http.Close()
	}()
	payload := make([]byte, 128)
	frame := int64(2 + len(payload))
	var elapsed time.Duration
	for left := b.N; left > 0; left -= round {
		n := min(left, round)
		b.StopTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range pushers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := br.Push(&broker.Message{Topic: "/d/jobs", Payload: payload}, broker.PushOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StartTimer()
		start := time.Now()
		counted, closeConn := dialRawPuller(b, ts.http.URL, fmt.Sprintf("/d/jobs?prefetch=%d", prefetch))
		for counted.Load() < int64(n)*frame {
			runtime.Gosched()
		}
		elapsed += time.Since(start)
		b.StopTimer()
		closeConn()
		ts.waitPullers(b, "/d/jobs", 0)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// dialRawPuller connects a raw puller to topic that only counts the bytes
// it reads; closeConn closes it and waits for its reader.
func dialRawPuller(b *testing.B, base, topic string) (counted *atomic.Int64, closeConn func()) {
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(nc, "GET /pull%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", topic, strings.TrimPrefix(base, "http://"))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		b.Fatalf("handshake: %v %v", resp, err)
	}
	counted = new(atomic.Int64)
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
	return counted, func() {
		nc.Close()
		<-done
	}
}
