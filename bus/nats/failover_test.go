package nats

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestLosingNATS: a broker cut off from NATS says so, refuses what it
// cannot store, reconnects by itself, and its feed goes on. (Losing one
// NATS server is no loss: the client moves to another, see
// TestNATSRestartUnderLoad; here every server goes.)
func TestLosingNATS(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/d", Durable: true}})
	lonely := nodes[1].b
	r := &recorder{}
	defer lonely.Subscribe("/d", r)()
	if err := lonely.Ready(); err != nil {
		t.Fatalf("ready: %v", err)
	}
	for i := range 3 {
		c.Stop(i)
	}
	waitFor(t, "the broker to notice", func() bool { return lonely.Ready() != nil })
	if err := lonely.Publish(msg("/d/x", "refused")); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish while cut off: %v", err)
	}
	if err := lonely.SendBus(msg("/d/x", "refused"), nil); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("bus while cut off: %v", err)
	}
	if err := lonely.Push(msg("/d/q", "refused"), broker.PushOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("push while cut off: %v", err)
	}
	for i := range 3 {
		c.StartAgain(i)
	}
	c.WaitJetStream()
	waitFor(t, "the brokers to reconnect", func() bool { return lonely.Ready() == nil && nodes[0].b.Ready() == nil })
	waitFor(t, "a publish to go through", func() bool { return nodes[0].b.Publish(msg("/d/x", "back")) == nil })
	got := r.waitN(t, 1)
	for _, m := range got {
		if string(m.Payload) != "back" {
			t.Fatalf("after the outage: %v", payloads(got))
		}
	}
}

// TestNATSRestartUnderLoad: a NATS server restarts while messages flow
// between brokers; every confirmed message reaches the subscriber on the
// other broker exactly once, in order; refused ones were not confirmed.
func TestNATSRestartUnderLoad(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/load", Durable: true}})
	r := &recorder{}
	defer nodes[1].b.Subscribe("/load", r)()
	stop := make(chan struct{})
	var mu sync.Mutex
	var confirmed []uint64
	refused := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			m := msg("/load/x", fmt.Sprint(k))
			err := nodes[0].b.Publish(m)
			mu.Lock()
			if err == nil {
				confirmed = append(confirmed, m.Seq)
			} else {
				refused++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	c.Stop(0)
	time.Sleep(500 * time.Millisecond)
	c.Restart(0)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d confirmed, %d refused during the restart", len(confirmed), refused)
	if len(confirmed) == 0 {
		t.Fatal("nothing confirmed")
	}
	want := make(map[uint64]bool, len(confirmed))
	for _, s := range confirmed {
		want[s] = true
	}
	waitFor(t, "every confirmed message", func() bool {
		n := 0
		for _, m := range r.got() {
			if want[m.Seq] {
				n++
			}
		}
		return n == len(confirmed)
	})
	got := r.got()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
}

// TestCloseWhileCutOff: a broker shuts down promptly while NATS is away.
func TestCloseWhileCutOff(t *testing.T) {
	c := cluster(t)
	bp, err := Connect(Options{URLs: c.URLs(), Name: "closing", Logger: testLogger(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Backplane: bp, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.Stop(i)
	}
	waitFor(t, "the broker to notice", func() bool { return b.Ready() != nil })
	done := make(chan error, 1)
	go func() { b.Close(); done <- bp.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close hangs while NATS is away")
	}
}
