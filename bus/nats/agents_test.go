package nats

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// agentNode starts a broker of cluster name with a short heartbeat.
func agentNode(t testing.TB, name string, urls []string) *node {
	t.Helper()
	return agentNodeBeat(t, name, urls, 100*time.Millisecond)
}

func agentNodeBeat(t testing.TB, name string, urls []string, beat time.Duration) *node {
	t.Helper()
	bp, err := Connect(Options{URLs: urls, Name: name, Logger: testLogger(), Timeout: 3 * time.Second, Heartbeat: beat})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Backplane: bp, Logger: testLogger()})
	if err != nil {
		bp.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); bp.Close() })
	return &node{b: b, bp: bp}
}

// agent is a responder that keeps the ids of the requests it got.
type agent struct {
	mu  sync.Mutex
	ids []string
}

func (a *agent) Deliver(*broker.Message) {}

func (a *agent) DeliverRequest(_ *broker.Message, id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, id)
	return true
}

func (a *agent) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

type presenceLog struct {
	mu     sync.Mutex
	events []broker.PresenceEvent
}

func (l *presenceLog) PresenceEvent(e broker.PresenceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *presenceLog) count(join bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Join == join {
			n++
		}
	}
	return n
}

// joinAgent subscribes an agent on n and announces it, as a WebSocket
// subscriber does.
func joinAgent(n *node, topic broker.Topic, conn uint64) (*agent, func()) {
	a := &agent{}
	unsub := n.b.Subscribe(topic, a)
	leave := n.b.Join(broker.Presence{Topic: topic, User: string(topic), Since: time.Now(), Conn: conn})
	return a, func() { unsub(); leave() }
}

func TestRequestAcrossBrokers(t *testing.T) {
	c := cluster(t)
	name := clusterName()
	urls := c.URLs()
	a, b := agentNode(t, name, urls), agentNode(t, name, append(urls[1:], urls[0]))
	ag, leave := joinAgent(a, "/livesys/42", 1)
	defer leave()
	// b learns of a's agent: it is alive on the cluster.
	waitFor(t, "presence on the other broker", func() bool { return len(b.b.Present("/livesys")) == 1 })
	if p := b.b.Present("/livesys")[0]; p.Node != a.bp.Node() || p.Topic != "/livesys/42" || p.Conn != 1 {
		t.Fatalf("presence %+v", p)
	}

	req, err := b.b.Request(&broker.Message{Topic: "/livesys", Payload: []byte(`"uptime?"`)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	if req.Responders() != 1 {
		t.Fatalf("%d responders", req.Responders())
	}
	waitFor(t, "the request on the agent's broker", func() bool { return len(ag.got()) == 1 })
	if err := a.b.Reply(ag.got()[0], broker.Answer{User: "42", Topic: "/livesys/42", Payload: []byte(`{"up":5}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := req.Wait(context.Background(), false)
	if err != nil || len(got) != 1 || string(got[0].Payload) != `{"up":5}` || got[0].User != "42" {
		t.Fatalf("%+v %v", got, err)
	}

	// Nobody under another topic, on any broker: no responders, at once.
	start := time.Now()
	if _, err := b.b.Request(&broker.Message{Topic: "/other", Payload: []byte("x")}, 30*time.Second); !errors.Is(err, broker.ErrNoResponders) {
		t.Fatalf("no responders: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("no responders took %v", took)
	}
}

func TestPresenceAcrossBrokers(t *testing.T) {
	c := cluster(t)
	name := clusterName()
	urls := c.URLs()
	a, b := agentNode(t, name, urls), agentNode(t, name, append(urls[1:], urls[0]))
	var watch presenceLog
	defer b.b.WatchPresence("/livesys", &watch)()
	// Wait until the brokers know each other, then 20 agents come and go.
	_, first := joinAgent(a, "/livesys/0", 100)
	waitFor(t, "first agent", func() bool { return watch.count(true) == 1 })
	var leaves []func()
	for i := range 20 {
		_, leave := joinAgent(a, broker.Topic("/livesys/"+string(rune('a'+i))), uint64(i+1))
		leaves = append(leaves, leave)
	}
	waitFor(t, "21 joins", func() bool { return watch.count(true) == 21 && len(b.b.Present("/livesys")) == 21 })
	for _, leave := range leaves {
		leave()
	}
	waitFor(t, "20 leaves", func() bool { return watch.count(false) == 20 && len(b.b.Present("/livesys")) == 1 })
	first()
}

// A broker that dies takes its subscriptions with it: within a few
// heartbeats, its peers report them as left.
func TestPresenceOfADeadBroker(t *testing.T) {
	c := cluster(t)
	name := clusterName()
	urls := c.URLs()
	a, b := agentNode(t, name, urls), agentNode(t, name, append(urls[1:], urls[0]))
	var watch presenceLog
	defer b.b.WatchPresence("/livesys", &watch)()
	for i := range 5 {
		joinAgent(a, broker.Topic("/livesys/"+string(rune('a'+i))), uint64(i+1))
	}
	waitFor(t, "5 joins", func() bool { return len(b.b.Present("/livesys")) == 5 })
	// Cut a off NATS without a goodbye, as a kill -9 does.
	a.bp.nc.Close()
	start := time.Now()
	waitFor(t, "5 leaves", func() bool { return watch.count(false) == 5 && len(b.b.Present("/livesys")) == 0 })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v to see the dead broker's agents leave", took)
	}
}

// Events lost while a broker was cut off from NATS for less than three
// heartbeats are made up for: its next heartbeat's count differs from what
// its peers know, and they ask for all its subscriptions.
func TestPresenceRepairedAfterACut(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	name := clusterName()
	a := agentNodeBeat(t, name, []string{proxy.URL()}, 2*time.Second)
	b := agentNodeBeat(t, name, c.URLs()[1:], 2*time.Second)
	_, leaveX := joinAgent(a, "/livesys/x", 1)
	waitFor(t, "x on the other broker", func() bool { return len(b.b.Present("/livesys")) == 1 })
	proxy.Cut()
	waitFor(t, "broker A to notice the cut", func() bool { return a.b.Ready() != nil })
	leaveX()
	_, leaveY := joinAgent(a, "/livesys/y", 2)
	_, leaveZ := joinAgent(a, "/livesys/z", 3)
	defer leaveY()
	defer leaveZ()
	proxy.Restore()
	waitFor(t, "broker A to reconnect", func() bool { return a.b.Ready() == nil })
	waitFor(t, "y and z on the other broker", func() bool {
		ps := b.b.Present("/livesys")
		return len(ps) == 2 && ps[0].Topic == "/livesys/y" && ps[1].Topic == "/livesys/z"
	})
}
