package nats

import (
	"fmt"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// TestConnectOverSlowLink: on a link where every answer takes a while,
// each request to NATS has its full timeout: setting up the streams and
// buckets, a dozen requests, is not bound by one. (A dozen round trips of
// 400ms pass one 4s deadline; each request keeps most of its own even on
// a loaded machine.)
func TestConnectOverSlowLink(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	proxy.SetDelay(400 * time.Millisecond)
	bp, err := Connect(Options{URLs: []string{proxy.URL()}, Name: clusterName(), Logger: testLogger(), Timeout: 4 * time.Second})
	if err != nil {
		t.Fatalf("connect over a slow link: %v", err)
	}
	bp.Close()
}

// TestQueueStatsOverSlowLink: the queue list is whole on a slow link:
// each request has its own deadline, the listing of the queues too.
func TestQueueStatsOverSlowLink(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	name := clusterName()
	fast := startNodeAt(t, name, c.URLs()[1:], nil)
	slow := startNodeAt(t, name, []string{proxy.URL()}, nil)
	const queues = 6
	for i := range queues {
		if err := fast.b.Push(msg(fmt.Sprintf("/stats/%d", i), "x"), broker.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	proxy.SetDelay(100 * time.Millisecond)
	if got := slow.b.Queues(); len(got) != queues {
		t.Fatalf("listed %d queues of %d over a slow link", len(got), queues)
	}
}
