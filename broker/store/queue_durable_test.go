package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// queueBroker opens a broker on d with the durable queue bus /q, whose
// queues hold at most limit messages, and the clock now (nil: time.Now).
func queueBroker(t *testing.T, d broker.Store, limit int, now func() time.Time) *broker.Broker {
	t.Helper()
	ps, err := broker.NewPolicies([]broker.Policy{{Bus: "/q", Durable: true, Queue: broker.QueuePolicy{Limit: limit}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Policies: ps, Store: d, Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pulled joins a raw puller to topic and returns the payloads it was
// handed at once (Pull hands out what is ready before it returns).
func pulled(t *testing.T, b *broker.Broker, topic broker.Topic) []string {
	t.Helper()
	var p puller
	leave, err := b.Pull(topic, &p, broker.PullOptions{Ack: true, Prefetch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	p.mu.Lock()
	defer p.mu.Unlock()
	var got []string
	for _, d := range p.got {
		got = append(got, string(d.Message.Payload))
	}
	return got
}

// TestDurableQueueLimitHoldsUnderConcurrentPushes pushes 100 messages at
// once to a durable queue limited to 10, on a disk whose syncs take 20ms:
// exactly 10 are accepted, the rest are refused as full, and the accepted
// ones still shared fsyncs.
func TestDurableQueueLimitHoldsUnderConcurrentPushes(t *testing.T) {
	d, f := openFaulty(t, t.TempDir())
	defer d.Close()
	b := queueBroker(t, d, 10, nil)
	defer b.Close()
	f.syncDelay.Store(int64(20 * time.Millisecond))
	var accepted, full atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			err := b.Push(&broker.Message{Topic: "/q/jobs", Payload: fmt.Appendf(nil, "j%d", i)}, broker.PushOptions{})
			switch {
			case err == nil:
				accepted.Add(1)
			case errors.Is(err, broker.ErrQueueFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 10 || full.Load() != 90 {
		t.Fatalf("%d accepted, %d refused as full; want 10 and 90", accepted.Load(), full.Load())
	}
	if got := pulled(t, b, "/q/jobs"); len(got) != 10 {
		t.Fatalf("a puller got %d messages, want the 10 accepted", len(got))
	}
	// One sync for the sequence lease, the rest shared by the pushes.
	if syncs := f.syncs.Load(); syncs-1 >= accepted.Load() {
		t.Errorf("%d syncs for %d accepted pushes: group commit did not share them", syncs, accepted.Load())
	}
}

// TestFailedSyncIsNeverConfirmed fails the disk's syncs: a push and a
// publish on a durable bus return the error, the pushed message is never
// handed to a puller, and its slot under the queue's limit is given back.
func TestFailedSyncIsNeverConfirmed(t *testing.T) {
	dir := t.TempDir()
	d, f := openFaulty(t, dir)
	ps, _ := broker.NewPolicies([]broker.Policy{
		{Bus: "/q", Durable: true, Queue: broker.QueuePolicy{Limit: 1}},
		{Bus: "/d", Durable: true, History: broker.History{Messages: 100}},
	})
	b, err := broker.Open(broker.Options{Policies: ps, Store: d})
	if err != nil {
		t.Fatal(err)
	}
	// The first publish saves the sequence lease; it must succeed first.
	if err := b.Publish(&broker.Message{Topic: "/d/x", Payload: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	f.failSyncs.Store(true)
	if err := b.Push(&broker.Message{Topic: "/q/jobs", Payload: []byte("lost")}, broker.PushOptions{}); !errors.Is(err, errInjected) {
		t.Fatalf("push on a failing disk = %v, want the sync's error", err)
	}
	if err := b.Publish(&broker.Message{Topic: "/d/x", Payload: []byte("lost")}); !errors.Is(err, errInjected) {
		t.Fatalf("publish on a failing disk = %v, want the sync's error", err)
	}
	f.failSyncs.Store(false)
	if err := b.Push(&broker.Message{Topic: "/q/jobs", Payload: []byte("stored")}, broker.PushOptions{}); err != nil {
		t.Fatalf("push after a failed one into a queue of limit 1: %v (the slot was not given back)", err)
	}
	if got := pulled(t, b, "/q/jobs"); len(got) != 1 || got[0] != "stored" {
		t.Fatalf("puller got %q, want only the stored push", got)
	}
	b.Close()
	d.Close()

	d, _ = openFaulty(t, dir)
	defer d.Close()
	b, err = broker.Open(broker.Options{Policies: ps, Store: d})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := pulled(t, b, "/q/jobs"); len(got) != 1 || got[0] != "stored" {
		t.Fatalf("after a restart, puller got %q, want only the stored push", got)
	}
	backlog, _, unsub := b.SubscribeSince("/d", receiver{}, 0)
	unsub()
	if len(backlog) != 1 || string(backlog[0].Payload) != "kept" {
		t.Fatalf("after a restart, history %d messages, want only the confirmed one", len(backlog))
	}
}

// TestNackDelaySurvivesARestart nacks a job with a one-hour delay, restarts
// the broker: the job is not handed out at once, and is an hour later.
func TestNackDelaySurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	d := openDurable(t, dir)
	b := queueBroker(t, d, 0, nil)
	if err := b.Push(&broker.Message{Topic: "/q/jobs", Payload: []byte("later")}, broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	var p puller
	leave, err := b.Pull("/q/jobs", &p, broker.PullOptions{Ack: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Nack("/q/jobs", &p, p.got[0].ID(), time.Hour, "not yet"); err != nil {
		t.Fatal(err)
	}
	leave()
	b.Close()
	d.Close()

	d = openDurable(t, dir)
	b = queueBroker(t, d, 0, nil)
	if got := pulled(t, b, "/q/jobs"); len(got) != 0 {
		t.Fatalf("after a restart, a job nacked for an hour was handed out at once: %q", got)
	}
	b.Close()
	d.Close()

	d = openDurable(t, dir)
	defer d.Close()
	later := func() time.Time { return time.Now().Add(time.Hour + time.Minute) }
	b = queueBroker(t, d, 0, later)
	defer b.Close()
	if got := pulled(t, b, "/q/jobs"); len(got) != 1 || got[0] != "later" {
		t.Fatalf("an hour after its nack, puller got %q, want the job", got)
	}
}

// slowExpiry holds a queue's deletion until released, widening the moment
// between a queue expiring and its records being deleted.
type slowExpiry struct {
	*Durable
	deleting chan struct{} // closed when DeleteQueue is called
	release  chan struct{}
}

func (s *slowExpiry) DeleteQueue(queue broker.Topic, upTo uint64) error {
	close(s.deleting)
	<-s.release
	return s.Durable.DeleteQueue(queue, upTo)
}

// TestExpiryKeepsAConfirmedPush pushes to a queue while its expiry is
// deleting it: the push is confirmed, so it must survive a restart.
func TestExpiryKeepsAConfirmedPush(t *testing.T) {
	dir := t.TempDir()
	d := openDurable(t, dir)
	s := &slowExpiry{Durable: d, deleting: make(chan struct{}), release: make(chan struct{})}
	b := queueBroker(t, s, 0, nil)
	if err := b.Push(&broker.Message{Topic: "/q/once", Payload: []byte("expires")}, broker.PushOptions{TTL: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.deleting:
	case <-time.After(10 * time.Second):
		t.Fatal("the queue did not expire")
	}
	if err := b.Push(&broker.Message{Topic: "/q/once", Payload: []byte("confirmed")}, broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	close(s.release)
	// Close waits for nothing of the expiry: wait until the deletion is
	// applied by looking for its effect on the first message.
	waitGone(t, d, "/q/once", "expires")
	b.Close()
	d.Close()

	d = openDurable(t, dir)
	defer d.Close()
	b = queueBroker(t, d, 0, nil)
	defer b.Close()
	if got := pulled(t, b, "/q/once"); len(got) != 1 || got[0] != "confirmed" {
		t.Fatalf("after a restart, puller got %q, want the push confirmed during the expiry", got)
	}
}

// waitGone waits until queue's record with payload is no longer stored.
func waitGone(t *testing.T, d *Durable, queue broker.Topic, payload string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		d.LoadQueued(func(q broker.Topic, r broker.QueuedMessage) error {
			found = found || q == queue && string(r.Message.Payload) == payload
			return nil
		})
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's %q still stored", queue, payload)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTakenButUnwrittenMessageIsKept: a raw puller's delivery taken from
// the store before its write (broker.Take), whose write then fails
// (Release), is back in the store: a restart still delivers it. One that
// was written (Done) stays gone.
func TestTakenButUnwrittenMessageIsKept(t *testing.T) {
	dir := t.TempDir()
	d := openDurable(t, dir)
	b := queueBroker(t, d, 0, nil)
	for _, m := range []string{"written", "unwritten"} {
		if err := b.Push(&broker.Message{Topic: "/q/jobs", Payload: []byte(m)}, broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var p puller
	leave, err := b.Pull("/q/jobs", &p, broker.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 2 || !p.got[0].Claim() || !p.got[1].Claim() {
		t.Fatalf("raw puller got %d deliveries, or could not claim them", len(p.got))
	}
	if err := broker.Take(p.got); err != nil {
		t.Fatal(err)
	}
	p.got[0].Done()
	p.got[1].Release()
	leave()
	b.Close()
	d.Close()

	d = openDurable(t, dir)
	defer d.Close()
	b = queueBroker(t, d, 0, nil)
	defer b.Close()
	if got := pulled(t, b, "/q/jobs"); len(got) != 1 || got[0] != "unwritten" {
		t.Fatalf("after a restart, puller got %q, want only the unwritten message", got)
	}
}
