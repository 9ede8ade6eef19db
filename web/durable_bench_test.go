package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/web/client"
)

// BenchmarkDurableSteadyState measures confirmed publishing to a durable
// bus over the wire: 50 envelope publishers, each sending a message and
// waiting for its {"ok":SEQ} before the next. It runs b.N confirms twice in
// the same run: with room in the bus's history, and with the history full
// (every publish also evicts the oldest message from the store). full/room
// is the ratio of their confirm rates; a full history is the normal state
// of a durable bus, so it should stay near 1 (at least 0.5).
func BenchmarkDurableSteadyState(b *testing.B) {
	const publishers = 50
	const kept = 10000 // the default durable history
	room := durablePublish(b, publishers, broker.History{Messages: 1 << 30}, 0)
	full := durablePublish(b, publishers, broker.History{Messages: kept}, kept)
	b.ReportMetric(room.rate, "room-confirms/s")
	b.ReportMetric(full.rate, "full-confirms/s")
	b.ReportMetric(full.rate/room.rate, "full/room")
	b.ReportMetric(float64(room.p50.Microseconds()), "room-p50-µs")
	b.ReportMetric(float64(full.p50.Microseconds()), "full-p50-µs")
	b.ReportMetric(float64(full.p99.Microseconds()), "full-p99-µs")
	b.ReportMetric(float64(room.p99.Microseconds()), "room-p99-µs")
}

type confirmRun struct {
	rate     float64 // confirms per second
	p50, p99 time.Duration
}

// durablePublish starts a server whose bus /d is durable with history h,
// fills it with prefill messages, then has publishers send b.N messages in
// all over envelope WebSockets, each waiting for its confirm.
func durablePublish(b *testing.B, publishers int, h broker.History, prefill int) confirmRun {
	b.Helper()
	ps := policies(b, broker.Policy{Bus: "/d", Durable: true, History: h})
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
	s, err := New(br, unlimited(Options{Buses: &Buses{Policies: ps}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.Close()
	}()
	ws := "ws" + strings.TrimPrefix(hs.URL, "http")

	payload := []byte(`{"cmd":"reboot","args":["--now"],"agent":"build-7"}`)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < prefill; i += publishers {
				if err := br.Publish(&broker.Message{Topic: "/d/x", Payload: payload}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make([]*websocket.Conn, publishers)
	for p := range conns {
		c, _, err := websocket.Dial(ctx, client.URL(ws, "pub", fmt.Sprintf("/d/%d", p), query("envelope", "1")), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		conns[p] = c
	}
	lat := make([][]time.Duration, publishers)
	b.ResetTimer()
	start := time.Now()
	for p, c := range conns {
		wg.Go(func() {
			for i := p; i < b.N; i += publishers {
				t0 := time.Now()
				if err := c.Write(ctx, websocket.MessageText, payload); err != nil {
					b.Error(err)
					return
				}
				_, frame, err := c.Read(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				var ok struct{ OK uint64 }
				if json.Unmarshal(frame, &ok) != nil || ok.OK == 0 {
					b.Errorf("publisher got %s, want {\"ok\":SEQ}", frame)
					return
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		b.Fatal("no confirms")
	}
	slices.Sort(all)
	return confirmRun{rate: float64(len(all)) / took.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}
}
