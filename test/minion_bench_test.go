package test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/web/client"
)

// arrivals records when each message reached a subscriber, by key.
type arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time
	n     int
	bytes int
	cond  chan struct{}
}

// subscribe reads everything under topic on the broker and records each
// message's arrival under key(payload).
func subscribe(b testing.TB, ws, topic string, key func([]byte) string) *arrivals {
	b.Helper()
	a := &arrivals{at: map[string]time.Time{}, cond: make(chan struct{}, 1)}
	c := dial(b, ws+"/sub"+topic, &client.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Read(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			a.mu.Lock()
			a.at[key(f.Data)] = now
			a.n++
			a.bytes += len(f.Data)
			a.mu.Unlock()
			select {
			case a.cond <- struct{}{}:
			default:
			}
		}
	}()
	b.Cleanup(func() { cancel(); c.CloseNow(); <-done })
	return a
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// waitCount waits until n messages arrived and returns when the last did.
func (a *arrivals) waitCount(b testing.TB, n int, within time.Duration) time.Time {
	b.Helper()
	deadline := time.After(within)
	for a.count() < n {
		select {
		case <-a.cond:
		case <-deadline:
			b.Fatalf("%d of %d messages arrived within %s", a.count(), n, within)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var last time.Time
	for _, t := range a.at {
		if t.After(last) {
			last = t
		}
	}
	return last
}

func eventKey(p []byte) string {
	var e struct {
		Type  string `json:"type"`
		JobID *int64 `json:"job_id"`
	}
	json.Unmarshal(p, &e)
	if e.JobID == nil {
		return e.Type
	}
	return fmt.Sprintf("%s:%d", e.Type, *e.JobID)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkMinionBridge measures the bridge with the real binary, broker
// and PostgreSQL: events per second (5,000 jobs enqueued in one
// transaction, until the last event reaches a subscriber), and the lag
// from a transition's commit to the subscriber at 200 transitions per
// second (Minion's enqueue, dequeue and finish statements, driven from Go
// at a fixed rate). The baseline is the broker alone in the same run: the
// same number of POSTs to /pub with the same concurrency, and POST-to-
// subscriber lag at 200/s. Run with -benchtime=1x; the workload is fixed.
func BenchmarkMinionBridge(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchBridge(b, startBroker(b)) })
	b.Run("durable", func(b *testing.B) {
		benchBridge(b, startDurableBroker(b, freeAddr(b), b.TempDir()))
	})
}

func benchBridge(b *testing.B, br *brokerProc) {
	db := minionDB(b)
	conn := pgConnect(b, db)
	ctx := context.Background()
	startMercury(b, "bridge", "minion", "--pg", db, "--broker", br.HTTP)
	events := subscribe(b, br.WS, "/audit/minion/default", eventKey)
	base := subscribe(b, br.WS, "/audit/minion/baseline", func(p []byte) string {
		var v struct{ B, Lag int }
		json.Unmarshal(p, &v)
		return fmt.Sprintf("%d/%d", v.B, v.Lag)
	})
	// Warm up: the bridge is up and publishing.
	enqueueSQL := `INSERT INTO minion_jobs (args, attempts, delayed, expires, lax, notes, parents, priority, queue, task)
		VALUES ('[]', 1, NOW(), NULL, FALSE, '{}', '{}', 0, 'default', 'bench') RETURNING id`
	var warm int64
	if err := conn.QueryRow(ctx, enqueueSQL).Scan(&warm); err != nil {
		b.Fatal(err)
	}
	events.waitCount(b, 1, 30*time.Second)

	// Throughput.
	const n = 5000
	start := time.Now()
	if _, err := conn.Exec(ctx, `INSERT INTO minion_jobs (args, delayed, priority, queue, task)
		SELECT jsonb_build_array(i), NOW(), 0, 'default', 'bench' FROM generate_series(1, $1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	last := events.waitCount(b, 1+n, 5*time.Minute)
	bridgeRate := n / last.Sub(start).Seconds()
	events.mu.Lock()
	size := events.bytes / events.n
	events.mu.Unlock()
	pad := make([]byte, max(0, size-20))
	for i := range pad {
		pad[i] = 'x'
	}

	pub := &minion.HTTPPublisher{Broker: br.HTTP, Concurrency: 8}
	var msgs []minion.Message
	for i := range n {
		topic := fmt.Sprintf("/audit/minion/baseline/%d", i%64)
		msgs = append(msgs, minion.Message{Topic: topic, Key: topic, Payload: []byte(fmt.Sprintf(`{"b":%d,"pad":"%s"}`, i, pad))})
	}
	start = time.Now()
	if _, err := pub.Publish(ctx, msgs); err != nil {
		b.Fatal(err)
	}
	last = base.waitCount(b, n, time.Minute)
	baseRate := n / last.Sub(start).Seconds()

	// Lag at 200 transitions per second: enqueue, dequeue, finish, in turn.
	var worker int64
	if err := conn.QueryRow(ctx, `INSERT INTO minion_workers (host, pid) VALUES ('bench', 1) RETURNING id`).Scan(&worker); err != nil {
		b.Fatal(err)
	}
	const rate, dur = 200, 10 * time.Second
	committed := map[string]time.Time{}
	tick := time.NewTicker(time.Second / rate)
	var jobs []int64
	step := 0
	end := time.Now().Add(dur)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		var key string
		switch step % 3 {
		case 0:
			var id int64
			if err := conn.QueryRow(ctx, enqueueSQL).Scan(&id); err != nil {
				b.Fatal(err)
			}
			jobs = append(jobs, id)
			key = fmt.Sprintf("enqueued:%d", id)
		case 1:
			id := jobs[len(jobs)-1]
			if _, err := conn.Exec(ctx, `UPDATE minion_jobs SET started = NOW(), state = 'active', worker = $1
				WHERE id = $2 AND state = 'inactive'`, worker, id); err != nil {
				b.Fatal(err)
			}
			key = fmt.Sprintf("started:%d", id)
		case 2:
			id := jobs[len(jobs)-1]
			if _, err := conn.Exec(ctx, `UPDATE minion_jobs SET finished = NOW(), result = '"ok"', state = 'finished'
				WHERE id = $1 AND retries = 0 AND state = 'active'`, id); err != nil {
				b.Fatal(err)
			}
			key = fmt.Sprintf("finished:%d", id)
		}
		committed[key] = time.Now()
		step++
	}
	tick.Stop()
	events.waitCount(b, 1+n+step, time.Minute)
	lags := collectLags(events, committed)
	achieved := float64(step) / dur.Seconds()

	// Baseline lag: the broker alone, a POST every 5ms.
	baseCommitted := map[string]time.Time{}
	one := &minion.HTTPPublisher{Broker: br.HTTP, Concurrency: 1}
	tick = time.NewTicker(time.Second / rate)
	end = time.Now().Add(dur / 2)
	i := 0
	for now := range tick.C {
		if now.After(end) {
			break
		}
		i++
		sent := time.Now()
		p := fmt.Sprintf(`{"lag":%d,"pad":"%s"}`, i, pad)
		if _, err := one.Publish(ctx, []minion.Message{{Topic: "/audit/minion/baseline/lag", Payload: []byte(p)}}); err != nil {
			b.Fatal(err)
		}
		baseCommitted[fmt.Sprintf("0/%d", i)] = sent
	}
	tick.Stop()
	base.waitCount(b, n+i, time.Minute)
	baseLags := collectLags(base, baseCommitted)

	b.ReportMetric(bridgeRate, "events/s")
	b.ReportMetric(baseRate, "baseline-msgs/s")
	b.ReportMetric(achieved, "transitions/s")
	b.ReportMetric(ms(percentile(lags, 0.50)), "lag-p50-ms")
	b.ReportMetric(ms(percentile(lags, 0.99)), "lag-p99-ms")
	b.ReportMetric(ms(percentile(baseLags, 0.50)), "baseline-lag-p50-ms")
	b.ReportMetric(ms(percentile(baseLags, 0.99)), "baseline-lag-p99-ms")
	b.Logf("bridge %.0f events/s (broker alone %.0f msgs/s, ratio %.2f); at %.0f transitions/s commit-to-subscriber lag p50 %.1fms p99 %.1fms (broker alone p50 %.2fms p99 %.2fms)",
		bridgeRate, baseRate, bridgeRate/baseRate, achieved,
		ms(percentile(lags, 0.5)), ms(percentile(lags, 0.99)), ms(percentile(baseLags, 0.5)), ms(percentile(baseLags, 0.99)))
}

func collectLags(a *arrivals, committed map[string]time.Time) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for k, c := range committed {
		if r, ok := a.at[k]; ok {
			out = append(out, max(0, r.Sub(c)))
		}
	}
	return out
}
