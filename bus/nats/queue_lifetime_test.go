package nats

import (
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestQueueLivesItsTTLAfterItsPullersLeft: a queue's TTL runs from when
// its last puller left, though the pullers stayed longer than the TTL.
// (The cluster recorded a use only when they joined and at each refresh
// of their registration, every 5 s: the queue expired at once.)
func TestQueueLivesItsTTLAfterItsPullersLeft(t *testing.T) {
	c := cluster(t)
	const ttl = 2 * time.Second
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{TTL: ttl}}})
	h := &holder{offered: make(chan *broker.Delivery, 4)}
	leave, err := nodes[0].b.Pull("/jobs/stay", h, broker.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + ttl/2) // longer than the TTL, shorter than a refresh (5 s)
	leave()
	left := time.Now()
	for time.Since(left) < ttl*9/10 {
		if !nodes[1].b.QueueExists("/jobs/stay") {
			t.Fatalf("the queue expired %s after its last puller left; its TTL is %s", time.Since(left).Round(time.Millisecond), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "the queue to expire", func() bool { return !nodes[1].b.QueueExists("/jobs/stay") })
}
