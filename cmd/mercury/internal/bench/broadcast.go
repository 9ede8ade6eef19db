package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// A broadcast is one message to a topic every idle subscriber is on: how
// long the last of them waits says how long a broker takes to walk all
// its connections once, the cost of an announcement to everyone.

const (
	defaultBroadcasts = 3
	// broadcastTimeout bounds the wait for one broadcast to reach every
	// subscriber; those it has not reached by then count as missed.
	broadcastTimeout = 30 * time.Second
	broadcastPause   = 500 * time.Millisecond // between broadcasts, for the server to settle
	broadcastSize    = 64
)

// broadcastReport is how long one broadcast took to reach the
// subscribers, from the moment it was sent.
type broadcastReport struct {
	Received int     `json:"received"` // subscribers it reached
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	LastMS   float64 `json:"last_ms"` // when the last subscriber had it
}

// idleSub is one idle subscriber and, per broadcast, when it received it
// (0: not yet).
type idleSub struct {
	ws  *websocket.Conn
	lat []atomic.Int64 // nanoseconds after the send
}

// broadcaster times broadcasts to subs.
type broadcaster struct {
	subs     []*idleSub
	n        int
	id       runID
	clock    benchClock
	current  atomic.Int64 // the broadcast in flight; -1: none
	sentAt   atomic.Int64 // its send time on clock
	received atomic.Int64 // subscribers that have it
	wg       sync.WaitGroup
}

func newBroadcaster(subs []*idleSub, n int) *broadcaster {
	b := &broadcaster{subs: subs, n: n, id: newRunID(), clock: newBenchClock()}
	b.current.Store(-1)
	return b
}

// startReading reads every subscriber's frames, so pings are answered and
// broadcasts are timed; stop closes the connections and waits.
func (b *broadcaster) startReading(ctx context.Context) (stop func()) {
	if b.n == 0 {
		for _, s := range b.subs {
			s.ws.CloseRead(ctx) // nothing to time: the library's reader answers pings
		}
		return func() {}
	}
	for _, s := range b.subs {
		s.lat = make([]atomic.Int64, b.n)
		b.wg.Go(func() { b.read(ctx, s) })
	}
	return func() {
		for _, s := range b.subs {
			s.ws.CloseNow()
		}
		b.wg.Wait()
	}
}

// read records the arrival of each broadcast at s.
func (b *broadcaster) read(ctx context.Context, s *idleSub) {
	buf := make([]byte, 0, 2*broadcastSize)
	for {
		_, rd, err := s.ws.Reader(ctx)
		if err == nil {
			buf, err = readAllInto(buf[:0], rd)
		}
		if err != nil {
			return // closed: the bench is done, or the server dropped it (it then misses broadcasts)
		}
		now := b.clock.now()
		kind, sent := parsePayload(buf, b.id)
		k := b.current.Load()
		if kind != kindTimed || k < 0 || int64(sent) != b.sentAt.Load() {
			continue // not the broadcast in flight: a late one after a timeout
		}
		if s.lat[k].CompareAndSwap(0, max(1, int64(now-sent))) {
			b.received.Add(1)
		}
	}
}

// run sends the broadcasts through pub one after the other, each once
// the previous one reached every subscriber or timed out.
func (b *broadcaster) run(ctx context.Context, pub *websocket.Conn, io command.Stdio) ([]broadcastReport, error) {
	var reps []broadcastReport
	buf := make([]byte, 0, broadcastSize)
	for k := range b.n {
		b.received.Store(0)
		sent := b.clock.now()
		b.sentAt.Store(int64(sent))
		b.current.Store(int64(k))
		buf = appendPayload(buf[:0], b.id, sent, broadcastSize)
		if err := pub.Write(ctx, websocket.MessageText, buf); err != nil {
			return nil, fmt.Errorf("failed to publish broadcast %d: %w", k+1, err)
		}
		deadline := time.Now().Add(broadcastTimeout)
		for b.received.Load() < int64(len(b.subs)) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		b.current.Store(-1)
		rep := b.report(k)
		fmt.Fprintf(io.Err, "broadcast %d: reached %d of %d, p50 %.1f ms, p99 %.1f ms, last %.1f ms\n",
			k+1, rep.Received, len(b.subs), rep.P50MS, rep.P99MS, rep.LastMS)
		reps = append(reps, rep)
		time.Sleep(broadcastPause)
	}
	return reps, nil
}

// report summarises broadcast k's arrivals.
func (b *broadcaster) report(k int) broadcastReport {
	var lat []time.Duration
	for _, s := range b.subs {
		if v := s.lat[k].Load(); v > 0 {
			lat = append(lat, time.Duration(v))
		}
	}
	return newBroadcastReport(lat)
}

// newBroadcastReport summarises the arrival delays of one broadcast.
func newBroadcastReport(lat []time.Duration) broadcastReport {
	rep := broadcastReport{Received: len(lat)}
	if len(lat) == 0 {
		return rep
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rank := func(q float64) time.Duration { return lat[max(0, int(q*float64(len(lat))+0.999999)-1)] }
	rep.P50MS, rep.P99MS, rep.LastMS = ms(rank(0.50)), ms(rank(0.99)), ms(lat[len(lat)-1])
	return rep
}

// medianBroadcast is the median of each figure over the broadcasts (a
// shared machine makes single runs noisy).
func medianBroadcast(reps []broadcastReport) *broadcastReport {
	if len(reps) == 0 {
		return nil
	}
	med := func(f func(broadcastReport) float64) float64 {
		v := make([]float64, len(reps))
		for i, r := range reps {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return &broadcastReport{
		Received: int(med(func(r broadcastReport) float64 { return float64(r.Received) })),
		P50MS:    med(func(r broadcastReport) float64 { return r.P50MS }),
		P99MS:    med(func(r broadcastReport) float64 { return r.P99MS }),
		LastMS:   med(func(r broadcastReport) float64 { return r.LastMS }),
	}
}
