package nats

import (
	"context"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestQueueHeldMessageNotHandedOutTwice: a message JetStream delivers
// again while this broker still holds it (here a raw puller's, held
// unwritten past the consumer's ack wait) is not offered again: the copy
// held is settled as usual, and settles the other. (It was offered to the
// same puller a second time.)
func TestQueueHeldMessageNotHandedOutTwice(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 1, []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{AckTimeout: 100 * time.Millisecond}}})
	b, bp := nodes[0].b, nodes[0].bp
	const topic = "/jobs/held"
	h := &holder{offered: make(chan *broker.Delivery, 8)}
	leave, err := b.Pull(topic, h, broker.PullOptions{Prefetch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if err := b.Push(msg(topic, "first"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	first := h.next(t)

	// Held past the ack wait (the ack timeout and its grace): JetStream
	// delivers it again, to this broker's fetch, the only one.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := bp.js.Consumer(ctx, bp.queueStream, queueKey(topic))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "JetStream to deliver the held message again", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Consumer >= 2
	})
	// Deliveries come in order: the barrier comes after the repeat.
	if err := b.Push(msg(topic, "barrier"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := h.next(t); string(d.Message.Payload) != "barrier" {
		t.Fatalf("offered %q (id %d) again while it is held (id %d)", d.Message.Payload, d.ID(), first.ID())
	}
	first.Done()
}

// TestTakenRules: which deliveries a broker hands out, by what it did
// with the message before.
func TestTakenRules(t *testing.T) {
	now := time.Now()
	tk := newTaken()
	if ok, _ := tk.take(5, 1, now); !ok {
		t.Fatal("a first delivery was refused")
	}
	if ok, _ := tk.take(5, 1, now); ok {
		t.Fatal("a repeated first delivery of a held message was taken")
	}
	if ok, _ := tk.take(5, 2, now); ok {
		t.Fatal("a redelivery of a held message was taken")
	}
	tk.settle(5, true, now)
	if ok, acked := tk.take(5, 1, now); ok || !acked {
		t.Fatalf("a repeated first delivery of an acknowledged message: taken %v, acked %v", ok, acked)
	}
	tk.take(6, 1, now)
	tk.settle(6, false, now) // given back
	if ok, _ := tk.take(6, 1, now); ok {
		t.Fatal("a repeated first delivery of a message given back was taken")
	}
	if ok, _ := tk.take(6, 2, now); !ok {
		t.Fatal("the redelivery of a message given back was refused")
	}
	tk.take(7, 1, now)
	if ok, _ := tk.take(7, 2, now.Add(takenKeep+time.Second)); !ok {
		t.Fatal("a message held here for longer than anything is held stays refused")
	}
	later := now.Add(takenKeep + time.Minute)
	if ok, _ := tk.take(5, 1, later); !ok || len(tk.settled) > 2 {
		t.Fatalf("settlements not forgotten after %s: %d kept", takenKeep, len(tk.settled))
	}
}
