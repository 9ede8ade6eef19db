package nats

import (
	"fmt"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

// The brokers sharing a stream share its epoch, and their messages carry
// it; a new stream (deleted and created again, its sequence numbers start
// afresh) has a new one, and a position from the old one is a reset.
func TestEpochIsTheStreamsCreation(t *testing.T) {
	c := cluster(t)
	policies := []broker.Policy{{Bus: "/logs", History: broker.History{Messages: 100}}}
	nodes := startNodes(t, c, 2, policies)
	epoch := nodes[0].b.Epoch()
	if epoch == "" || nodes[1].b.Epoch() != epoch {
		t.Fatalf("epochs %q and %q: want one, the same", epoch, nodes[1].b.Epoch())
	}
	r := &recorder{}
	defer nodes[1].b.Subscribe("/logs", r)()
	for k := range 5 {
		if err := nodes[0].b.Publish(msg("/logs/a", fmt.Sprint("old ", k))); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.waitN(t, 5); got[4].Epoch != epoch {
		t.Fatalf("a message's epoch %q, want %q", got[4].Epoch, epoch)
	}
	// Delete the stream; the next broker to start creates it anew.
	name, stream := nodes[0].bp.opts.Name, nodes[0].bp.stream
	for _, n := range nodes[1:] {
		n.b.Close()
		n.bp.Close()
	}
	ctx, cancel := nodes[0].bp.reqCtx()
	defer cancel()
	if err := nodes[0].bp.js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	nodes[0].b.Close()
	nodes[0].bp.Close()
	fresh := startNode(t, c, name, 0, policies)
	if fresh.b.Epoch() == "" || fresh.b.Epoch() == epoch {
		t.Fatalf("the new stream's epoch %q, the old one's %q", fresh.b.Epoch(), epoch)
	}
	for k := range 2 {
		if err := fresh.b.Publish(msg("/logs/a", fmt.Sprint("new ", k))); err != nil {
			t.Fatal(err)
		}
	}
	// A feed of the whole stream (before NATS 2.10) must have brought
	// them; an interest feed takes nothing nobody wants, and the
	// subscription below reads the stream up to its end as it attaches.
	if fresh.bp.oneFilter.Load() {
		waitFor(t, "the feed", func() bool { return fresh.b.LastSeq() == 2 })
	}
	backlog, gap, unsub := fresh.b.SubscribeFrom("/logs", &recorder{}, broker.Position{Seq: 1, Epoch: epoch})
	defer unsub()
	if got := fmt.Sprint(payloads(backlog)); got != "[new 0 new 1]" || gap == nil || !gap.Reset || gap.Epoch != fresh.b.Epoch() {
		t.Fatalf("from the old stream: backlog %s gap %+v, want a reset and both new messages", got, gap)
	}
}
