package nats

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// puller takes deliveries on a goroutine of its own, as a connection's
// writer does: raw pullers settle with Done, acking ones with handle.
type puller struct {
	t       *testing.T
	b       *broker.Broker
	topic   broker.Topic
	ack     bool
	handle  func(p *puller, d *broker.Delivery) // ack mode; nil acks
	ch      chan *broker.Delivery
	evicted chan string
	leave   func()
	done    chan struct{}
}

func startPuller(t *testing.T, b *broker.Broker, topic string, opts broker.PullOptions, handle func(*puller, *broker.Delivery)) (*puller, error) {
	p := &puller{t: t, b: b, topic: broker.Topic(topic), ack: opts.Ack, handle: handle,
		ch: make(chan *broker.Delivery, 1024), evicted: make(chan string, 1), done: make(chan struct{})}
	leave, err := b.Pull(p.topic, p, opts)
	if err != nil {
		return nil, err
	}
	p.leave = leave
	go p.run()
	t.Cleanup(p.stop)
	return p, nil
}

func (p *puller) Offer(d *broker.Delivery) { p.ch <- d }
func (p *puller) Evict(reason string) {
	select {
	case p.evicted <- reason:
	default:
	}
}

func (p *puller) run() {
	defer close(p.done)
	for d := range p.ch {
		if d == nil {
			return
		}
		switch {
		case p.handle != nil:
			p.handle(p, d)
		case p.ack:
			if err := p.b.Ack(p.topic, p, d.ID()); err != nil {
				p.t.Errorf("ack %d: %v", d.ID(), err)
			}
		}
		if !p.ack {
			d.Done() // written: a raw puller's delivery is settled
		}
	}
}

func (p *puller) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.leave()
	p.ch <- nil
	<-p.done
}

// counter counts each payload seen.
type counter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *counter) add(s string) {
	c.mu.Lock()
	c.seen[s]++
	c.mu.Unlock()
}

func (c *counter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// TestQueueExactlyOnceAcrossBrokers: every pushed message goes to exactly
// one puller among several on each of three brokers, raw and acking.
func TestQueueExactlyOnceAcrossBrokers(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 3, nil)
	for _, ack := range []bool{false, true} {
		topic := fmt.Sprintf("/work/ack-%v", ack)
		cnt := &counter{seen: map[string]int{}}
		perNode := make([]int, len(nodes))
		var mu sync.Mutex
		for i, n := range nodes {
			for range 2 {
				handle := func(p *puller, d *broker.Delivery) {
					cnt.add(string(d.Message.Payload))
					mu.Lock()
					perNode[i]++
					mu.Unlock()
					if ack {
						p.b.Ack(p.topic, p, d.ID())
					}
				}
				if _, err := startPuller(t, n.b, topic, broker.PullOptions{Ack: ack, Prefetch: 8}, handle); err != nil {
					t.Fatal(err)
				}
			}
		}
		const total = 2000
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() {
				for k := i; k < total; k += len(nodes) {
					if err := n.b.Push(msg(topic, strconv.Itoa(k)), broker.PushOptions{}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		waitFor(t, "every message", func() bool { return cnt.len() == total })
		time.Sleep(200 * time.Millisecond)
		cnt.mu.Lock()
		for k, n := range cnt.seen {
			if n != 1 {
				t.Errorf("ack=%v: message %s delivered %d times", ack, k, n)
			}
		}
		cnt.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		for i, n := range perNode {
			if n == 0 {
				t.Errorf("ack=%v: broker %d delivered nothing", ack, i)
			}
		}
		t.Logf("ack=%v: per broker %v", ack, perNode)
	}
}

// TestQueueRetriesAndDeadLetters: a nack on one broker is redelivered,
// possibly on another; after max attempts the message is a dead letter
// that every broker lists, pops, requeues and purges.
func TestQueueRetriesAndDeadLetters(t *testing.T) {
	c := cluster(t)
	policies := []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 3, AckTimeout: 500 * time.Millisecond}}}
	nodes := startNodes(t, c, 2, policies)
	attempts := make(chan string, 100)
	nacker := func(p *puller, d *broker.Delivery) {
		attempts <- fmt.Sprintf("%s#%d", d.Message.Payload, d.Attempt)
		if err := p.b.Nack(p.topic, p, d.ID(), 0, "boom"); err != nil {
			t.Errorf("nack: %v", err)
		}
	}
	p0, err := startPuller(t, nodes[0].b, "/jobs/x", broker.PullOptions{Ack: true}, nacker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startPuller(t, nodes[1].b, "/jobs/x", broker.PullOptions{Ack: true}, nacker); err != nil {
		t.Fatal(err)
	}
	m := msg("/jobs/x", `{"n":1}`)
	if err := nodes[0].b.Push(m, broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		select {
		case a := <-attempts:
			got = append(got, a)
		case <-time.After(10 * time.Second):
			t.Fatalf("attempts so far %v", got)
		}
	}
	if fmt.Sprint(got) != `[{"n":1}#1 {"n":1}#2 {"n":1}#3]` {
		t.Fatalf("attempts %v", got)
	}
	var dead []broker.DeadLetter
	waitFor(t, "a dead letter", func() bool {
		dead, err = nodes[1].b.DeadLetters("/jobs/x")
		return err == nil && len(dead) == 1
	})
	if dl := dead[0]; dl.ID != m.Seq || dl.Attempts != 3 || dl.LastError != "boom" || string(dl.Message.Payload) != `{"n":1}` {
		t.Fatalf("dead letter %+v", dl)
	}
	p0.stop()

	// An ack timeout ends an attempt too: a silent puller lets the
	// message die after its attempts.
	silent := func(p *puller, d *broker.Delivery) {}
	if _, err := startPuller(t, nodes[0].b, "/jobs/y", broker.PullOptions{Ack: true}, silent); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].b.Push(msg("/jobs/y", "quiet"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a dead letter after ack timeouts", func() bool {
		dead, err = nodes[1].b.DeadLetters("/jobs/y")
		return err == nil && len(dead) == 1
	})
	if dead[0].Attempts != 3 || dead[0].LastError == "" {
		t.Fatalf("dead letter %+v", dead[0])
	}

	// Requeue from the other broker: a fresh set of attempts.
	if n, err := nodes[0].b.Requeue("/jobs/x", 0); err != nil || n != 1 {
		t.Fatalf("requeue: %d, %v", n, err)
	}
	select {
	case a := <-attempts:
		if a != `{"n":1}#1` {
			t.Fatalf("after requeue: %s", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("requeued message not delivered")
	}
	waitFor(t, "the requeued message to die again", func() bool {
		dead, err = nodes[0].b.DeadLetters("/jobs/x")
		return err == nil && len(dead) == 1
	})
	if dead[0].ID != m.Seq {
		t.Fatalf("requeued and dead again with id %d, was %d", dead[0].ID, m.Seq)
	}
	dl, err := nodes[1].b.PopDead("/jobs/x")
	if err != nil || string(dl.Message.Payload) != `{"n":1}` {
		t.Fatalf("pop: %+v, %v", dl, err)
	}
	if _, err := nodes[0].b.PopDead("/jobs/x"); !errors.Is(err, broker.ErrNoDeadLetters) {
		t.Fatalf("pop of none: %v", err)
	}
	if n, err := nodes[0].b.PurgeDead("/jobs/y"); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if _, err := nodes[0].b.DeadLetters("/nothing"); !errors.Is(err, broker.ErrNoQueue) {
		t.Fatalf("dead letters of no queue: %v", err)
	}
}

// TestQueueBrokerLeaves: what a broker's pullers held comes back to the
// pullers of another broker when that broker goes away.
func TestQueueBrokerLeaves(t *testing.T) {
	c := cluster(t)
	policies := []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{AckTimeout: time.Second}}}
	nodes := startNodes(t, c, 2, policies)
	held := make(chan uint64, 10)
	if _, err := startPuller(t, nodes[0].b, "/jobs/z", broker.PullOptions{Ack: true},
		func(p *puller, d *broker.Delivery) { held <- d.ID() }); err != nil {
		t.Fatal(err)
	}
	m := msg("/jobs/z", "held")
	if err := nodes[1].b.Push(m, broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	<-held
	// The broker dies without a word: its NATS connection goes.
	nodes[0].bp.nc.Close()
	got := make(chan *broker.Delivery, 1)
	if _, err := startPuller(t, nodes[1].b, "/jobs/z", broker.PullOptions{Ack: true},
		func(p *puller, d *broker.Delivery) { got <- d; p.b.Ack(p.topic, p, d.ID()) }); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.ID() != m.Seq || d.Attempt != 2 {
			t.Fatalf("redelivered id %d attempt %d", d.ID(), d.Attempt)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not redelivered")
	}
}

// TestQueueExclusiveAcrossBrokers: an exclusive puller keeps the queue
// to itself on every broker; a takeover on another broker evicts it.
func TestQueueExclusiveAcrossBrokers(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	first, err := startPuller(t, nodes[0].b, "/solo", broker.PullOptions{Exclusive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startPuller(t, nodes[1].b, "/solo", broker.PullOptions{}, nil); !errors.Is(err, broker.ErrExclusive) {
		t.Fatalf("second puller elsewhere: %v", err)
	}
	if _, err := startPuller(t, nodes[1].b, "/solo", broker.PullOptions{Exclusive: true}, nil); !errors.Is(err, broker.ErrExclusive) {
		t.Fatalf("second exclusive elsewhere: %v", err)
	}
	if _, err := startPuller(t, nodes[1].b, "/solo", broker.PullOptions{Takeover: true}, nil); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	select {
	case reason := <-first.evicted:
		if reason != "taken over" {
			t.Fatalf("evicted with %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first puller was not evicted")
	}
	// A shared queue refuses an exclusive puller while another broker pulls.
	if _, err := startPuller(t, nodes[0].b, "/shared", broker.PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := startPuller(t, nodes[1].b, "/shared", broker.PullOptions{Exclusive: true}, nil); !errors.Is(err, broker.ErrQueueBusy) {
		t.Fatalf("exclusive on a shared queue: %v", err)
	}
}

// TestQueueLifetime: must_exist refuses a queue nobody made; a queue
// unused for its TTL is deleted with its messages, once, cluster-wide.
func TestQueueLifetime(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	if err := nodes[0].b.Push(msg("/ghost", "x"), broker.PushOptions{MustExist: true}); !errors.Is(err, broker.ErrNoQueue) {
		t.Fatalf("push must_exist: %v", err)
	}
	if _, err := startPuller(t, nodes[1].b, "/ghost", broker.PullOptions{MustExist: true}, nil); !errors.Is(err, broker.ErrNoQueue) {
		t.Fatalf("pull must_exist: %v", err)
	}
	if err := nodes[0].b.Push(msg("/brief", "x"), broker.PushOptions{TTL: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if !nodes[1].b.QueueExists("/brief") {
		t.Fatal("the queue does not exist on the other broker")
	}
	stats := nodes[1].b.Queues()
	if len(stats) != 1 || stats[0].Topic != "/brief" || stats[0].Waiting != 1 {
		t.Fatalf("stats %+v", stats)
	}
	waitFor(t, "the queue to expire", func() bool { return !nodes[1].b.QueueExists("/brief") })
	if err := nodes[0].b.Push(msg("/brief", "y"), broker.PushOptions{MustExist: true}); !errors.Is(err, broker.ErrNoQueue) {
		t.Fatalf("push after expiry: %v", err)
	}
	// Its message went with it: a new queue of that name starts empty.
	if _, err := startPuller(t, nodes[1].b, "/brief", broker.PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].b.Push(msg("/brief", "fresh"), broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fresh message", func() bool {
		s := nodes[0].b.Queues()
		return len(s) == 1 && s[0].Waiting == 0 && s[0].InFlight == 0
	})
}

// holder is a raw puller that never writes what it is offered, as a
// connection that goes before its writer could.
type holder struct{ offered chan *broker.Delivery }

func (h *holder) Offer(d *broker.Delivery) { h.offered <- d }
func (h *holder) Evict(string)             {}

// TestQueueGiveBacksAreNoAttempts: a message that raw pullers took and
// gave back unwritten, again and again, has spent no attempt: it does not
// die after max_attempts, and an acking puller then sees attempt 1.
func TestQueueGiveBacksAreNoAttempts(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 2}}})
	m := msg("/jobs/g", "kept")
	if err := nodes[0].b.Push(m, broker.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		h := &holder{offered: make(chan *broker.Delivery, 1)}
		leave, err := nodes[i%2].b.Pull("/jobs/g", h, broker.PullOptions{Prefetch: 1})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-h.offered:
			if d.ID() != m.Seq {
				t.Fatalf("offered %d", d.ID())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: not offered", i)
		}
		leave() // gone before writing it
	}
	got := make(chan *broker.Delivery, 1)
	if _, err := startPuller(t, nodes[1].b, "/jobs/g", broker.PullOptions{Ack: true},
		func(p *puller, d *broker.Delivery) { got <- d; p.b.Ack(p.topic, p, d.ID()) }); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.Attempt != 1 {
			t.Fatalf("attempt %d after four give-backs", d.Attempt)
		}
	case <-time.After(10 * time.Second):
		dead, _ := nodes[0].b.DeadLetters("/jobs/g")
		t.Fatalf("not delivered; dead letters: %d", len(dead))
	}
}

// TestTouchedForgotten: every broker forgets the one-off queues it used
// once they expired, whichever broker expired them.
func TestTouchedForgotten(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	const queues = 40
	for i := range queues {
		topic := fmt.Sprintf("/once/%d", i)
		for _, n := range nodes {
			if err := n.b.Push(msg(topic, "x"), broker.PushOptions{TTL: 300 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "every queue to expire", func() bool {
		for i := range queues {
			if nodes[0].b.QueueExists(broker.Topic(fmt.Sprintf("/once/%d", i))) {
				return false
			}
		}
		return true
	})
	defer func() {
		if t.Failed() {
			for i, n := range nodes {
				n.bp.mu.Lock()
				t.Logf("broker %d holds %d: %v (now %v)", i, len(n.bp.touched), n.bp.touched, time.Now())
				n.bp.mu.Unlock()
			}
		}
	}()
	waitFor(t, "every broker to forget the queues", func() bool {
		for _, n := range nodes {
			n.bp.mu.Lock()
			held := len(n.bp.touched)
			n.bp.mu.Unlock()
			if held > 0 {
				return false
			}
		}
		return true
	})
}

// TestShortTTLWakesTheSweeper: a queue with a short TTL expires about
// then, even when the sweeper, having seen no queue, waits its longest.
func TestShortTTLWakesTheSweeper(t *testing.T) {
	c := cluster(t)
	n := startNodes(t, c, 1, nil)[0]
	waitFor(t, "the sweeper to wait its longest", func() bool { return n.bp.sweepWait.Load() == int64(maxSweepEvery) })
	if err := n.b.Push(msg("/brief", "x"), broker.PushOptions{TTL: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(maxSweepEvery / 2)
	for n.b.QueueExists("/brief") {
		if time.Now().After(deadline) {
			t.Fatalf("a queue with a TTL of 300ms still there after %s", maxSweepEvery/2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
