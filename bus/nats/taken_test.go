package nats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
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
	if ok, _ := tk.take(5, 1, later); !ok {
		t.Fatalf("a settlement not forgotten after %s", takenKeep)
	}
	for seq := uint64(100); seq < 100+2*takenMax; seq++ {
		tk.take(seq, 1, later)
		tk.settle(seq, true, later)
	}
	if n := len(tk.settled); n != takenMax {
		t.Fatalf("%d settlements kept, want the last %d", n, takenMax)
	}
	if ok, _ := tk.take(100+2*takenMax-1, 1, later); ok {
		t.Fatal("the last settlement forgotten")
	}
}

// TestQueueRepeatedFirstDeliveryNotHandedOut: NATS Server before 2.10.14
// (nats-server#5305), when the pull request it picked a redelivered
// message for is gone, steps its consumer back and delivers the last new
// message again as a first delivery, while this broker holds it: that
// copy is not offered to another puller. (On a fixed server the consumer
// just delivers the redelivered message; the test then checks nothing
// more than that the held message comes to no one else.)
func TestQueueRepeatedFirstDeliveryNotHandedOut(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 1, nil)
	b, bp := nodes[0].b, nodes[0].bp
	const topic = "/jobs/repeat"
	// The queue's consumer, with no hold of this broker on it yet.
	h0 := &holder{offered: make(chan *broker.Delivery, 1)}
	leave0, err := b.Pull(topic, h0, broker.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leave0()
	for _, p := range []string{"other", "held"} {
		if err := b.Push(msg(topic, p), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := bp.js.Consumer(ctx, bp.queueStream, queueKey(topic))
	if err != nil {
		t.Fatal(err)
	}
	// Another party takes the first message...
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	other := <-batch.Messages()
	if other == nil || string(other.Data()) != "other" {
		t.Fatalf("the other party fetched %v", other)
	}
	// ...and this broker's puller the second, the last new one.
	h1 := &holder{offered: make(chan *broker.Delivery, 4)}
	leave1, err := b.Pull(topic, h1, broker.PullOptions{Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer leave1()
	held := h1.next(t)
	if string(held.Message.Payload) != "held" {
		t.Fatalf("the puller got %q", held.Message.Payload)
	}

	// A pull request whose requester goes away, on the consumer leader's
	// server so that its interest is gone there at once: a broker killed
	// with a fetch open.
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := c.URL(0)
	if info.Cluster != nil && len(info.Cluster.Leader) == 2 && info.Cluster.Leader[0] == 'n' {
		url = c.URL(int(info.Cluster.Leader[1]-'1') % natstest.Size)
	}
	gone, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	inbox := nats.NewInbox()
	sub, err := gone.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"batch":1,"expires":%d}`, (30 * time.Second).Nanoseconds())
	if err := gone.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+bp.queueStream+"."+queueKey(topic), inbox, []byte(req)); err != nil {
		t.Fatal(err)
	}
	gone.Flush()
	waitFor(t, "the pull request to wait at the consumer", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting > 0
	})
	sub.Unsubscribe()
	gone.Flush()
	// The other party gives its message back: the consumer picks it for
	// the request that is gone.
	if err := other.Nak(); err != nil {
		t.Fatal(err)
	}

	// Another puller of this broker asks for a message: a repeat of the
	// held one must not come to it. The barrier ends the check.
	if err := b.Push(msg(topic, "barrier"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	h2 := &holder{offered: make(chan *broker.Delivery, 4)}
	leave2, err := b.Pull(topic, h2, broker.PullOptions{Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer leave2()
	for {
		d := h2.next(t)
		switch string(d.Message.Payload) {
		case "held":
			t.Fatalf("the held message (id %d) was offered to another puller", held.ID())
		case "barrier":
			held.Done()
			d.Done()
			return
		}
		d.Done() // the other party's message, redelivered
	}
}
