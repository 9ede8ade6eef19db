package nats

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// evictable is a holder that reports its eviction.
type evictable struct {
	holder
	evicted chan string
}

func (e *evictable) Evict(reason string) { e.evicted <- reason }

// next waits for the next delivery a holder is offered.
func (h *holder) next(t *testing.T) *broker.Delivery {
	t.Helper()
	select {
	case d := <-h.offered:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("nothing offered within 10s")
	}
	panic("unreachable")
}

// TestQueueBigMessagesFitThePullersBudget: a broker takes from the cluster
// no more big messages than its pullers' byte budget holds, so a puller
// busy with one leaves the rest to the pullers of another broker.
func TestQueueBigMessagesFitThePullersBudget(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	const topic, jobs, budget = "/jobs/big", 10, 1 << 20
	busy := &holder{offered: make(chan *broker.Delivery, jobs)}
	leave, err := nodes[0].b.Pull(topic, busy, broker.PullOptions{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	for i := range jobs {
		body := fmt.Sprintf("j%02d ", i) + strings.Repeat("x", 900_000)
		if err := nodes[0].b.Push(msg(topic, body), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	held := busy.next(t) // and never settled until the end
	time.Sleep(200 * time.Millisecond)

	cnt := &counter{seen: map[string]int{}}
	if _, err := startPuller(t, nodes[1].b, topic, broker.PullOptions{MaxBytes: budget},
		func(_ *puller, d *broker.Delivery) { cnt.add(string(d.Message.Payload[:3])) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other broker's puller to get the rest", func() bool { return cnt.len() == jobs-1 })
	if n := len(busy.offered); n != 0 {
		t.Fatalf("the busy puller was offered %d more beyond its budget", n)
	}
	if cnt.seen[string(held.Message.Payload[:3])] != 0 {
		t.Fatalf("%s, held by the busy puller, went to the other too", held.Message.Payload[:3])
	}
	held.Done()
}

// TestQueueEvictionNeverDeliversTwice: when another broker takes a queue
// over, what the evicted raw puller was writing stays its own (settled
// when written, given back when not), and what it had not started on goes
// to the new puller and can no longer be written by the old one.
func TestQueueEvictionNeverDeliversTwice(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	const topic, jobs = "/jobs/evict", 5
	old := &evictable{holder{offered: make(chan *broker.Delivery, jobs)}, make(chan string, 1)}
	leave, err := nodes[0].b.Pull(topic, old, broker.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	for i := range jobs {
		if err := nodes[0].b.Push(msg(topic, fmt.Sprint("j", i)), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var ds []*broker.Delivery
	for range jobs {
		ds = append(ds, old.next(t))
	}
	written, unwritten := ds[0], ds[1] // being written when the takeover comes
	if !written.Claim() || !unwritten.Claim() {
		t.Fatal("a held delivery could not be claimed")
	}

	got := make(chan string, 2*jobs)
	if _, err := startPuller(t, nodes[1].b, topic, broker.PullOptions{Takeover: true},
		func(_ *puller, d *broker.Delivery) { got <- string(d.Message.Payload) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.evicted:
	case <-time.After(10 * time.Second):
		t.Fatal("the old puller was not evicted")
	}
	for _, d := range ds[2:] {
		if d.Claim() {
			t.Fatalf("%s, handed back at the eviction, could still be claimed", d.Message.Payload)
		}
	}
	written.Done()
	unwritten.Release()

	want := map[string]bool{}
	for _, d := range ds[1:] {
		want[string(d.Message.Payload)] = true
	}
	for len(want) > 0 {
		select {
		case p := <-got:
			if !want[p] {
				t.Fatalf("the new puller got %s, which it should not (left: %v)", p, want)
			}
			delete(want, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("the new puller did not get %v", want)
		}
	}
	select {
	case p := <-got:
		t.Fatalf("the new puller also got %s", p)
	case <-time.After(300 * time.Millisecond):
	}
}
