package nats

import (
	"fmt"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestQueueAttemptsAfterAPullerLeft: what an acking puller held when it
// left has spent an attempt, counted once: another puller of the same
// broker then sees attempt 2, and after a nack attempt 3. (The broker
// handed it to the other puller itself, as attempt 2, and JetStream,
// which had delivered it once, numbered the next delivery 2 again.)
func TestQueueAttemptsAfterAPullerLeft(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 1, []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 5}}})
	b := nodes[0].b
	if err := b.Push(msg("/jobs/left", "m"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	first := &holder{offered: make(chan *broker.Delivery, 4)}
	leave, err := b.Pull("/jobs/left", first, broker.PullOptions{Ack: true, Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := first.next(t); d.Attempt != 1 {
		t.Fatalf("first delivery: attempt %d", d.Attempt)
	}
	second := &holder{offered: make(chan *broker.Delivery, 4)}
	leaveSecond, err := b.Pull("/jobs/left", second, broker.PullOptions{Ack: true, Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer leaveSecond()
	leave() // gone without a word: an attempt spent
	d := second.next(t)
	if d.Attempt != 2 {
		t.Fatalf("after the first puller left: attempt %d, want 2", d.Attempt)
	}
	if err := b.Nack("/jobs/left", second, d.ID(), 0, "failed"); err != nil {
		t.Fatal(err)
	}
	if d := second.next(t); d.Attempt != 3 {
		t.Fatalf("after a nack of attempt 2: attempt %d, want 3", d.Attempt)
	}
}

// TestQueueTakenOverBrokerGivesBackOnce: the messages that reach a broker
// whose pullers were just taken over, in a fetch it had open, go back
// once each and spend no attempt: the new puller sees attempt 1. (They
// went back into that same fetch, again and again, each time a delivery
// JetStream counts, and their count of deliveries that were no attempt
// was written as 1 each time.)
func TestQueueTakenOverBrokerGivesBackOnce(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 5}}})
	for round := range 3 {
		topic := fmt.Sprintf("/jobs/over%d", round)
		old := &holder{offered: make(chan *broker.Delivery, 64)}
		if _, err := nodes[0].b.Pull(broker.Topic(topic), old, broker.PullOptions{Prefetch: 16}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // its fetch is open
		got := make(chan *broker.Delivery, 64)
		if _, err := startPuller(t, nodes[1].b, topic, broker.PullOptions{Ack: true, Prefetch: 16, Takeover: true},
			func(p *puller, d *broker.Delivery) { got <- d; p.b.Ack(p.topic, p, d.ID()) }); err != nil {
			t.Fatal(err)
		}
		const n = 8
		for i := range n {
			if err := nodes[1].b.Push(msg(topic, fmt.Sprint(i)), broker.PushOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			select {
			case d := <-got:
				if d.Attempt != 1 {
					t.Errorf("round %d: message %s at attempt %d, want 1", round, d.Message.Payload, d.Attempt)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("round %d: not every message came", round)
			}
		}
	}
}
