package broker

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// acker is an acking puller that records its deliveries.
type acker struct {
	mu      sync.Mutex
	got     []*Delivery
	evicted string
}

func (a *acker) Offer(d *Delivery) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, d)
}

func (a *acker) Evict(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evicted = reason
}

func (a *acker) deliveries() []*Delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

func (a *acker) last(t *testing.T) *Delivery {
	t.Helper()
	ds := a.deliveries()
	if len(ds) == 0 {
		t.Fatal("no delivery")
	}
	return ds[len(ds)-1]
}

func queueBroker(t *testing.T, qp QueuePolicy) *Broker {
	t.Helper()
	ps, err := NewPolicies([]Policy{{Bus: "/jobs", Queue: qp}})
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Policies: ps})
	t.Cleanup(b.Close)
	return b
}

func stats(b *Broker, topic Topic) QueueStats {
	for _, q := range b.Queues() {
		if q.Topic == topic {
			return q
		}
	}
	return QueueStats{}
}

func TestAckSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := queueBroker(t, QueuePolicy{AckTimeout: time.Second})
		var a acker
		mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
		b.Push(msg("/jobs", "job"), PushOptions{})
		d := a.last(t)
		if d.Attempt != 1 || d.ID() == 0 {
			t.Fatalf("delivery attempt %d id %d", d.Attempt, d.ID())
		}
		if err := b.Ack("/jobs", &a, d.ID()); err != nil {
			t.Fatal(err)
		}
		if err := b.Ack("/jobs", &a, d.ID()); !errors.Is(err, ErrUnknownID) {
			t.Fatalf("second ack: %v, want ErrUnknownID", err)
		}
		time.Sleep(5 * time.Second)
		if n := len(a.deliveries()); n != 1 {
			t.Fatalf("%d deliveries after an ack, want 1", n)
		}
		if st := stats(b, "/jobs"); st.InFlight != 0 || st.Waiting != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestAckTimeoutRedelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := queueBroker(t, QueuePolicy{AckTimeout: time.Second})
		var a acker
		mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
		b.Push(msg("/jobs", "job"), PushOptions{})
		time.Sleep(900 * time.Millisecond)
		if n := len(a.deliveries()); n != 1 {
			t.Fatalf("redelivered before the ack timeout: %d deliveries", n)
		}
		time.Sleep(200 * time.Millisecond)
		ds := a.deliveries()
		if len(ds) != 2 || ds[1].Attempt != 2 || ds[1].ID() != ds[0].ID() {
			t.Fatalf("after the timeout: %d deliveries, want the same id at attempt 2", len(ds))
		}
		if !strings.Contains(ds[1].LastError, "not acknowledged within 1s") {
			t.Fatalf("last error %q", ds[1].LastError)
		}
	})
}

func TestNackWithDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := queueBroker(t, QueuePolicy{AckTimeout: time.Minute})
		var a acker
		mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
		b.Push(msg("/jobs", "job"), PushOptions{})
		d := a.last(t)
		if err := b.Nack("/jobs", &a, d.ID(), 10*time.Second, "database down"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(9 * time.Second)
		if n := len(a.deliveries()); n != 1 {
			t.Fatal("redelivered before the nack's delay")
		}
		if st := stats(b, "/jobs"); st.Waiting != 1 {
			t.Fatalf("a delayed message should count as waiting: %+v", st)
		}
		time.Sleep(2 * time.Second)
		d2 := a.last(t)
		if d2.ID() != d.ID() || d2.Attempt != 2 || d2.LastError != "database down" {
			t.Fatalf("redelivery id %d attempt %d error %q", d2.ID(), d2.Attempt, d2.LastError)
		}
	})
}

func TestDisconnectRedeliversToAnotherPuller(t *testing.T) {
	b := queueBroker(t, QueuePolicy{})
	var a, c acker
	leaveA := mustPull(t, b, "/jobs", &a, PullOptions{Ack: true, Prefetch: 1})
	b.Push(msg("/jobs", "job"), PushOptions{})
	mustPull(t, b, "/jobs", &c, PullOptions{Ack: true})
	if len(c.deliveries()) != 0 {
		t.Fatal("second puller got the held job")
	}
	leaveA()
	d := c.last(t)
	if d.Attempt != 2 || string(d.Message.Payload) != "job" {
		t.Fatalf("after the holder left: attempt %d payload %q", d.Attempt, d.Message.Payload)
	}
}

func TestRawPullerLeavingSpendsNoAttempt(t *testing.T) {
	b := queueBroker(t, QueuePolicy{})
	var raw inbox
	raw.hold = true
	leave := mustPull(t, b, "/jobs", &raw, PullOptions{})
	b.Push(msg("/jobs", "job"), PushOptions{})
	leave()
	var a acker
	mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
	if d := a.last(t); d.Attempt != 1 {
		t.Fatalf("attempt %d, want 1: a raw puller that never wrote it spent no attempt", d.Attempt)
	}
}

func TestDeadLetters(t *testing.T) {
	b := queueBroker(t, QueuePolicy{MaxAttempts: 2})
	var a acker
	mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
	for _, p := range []string{"one", "two"} {
		b.Push(msg("/jobs", p), PushOptions{})
	}
	// Fail "one" twice: dead. Fail "two" once, then ack it.
	d1 := a.deliveries()[0]
	b.Nack("/jobs", &a, d1.ID(), 0, "boom 1")
	b.Nack("/jobs", &a, d1.ID(), 0, "boom 2")
	d2 := a.deliveries()[1]
	b.Nack("/jobs", &a, d2.ID(), 0, "")
	b.Ack("/jobs", &a, d2.ID())

	dead, err := b.DeadLetters("/jobs")
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
	if dl := dead[0]; dl.ID != d1.ID() || dl.Attempts != 2 || dl.LastError != "boom 2" || string(dl.Message.Payload) != "one" {
		t.Fatalf("dead letter %+v", dl)
	}
	if st := stats(b, "/jobs"); st.Dead != 1 || st.Waiting != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Requeued, it gets a fresh set of attempts.
	if n, err := b.Requeue("/jobs", d1.ID()); n != 1 || err != nil {
		t.Fatalf("requeue: %d, %v", n, err)
	}
	d := a.last(t)
	if d.ID() != d1.ID() || d.Attempt != 1 {
		t.Fatalf("requeued delivery id %d attempt %d", d.ID(), d.Attempt)
	}
	b.Nack("/jobs", &a, d.ID(), 0, "again")
	b.Nack("/jobs", &a, d.ID(), 0, "and again")
	if _, err := b.Requeue("/jobs", 12345); !errors.Is(err, ErrNoDeadLetters) {
		t.Fatalf("requeue of an unknown id: %v", err)
	}
	dl, err := b.PopDead("/jobs")
	if err != nil || dl.ID != d1.ID() || dl.LastError != "and again" {
		t.Fatalf("pop: %+v, %v", dl, err)
	}
	if _, err := b.PopDead("/jobs"); !errors.Is(err, ErrNoDeadLetters) {
		t.Fatalf("pop of an empty dead letter queue: %v", err)
	}
	b.Push(msg("/jobs", "three"), PushOptions{})
	d3 := a.last(t)
	b.Nack("/jobs", &a, d3.ID(), 0, "x")
	b.Nack("/jobs", &a, d3.ID(), 0, "x")
	if n, err := b.PurgeDead("/jobs"); n != 1 || err != nil {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if _, err := b.DeadLetters("/nothing"); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("dead letters of no queue: %v", err)
	}
}

func TestDisconnectAtLastAttemptMakesADeadLetter(t *testing.T) {
	b := queueBroker(t, QueuePolicy{MaxAttempts: 1})
	var a acker
	leave := mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
	b.Push(msg("/jobs", "job"), PushOptions{})
	leave()
	dead, _ := b.DeadLetters("/jobs")
	if len(dead) != 1 || dead[0].LastError != "puller disconnected" {
		t.Fatalf("dead letters %+v", dead)
	}
}

func TestQueueExpiresAfterItsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := queueBroker(t, QueuePolicy{TTL: time.Hour})
		b.Push(msg("/jobs/results/1", "result"), PushOptions{})
		b.Push(msg("/jobs/results/2", "result"), PushOptions{TTL: 10 * time.Minute})
		var a acker
		leave := mustPull(t, b, "/jobs/results/3", &a, PullOptions{})
		b.Push(msg("/jobs/results/3", "collected"), PushOptions{})

		time.Sleep(11 * time.Minute)
		if stats(b, "/jobs/results/2").Topic != "" {
			t.Fatal("queue with ?ttl=10m still there after 11 minutes")
		}
		if _, err := b.Pull("/jobs/results/2", &a, PullOptions{MustExist: true}); !errors.Is(err, ErrNoQueue) {
			t.Fatalf("must_exist on an expired queue: %v", err)
		}
		if err := b.Push(msg("/jobs/results/2", "late"), PushOptions{MustExist: true}); !errors.Is(err, ErrNoQueue) {
			t.Fatalf("must_exist push to an expired queue: %v", err)
		}
		if stats(b, "/jobs/results/1").Waiting != 1 {
			t.Fatal("queue with the bus's 1h TTL gone after 11 minutes")
		}
		time.Sleep(time.Hour)
		if stats(b, "/jobs/results/1").Topic != "" {
			t.Fatal("unused queue still there after its TTL")
		}
		if stats(b, "/jobs/results/3").Topic == "" {
			t.Fatal("a queue with a puller expired")
		}
		leave()
		time.Sleep(59 * time.Minute)
		if stats(b, "/jobs/results/3").Topic == "" {
			t.Fatal("queue expired before its TTL counted from the last puller leaving")
		}
		time.Sleep(2 * time.Minute)
		if stats(b, "/jobs/results/3").Topic != "" {
			t.Fatal("queue not expired a TTL after its last puller left")
		}
	})
}

func TestExclusivePullerAndTakeover(t *testing.T) {
	b := queueBroker(t, QueuePolicy{})
	var first, second, third, plain acker
	mustPull(t, b, "/jobs", &first, PullOptions{Ack: true, Exclusive: true})
	if _, err := b.Pull("/jobs", &second, PullOptions{}); !errors.Is(err, ErrExclusive) {
		t.Fatalf("second puller: %v, want ErrExclusive", err)
	}
	b.Push(msg("/jobs", "held by first"), PushOptions{})
	mustPull(t, b, "/jobs", &third, PullOptions{Ack: true, Takeover: true})
	if first.evicted != "taken over" {
		t.Fatalf("first puller evicted with %q", first.evicted)
	}
	if d := third.last(t); string(d.Message.Payload) != "held by first" || d.Attempt != 2 {
		t.Fatalf("the taker got %q attempt %d", d.Message.Payload, d.Attempt)
	}
	if _, err := b.Pull("/jobs", &plain, PullOptions{}); !errors.Is(err, ErrExclusive) {
		t.Fatalf("after a takeover the queue must stay exclusive: %v", err)
	}

	var a, c acker
	mustPull(t, b, "/other/jobs", &a, PullOptions{})
	if _, err := b.Pull("/other/jobs", &c, PullOptions{Exclusive: true}); !errors.Is(err, ErrQueueBusy) {
		t.Fatalf("exclusive puller on a shared queue: %v, want ErrQueueBusy", err)
	}
}

func TestMustExist(t *testing.T) {
	b := queueBroker(t, QueuePolicy{})
	var a acker
	if _, err := b.Pull("/jobs/x", &a, PullOptions{MustExist: true}); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("must_exist on no queue: %v", err)
	}
	b.Push(msg("/jobs/x", "m"), PushOptions{})
	if _, err := b.Pull("/jobs/x", &a, PullOptions{MustExist: true}); err != nil {
		t.Fatalf("must_exist on a queue with a message: %v", err)
	}
}

// An ack timeout hands the message to another puller: a frame of it still
// waiting for the first puller's socket (a slow reader) must no longer be
// written (Claim), or two pullers would hold it at once, the first with an
// older attempt.
func TestAckTimeoutLeavesNothingToWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := queueBroker(t, QueuePolicy{AckTimeout: time.Second})
		slow, other := &inbox{hold: true}, &inbox{hold: true}
		mustPull(t, b, "/jobs", slow, PullOptions{Ack: true, Prefetch: 1})
		b.Push(msg("/jobs", "job"), PushOptions{})
		mustPull(t, b, "/jobs", other, PullOptions{Ack: true, Prefetch: 1})
		time.Sleep(1100 * time.Millisecond)
		ds := other.heldNow()
		if len(ds) != 1 || ds[0].Attempt != 2 {
			t.Fatalf("the other puller holds %d after the ack timeout, want the message at attempt 2", len(ds))
		}
		stale := slow.heldNow()[0]
		if stale.Claim() {
			t.Fatal("the first puller may still write the message the other now holds")
		}
		stale.Sent() // must not touch the other's delivery
		if err := b.Ack("/jobs", other, ds[0].ID()); err != nil {
			t.Fatalf("the other puller's ack: %v", err)
		}
		if st := stats(b, "/jobs"); st.InFlight != 0 || st.Waiting != 0 {
			t.Fatalf("stats %+v after the ack", st)
		}
	})
}
