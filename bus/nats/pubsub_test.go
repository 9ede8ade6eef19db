package nats

import (
	"fmt"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

func msg(topic, payload string) *broker.Message {
	return &broker.Message{Topic: broker.Topic(topic), Payload: []byte(payload)}
}

func payloads(ms []*broker.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Payload))
	}
	return out
}

// TestPubSubAcrossBrokers: a message published on any broker reaches every
// matching subscriber on every broker once, in one sequence order, with
// the hierarchy unchanged.
func TestPubSubAcrossBrokers(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 3, nil)
	var top, leaf, other [3]*recorder
	for i, n := range nodes {
		top[i], leaf[i], other[i] = &recorder{}, &recorder{}, &recorder{}
		defer n.b.Subscribe("/livesys", top[i])()
		defer n.b.Subscribe("/livesys/42", leaf[i])()
		defer n.b.Subscribe("/livesysX", other[i])()
	}
	const each = 50
	for k := range each {
		for i, n := range nodes {
			m := msg(fmt.Sprintf("/livesys/%d", 41+i), fmt.Sprintf("%d-%d", i, k))
			if err := n.b.Publish(m); err != nil {
				t.Fatal(err)
			}
			if m.Seq == 0 {
				t.Fatal("no sequence number after the publish")
			}
		}
	}
	var order []uint64
	for i := range nodes {
		got := top[i].waitN(t, 3*each)
		time.Sleep(50 * time.Millisecond)
		got = top[i].got()
		if len(got) != 3*each {
			t.Fatalf("node %d: %d messages under /livesys, want %d", i, len(got), 3*each)
		}
		var seqs []uint64
		for j, m := range got {
			if j > 0 && m.Seq <= got[j-1].Seq {
				t.Fatalf("node %d: seq %d after %d", i, m.Seq, got[j-1].Seq)
			}
			seqs = append(seqs, m.Seq)
		}
		if order == nil {
			order = seqs
		} else if fmt.Sprint(order) != fmt.Sprint(seqs) {
			t.Fatalf("node %d saw another order", i)
		}
		if n := len(leaf[i].waitN(t, each)); n != each {
			t.Fatalf("node %d: %d messages under /livesys/42, want %d", i, n, each)
		}
		for _, m := range leaf[i].got() {
			if m.Topic != "/livesys/42" {
				t.Fatalf("node %d: /livesys/42 got %s", i, m.Topic)
			}
		}
		if n := len(other[i].got()); n != 0 {
			t.Fatalf("node %d: /livesysX got %d messages", i, n)
		}
	}
}

// TestTopicsNATSWouldMisread: dots, wildcards, spaces and non-ASCII in
// topics stay literal.
func TestTopicsNATSWouldMisread(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	star, dotted := &recorder{}, &recorder{}
	defer nodes[1].b.Subscribe("/a/*", star)()
	defer nodes[1].b.Subscribe("/a.b", dotted)()
	for _, topic := range []string{"/a/x", "/a/*", "/a/*/y", "/a.b", "/a.b/c", "/a/b", "/été 2026"} {
		if err := nodes[0].b.Publish(msg(topic, topic)); err != nil {
			t.Fatal(err)
		}
	}
	if got := payloads(star.waitN(t, 2)); fmt.Sprint(got) != "[/a/* /a/*/y]" {
		t.Fatalf("/a/* got %v", got)
	}
	if got := payloads(dotted.waitN(t, 2)); fmt.Sprint(got) != "[/a.b /a.b/c]" {
		t.Fatalf("/a.b got %v", got)
	}
}

// TestBusEcho: a bus frame reaches every other peer on every broker;
// the sender gets its own frame only with echo.
func TestBusEcho(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 2, nil)
	plain, echo, remote, post := &recorder{}, &recorder{}, &recorder{}, &recorder{}
	defer nodes[0].b.JoinBus("/room", plain, false)()
	defer nodes[0].b.JoinBus("/room", echo, true)()
	defer nodes[1].b.JoinBus("/room", remote, false)()
	defer nodes[1].b.JoinBus("/room/sub", post, false)()
	for _, step := range []struct {
		from broker.Receiver
		text string
	}{{plain, "from-plain"}, {echo, "from-echo"}, {remote, "from-remote"}, {nil, "from-post"}} {
		if err := nodes[0].b.SendBus(msg("/room", step.text), step.from); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the last frame everywhere, then compare.
	want := map[*recorder]string{
		plain:  "[from-echo from-remote from-post]",
		echo:   "[from-plain from-echo from-remote from-post]",
		remote: "[from-plain from-echo from-remote from-post]",
	}
	for r, w := range want {
		waitFor(t, "from-post", func() bool {
			got := r.got()
			return len(got) > 0 && string(got[len(got)-1].Payload) == "from-post"
		})
		if got := fmt.Sprint(payloads(r.got())); got != w {
			t.Errorf("got %s, want %s", got, w)
		}
	}
	if n := len(post.got()); n != 0 {
		t.Errorf("a bus room is exact: /room/sub got %d frames", n)
	}
}

// TestReplayOnAnotherBroker: since works on a broker other than the one
// that took the publishes, even one started after them, and joins live
// with no gap and no duplicate; the bus's history bounds the replay.
func TestReplayOnAnotherBroker(t *testing.T) {
	c := cluster(t)
	policies := []broker.Policy{
		{Bus: "/jobs", History: broker.History{Messages: 5}},
		{Bus: "/logs", History: broker.History{Messages: 100}},
	}
	nodes := startNodes(t, c, 1, policies)
	var seqs []uint64
	for k := range 10 {
		m := msg(fmt.Sprintf("/logs/%d", k%2), fmt.Sprint(k))
		if err := nodes[0].b.Publish(m); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, m.Seq)
		if err := nodes[0].b.Publish(msg("/jobs/a", fmt.Sprint("j", k))); err != nil {
			t.Fatal(err)
		}
	}
	// A broker started after the publishes.
	late := startNode(t, c, nodes[0].bp.opts.Name, 1, policies)
	r := &recorder{}
	backlog, gap, unsub := late.b.SubscribeSince("/logs/1", r, seqs[2])
	defer unsub()
	if gap != nil {
		t.Fatalf("gap %+v", gap)
	}
	if got := fmt.Sprint(payloads(backlog)); got != "[3 5 7 9]" {
		t.Fatalf("backlog %s", got)
	}
	for k := 10; k < 13; k++ {
		if err := nodes[0].b.Publish(msg("/logs/1", fmt.Sprint(k))); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(payloads(r.waitN(t, 3))); got != "[10 11 12]" {
		t.Fatalf("live %s", got)
	}

	// /jobs keeps 5 messages: the older ones are a gap.
	jobs, gap, unsub2 := late.b.SubscribeSince("/jobs", &recorder{}, 0)
	defer unsub2()
	if got := fmt.Sprint(payloads(jobs)); got != "[j5 j6 j7 j8 j9]" {
		t.Fatalf("jobs backlog %s", got)
	}
	if gap == nil || gap.From != 1 {
		t.Fatalf("jobs gap %+v", gap)
	}
	// A topic under no bus keeps nothing: the whole range is a gap.
	none, gap, unsub3 := late.b.SubscribeSince("/other", &recorder{}, 0)
	defer unsub3()
	if len(none) != 0 || gap == nil {
		t.Fatalf("/other: backlog %d, gap %+v", len(none), gap)
	}
}
