package nats

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// TestTakeoverWhileCutOff: broker A, cut off from NATS while broker B
// takes A's exclusive queue over, misses the takeover's message. Once
// back, A finds its registration gone and evicts its puller instead of
// pulling beside B's: every message goes to B's puller.
func TestTakeoverWhileCutOff(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	name := clusterName()
	a := startNodeAt(t, name, []string{proxy.URL()}, nil)
	b := startNodeAt(t, name, c.URLs()[1:], nil)
	var gotA, gotB atomic.Int64
	first, err := startPuller(t, a.b, "/solo", broker.PullOptions{Exclusive: true},
		func(*puller, *broker.Delivery) { gotA.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	waitFor(t, "broker A to notice the cut", func() bool { return a.b.Ready() != nil })
	if _, err := startPuller(t, b.b, "/solo", broker.PullOptions{Takeover: true},
		func(*puller, *broker.Delivery) { gotB.Add(1) }); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	proxy.Restore()
	waitFor(t, "broker A to reconnect", func() bool { return a.b.Ready() == nil })
	// Time for A to fetch again, were it going to; then a message at a
	// time, so that two pullers would both get some.
	time.Sleep(2 * fetchWait)
	const total = 40
	for i := range total {
		if err := b.b.Push(msg("/solo", strconv.Itoa(i)), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "every message", func() bool { return gotA.Load()+gotB.Load() >= total })
	if n := gotA.Load(); n != 0 {
		t.Errorf("the puller taken over received %d of %d messages after its broker reconnected", n, total)
	}
	select {
	case reason := <-first.evicted:
		if reason != "taken over" {
			t.Errorf("evicted with %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Error("the puller taken over was not evicted")
	}
}

// TestPushAndPublishAcrossCut: broker A pushes and publishes while its
// NATS connection is cut and restored. Every push and publish it confirmed,
// before or after the cut, reaches the acking pullers and the subscriber
// on broker B exactly once; what it refused arrives at most once.
func TestPushAndPublishAcrossCut(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	name := clusterName()
	policies := []broker.Policy{{Bus: "/news", Durable: true}}
	a := startNodeAt(t, name, []string{proxy.URL()}, policies)
	b := startNodeAt(t, name, c.URLs()[1:], policies)
	pulled := &counter{seen: map[string]int{}}
	for range 2 {
		if _, err := startPuller(t, b.b, "/jobs/cut", broker.PullOptions{Ack: true, Prefetch: 4},
			func(p *puller, d *broker.Delivery) {
				pulled.add(string(d.Message.Payload))
				if err := p.b.Ack(p.topic, p, d.ID()); err != nil {
					t.Errorf("ack: %v", err)
				}
			}); err != nil {
			t.Fatal(err)
		}
	}
	news := &recorder{}
	defer b.b.Subscribe("/news", news)()

	var mu sync.Mutex
	var pushed, published []string
	refused := 0
	var asyncSent, asyncDone atomic.Int64 // publishes without waiting, and their answers
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				payload := fmt.Sprintf("%d-%d", g, k)
				errPush := a.b.Push(msg("/jobs/cut", payload), broker.PushOptions{})
				errPub := a.b.Publish(msg("/news", payload))
				asyncSent.Add(1)
				a.b.PublishAsync(msg("/news/async", payload), func(err error) {
					if err == nil {
						mu.Lock()
						published = append(published, "async "+payload)
						mu.Unlock()
					}
					asyncDone.Add(1)
				})
				mu.Lock()
				if errPush == nil {
					pushed = append(pushed, payload)
				}
				if errPub == nil {
					published = append(published, payload)
				}
				if errPush != nil || errPub != nil {
					refused++
				}
				mu.Unlock()
				if errPush != nil || errPub != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	confirmed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(pushed)
	}
	waitFor(t, "pushes before the cut", func() bool { return confirmed() >= 10 })
	before := confirmed()
	proxy.Cut()
	waitFor(t, "broker A to notice the cut", func() bool { return a.b.Ready() != nil })
	time.Sleep(500 * time.Millisecond)
	proxy.Restore()
	waitFor(t, "broker A to reconnect", func() bool { return a.b.Ready() == nil })
	back := confirmed()
	waitFor(t, "pushes after the cut", func() bool { return confirmed() >= back+10 })
	close(stop)
	wg.Wait()
	waitFor(t, "an answer to every publish sent without waiting", func() bool { return asyncDone.Load() == asyncSent.Load() })

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d pushes and %d publishes confirmed (%d pushes before the cut, %d after), %d rounds refused",
		len(pushed), len(published), before, len(pushed)-back, refused)
	if refused == 0 {
		t.Fatal("nothing was refused: the cut did not happen while A sent")
	}
	if len(pushed) == 0 || len(published) == 0 {
		t.Fatal("nothing confirmed")
	}
	waitFor(t, "every confirmed push", func() bool {
		pulled.mu.Lock()
		defer pulled.mu.Unlock()
		for _, p := range pushed {
			if pulled.seen[p] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, "every confirmed publish", func() bool {
		seen := map[string]bool{}
		for _, m := range news.got() {
			seen[newsKey(m)] = true
		}
		for _, p := range published {
			if !seen[p] {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	pulled.mu.Lock()
	for p, n := range pulled.seen {
		if n != 1 {
			t.Errorf("push %s delivered %d times", p, n)
		}
	}
	pulled.mu.Unlock()
	got := map[string]int{}
	for _, m := range news.got() {
		got[newsKey(m)]++
	}
	for p, n := range got {
		if n != 1 {
			t.Errorf("publish %s delivered %d times", p, n)
		}
	}
	if t.Failed() {
		t.Logf("pushed %d, pulled %d distinct", len(pushed), pulled.len())
	}
}

// newsKey names a message of TestPushAndPublishAcrossCut as its publisher
// recorded it.
func newsKey(m *broker.Message) string {
	if m.Topic == "/news/async" {
		return "async " + string(m.Payload)
	}
	return string(m.Payload)
}

// TestLeaseRunsOutWhileCutOff: broker A is cut off from NATS longer than
// its lease on an exclusive queue; meanwhile broker B's exclusive puller
// joins, with no takeover and so no message to A. Once back, A finds its
// registration gone and evicts its puller.
func TestLeaseRunsOutWhileCutOff(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	name := clusterName()
	a := startNodeAt(t, name, []string{proxy.URL()}, nil)
	b := startNodeAt(t, name, c.URLs()[1:], nil)
	var gotA, gotB atomic.Int64
	first, err := startPuller(t, a.b, "/solo", broker.PullOptions{Exclusive: true},
		func(*puller, *broker.Delivery) { gotA.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	deadline := time.Now().Add(pullerLease + 10*time.Second)
	for {
		_, err := startPuller(t, b.b, "/solo", broker.PullOptions{Exclusive: true},
			func(*puller, *broker.Delivery) { gotB.Add(1) })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's exclusive puller still refused after A's lease: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	proxy.Restore()
	waitFor(t, "broker A to reconnect", func() bool { return a.b.Ready() == nil })
	time.Sleep(2 * fetchWait)
	const total = 20
	for i := range total {
		if err := b.b.Push(msg("/solo", strconv.Itoa(i)), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "every message", func() bool { return gotA.Load()+gotB.Load() >= total })
	if n := gotA.Load(); n != 0 {
		t.Errorf("the puller whose lease ran out received %d of %d messages after its broker reconnected", n, total)
	}
	select {
	case <-first.evicted:
	case <-time.After(10 * time.Second):
		t.Error("the puller whose lease ran out was not evicted")
	}
}
