package nats

import (
	"errors"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestExclusiveFreedOnClose: a broker that shuts down lets go of its
// exclusive queue at once, not when its lease runs out.
func TestExclusiveFreedOnClose(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	if _, err := startPuller(t, nodes[0].b, "/solo", broker.PullOptions{Exclusive: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := startPuller(t, nodes[1].b, "/solo", broker.PullOptions{Exclusive: true}, nil); !errors.Is(err, broker.ErrExclusive) {
		t.Fatalf("second exclusive puller: %v", err)
	}
	nodes[0].b.Close()
	if err := nodes[0].bp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := startPuller(t, nodes[1].b, "/solo", broker.PullOptions{Exclusive: true}, nil); err != nil {
		t.Fatalf("exclusive puller after the other broker shut down: %v", err)
	}
}

// idleFeed takes nothing: what it is offered goes back.
type idleFeed struct{}

func (idleFeed) Offer(_ *broker.Message, _ int, s broker.Settler) { s.Return() }
func (idleFeed) Evict(string)                                     {}

// TestPullerHandover: when a broker's hold on a queue closes and a new
// hold on it registers before the old one's fetcher ends, that fetcher,
// ending, leaves the new hold's registration alone.
func TestPullerHandover(t *testing.T) {
	c := cluster(t)
	bp := startNodes(t, c, 1, nil)[0].bp
	qp := broker.QueuePolicy{TTL: time.Hour, AckTimeout: time.Second}
	old, err := bp.OpenQueue("/handover", qp, idleFeed{})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Join(broker.PullOptions{}, 1); err != nil {
		t.Fatal(err)
	}
	old.Want(1) // its fetcher waits on a fetch
	renewed, err := bp.OpenQueue("/handover", qp, idleFeed{})
	if err != nil {
		t.Fatal(err)
	}
	defer renewed.Close()
	if err := renewed.Join(broker.PullOptions{}, 1); err != nil {
		t.Fatal(err)
	}
	old.Close()
	time.Sleep(2 * fetchWait) // the old fetcher has ended
	ctx, cancel := bp.reqCtx()
	defer cancel()
	if _, err := bp.pullers.Get(ctx, queueKey("/handover")+"."+bp.node); err != nil {
		t.Fatalf("the new hold's registration: %v", err)
	}
}
