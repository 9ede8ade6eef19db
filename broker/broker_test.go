package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// inbox is a Receiver and Puller that records what it gets. A puller
// inbox settles each delivery at once unless hold is set.
type inbox struct {
	mu   sync.Mutex
	msgs []*Message
	held []*Delivery
	hold bool
}

func (in *inbox) Deliver(m *Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, m)
}

func (in *inbox) Offer(d *Delivery) {
	in.mu.Lock()
	in.msgs = append(in.msgs, d.Message)
	hold := in.hold
	if hold {
		in.held = append(in.held, d)
	}
	in.mu.Unlock()
	if !hold {
		// Settle as the web layer does: after the hand-over, outside any lock
		// of the queue.
		go d.Done()
	}
}

func (in *inbox) Evict(string) {}

func (in *inbox) payloads() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, m := range in.msgs {
		out = append(out, string(m.Payload))
	}
	return out
}

func msg(topic, payload string) *Message {
	return &Message{Topic: Topic(topic), Payload: []byte(payload)}
}

func TestPublishReachesSubscribersAboveAndAtTopic(t *testing.T) {
	b := New(Options{})
	var parent, child, sibling, lookalike inbox
	b.Subscribe("/foo", &parent)
	b.Subscribe("/foo/bar", &child)
	b.Subscribe("/foo/baz", &sibling)
	b.Subscribe("/foobar", &lookalike)
	var other2 inbox
	b.Subscribe("/foo/bar", &other2)

	b.Publish(msg("/foo/bar", "child"))
	b.Publish(msg("/foo", "parent"))
	b.Publish(msg("/foo/bar/baz", "grandchild"))
	b.Publish(msg("/fo", "prefix"))

	check := func(name string, in *inbox, want ...string) {
		t.Helper()
		if got := in.payloads(); !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", name, got, want)
		}
	}
	check("/sub/foo", &parent, "child", "parent", "grandchild")
	check("/sub/foo/bar", &child, "child", "grandchild")
	check("second /sub/foo/bar", &other2, "child", "grandchild")
	check("/sub/foo/baz", &sibling)
	check("/sub/foobar", &lookalike)
}

func TestSequenceNumbersAreMonotonicAcrossPatterns(t *testing.T) {
	b := New(Options{})
	m1, m2, m3 := msg("/a", "1"), msg("/b", "2"), msg("/c", "3")
	b.Publish(m1)
	b.SendBus(m2, nil)
	if err := b.Push(m3, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if m1.Seq != 1 || m2.Seq != 2 || m3.Seq != 3 {
		t.Fatalf("seqs = %d %d %d, want 1 2 3", m1.Seq, m2.Seq, m3.Seq)
	}
	if m1.Time.IsZero() {
		t.Fatal("message not stamped with a time")
	}
}

func TestUnsubscribeStopsDeliveryAndPrunes(t *testing.T) {
	b := New(Options{})
	var in inbox
	unsub := b.Subscribe("/a/b/c", &in)
	unsub()
	unsub() // idempotent
	b.Publish(msg("/a/b/c", "x"))
	if got := in.payloads(); len(got) != 0 {
		t.Fatalf("got %v after unsubscribing", got)
	}
	if subs, nodes := b.Subscriptions(); subs != 0 || nodes != 0 {
		t.Fatalf("subscriptions, nodes = %d, %d; want 0, 0", subs, nodes)
	}
}

func TestBusEchoAndExactTopic(t *testing.T) {
	b := New(Options{})
	var a, e, stranger, child inbox
	b.JoinBus("/room", &a, false)
	b.JoinBus("/room", &e, true)
	b.JoinBus("/other", &stranger, false)
	b.JoinBus("/room/sub", &child, false)

	b.SendBus(msg("/room", "from a"), &a)
	b.SendBus(msg("/room", "from e"), &e)
	b.SendBus(msg("/room", "post"), nil)

	if got := a.payloads(); !slices.Equal(got, []string{"from e", "post"}) {
		t.Errorf("peer without echo got %v", got)
	}
	if got := e.payloads(); !slices.Equal(got, []string{"from a", "from e", "post"}) {
		t.Errorf("peer with echo got %v", got)
	}
	if got := stranger.payloads(); len(got) != 0 {
		t.Errorf("peer on another topic got %v", got)
	}
	if got := child.payloads(); len(got) != 0 {
		t.Errorf("peer on a child topic got %v (bus rooms are not hierarchical)", got)
	}
}

func TestBusLeavePrunes(t *testing.T) {
	b := New(Options{})
	var a inbox
	leave := b.JoinBus("/room/x", &a, false)
	leave()
	if peers, nodes := b.BusPeers(); peers != 0 || nodes != 0 {
		t.Fatalf("peers, nodes = %d, %d", peers, nodes)
	}
}

func TestNamespacesAreSeparate(t *testing.T) {
	b := New(Options{})
	var sub, peer, puller inbox
	b.Subscribe("/foo", &sub)
	b.JoinBus("/foo", &peer, true)
	puller.hold = true
	mustPull(t, b, "/foo", &puller, PullOptions{})
	b.Publish(msg("/foo", "pub"))
	if len(peer.payloads()) != 0 || len(puller.payloads()) != 0 {
		t.Fatal("a publish crossed into the bus or queue namespace")
	}
	b.SendBus(msg("/foo", "bus"), nil)
	if !slices.Equal(sub.payloads(), []string{"pub"}) || len(puller.payloads()) != 0 {
		t.Fatal("a bus frame crossed into another namespace")
	}
	b.Push(msg("/foo", "push"), PushOptions{})
	if !slices.Equal(sub.payloads(), []string{"pub"}) || !slices.Equal(peer.payloads(), []string{"bus"}) {
		t.Fatal("a push crossed into another namespace")
	}
}

// holdingPullers returns n pullers that hold what they get, so the test
// controls settlement.
func holdingPullers(n int) []*inbox {
	ps := make([]*inbox, n)
	for i := range ps {
		ps[i] = &inbox{hold: true}
	}
	return ps
}

func pushAll(t *testing.T, b *Broker, topic string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := b.Push(msg(topic, fmt.Sprintf("m%d", i)), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPushRoundRobinInJoinOrder(t *testing.T) {
	b := New(Options{})
	p := holdingPullers(3)
	for _, in := range p {
		mustPull(t, b, "/jobs", in, PullOptions{})
	}
	pushAll(t, b, "/jobs", 1, 7)
	want := [][]string{{"m1", "m4", "m7"}, {"m2", "m5"}, {"m3", "m6"}}
	for i, in := range p {
		if got := in.payloads(); !slices.Equal(got, want[i]) {
			t.Errorf("puller %c got %v, want %v", 'A'+i, got, want[i])
		}
	}
}

func TestRotationSurvivesLeavesAndJoins(t *testing.T) {
	b := New(Options{})
	p := holdingPullers(4)
	leaveA := mustPull(t, b, "/jobs", p[0], PullOptions{})
	leaveB := mustPull(t, b, "/jobs", p[1], PullOptions{})
	leaveC := mustPull(t, b, "/jobs", p[2], PullOptions{})
	pushAll(t, b, "/jobs", 1, 2) // A=m1, B=m2; C's turn next
	leaveB()                     // B's held m2 goes back to the front, to C
	pushAll(t, b, "/jobs", 3, 4) // m3 to A, m4 to C
	mustPull(t, b, "/jobs", p[3], PullOptions{})
	pushAll(t, b, "/jobs", 5, 7) // turn after C: D, then A, C
	_ = leaveA
	_ = leaveC
	want := map[int][]string{0: {"m1", "m3", "m6"}, 1: {"m2"}, 2: {"m2", "m4", "m7"}, 3: {"m5"}}
	for i, w := range want {
		if got := p[i].payloads(); !slices.Equal(got, w) {
			t.Errorf("puller %c got %v, want %v", 'A'+i, got, w)
		}
	}
}

func TestPushesWaitForAPuller(t *testing.T) {
	b := New(Options{})
	pushAll(t, b, "/jobs", 1, 3)
	var in inbox
	in.hold = true
	mustPull(t, b, "/jobs", &in, PullOptions{})
	if got := in.payloads(); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("late puller got %v", got)
	}
}

func TestAllPullersLeaveThenANewOneGetsWhatTheyHeld(t *testing.T) {
	b := New(Options{})
	p := holdingPullers(3)
	var leaves []func()
	for _, in := range p {
		leaves = append(leaves, mustPull(t, b, "/jobs", in, PullOptions{}))
	}
	pushAll(t, b, "/jobs", 1, 3)
	for _, leave := range leaves {
		leave()
	}
	pushAll(t, b, "/jobs", 4, 4)
	var late inbox
	late.hold = true
	mustPull(t, b, "/jobs", &late, PullOptions{})
	if got := late.payloads(); !slices.Equal(got, []string{"m3", "m2", "m1", "m4"}) &&
		!slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
		// Each leaving puller puts its held message at the front, so the
		// order among m1..m3 depends on who left last; nothing is lost.
		t.Fatalf("new puller got %v", got)
	}
	if got := late.payloads(); len(got) != 4 {
		t.Fatalf("new puller got %v, want all four", got)
	}
}

func TestPrefetchLimitsWhatAPullerHolds(t *testing.T) {
	b := New(Options{})
	p := holdingPullers(2)
	mustPull(t, b, "/jobs", p[0], PullOptions{Prefetch: 1})
	mustPull(t, b, "/jobs", p[1], PullOptions{Prefetch: 1})
	pushAll(t, b, "/jobs", 1, 3)
	if got := p[0].payloads(); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("A got %v", got)
	}
	st := b.Queues()
	if len(st) != 1 || st[0].Waiting != 1 || st[0].InFlight != 2 || st[0].Pullers != 2 {
		t.Fatalf("stats = %+v", st)
	}
	p[1].held[0].Done()
	if got := p[1].payloads(); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Fatalf("B got %v after settling m2", got)
	}
}

func TestQueueLimit(t *testing.T) {
	b := New(Options{QueueLimit: 2})
	pushAll(t, b, "/jobs", 1, 2)
	if err := b.Push(msg("/jobs", "m3"), PushOptions{}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third push err = %v, want ErrQueueFull", err)
	}
	if err := b.Push(msg("/other", "m1"), PushOptions{}); err != nil {
		t.Fatalf("another queue refused: %v", err)
	}
}

func TestConcurrentPushPullLosesNothing(t *testing.T) {
	b := New(Options{QueueLimit: 1 << 20})
	const pushers, each = 4, 500
	var pullers [3]inbox
	var leaves []func()
	for i := range pullers {
		leaves = append(leaves, mustPull(t, b, "/jobs", &pullers[i], PullOptions{Prefetch: 2}))
	}
	var wg sync.WaitGroup
	for w := range pushers {
		wg.Go(func() {
			for i := range each {
				if err := b.Push(msg("/jobs", fmt.Sprintf("%d-%d", w, i)), PushOptions{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// One puller leaves midway; what it held goes to the others.
	leaves[0]()
	waitFor(t, func() bool {
		st := b.Queues()
		return len(st) == 1 && st[0].Waiting == 0 && st[0].InFlight == 0
	})
	seen := map[string]int{}
	for i := range pullers {
		for _, p := range pullers[i].payloads() {
			seen[p]++
		}
	}
	if len(seen) != pushers*each {
		t.Fatalf("pullers saw %d distinct messages, want %d", len(seen), pushers*each)
	}
}

func mustPull(t *testing.T, b *Broker, topic Topic, p Puller, opts PullOptions) func() {
	t.Helper()
	leave, err := b.Pull(topic, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return leave
}
