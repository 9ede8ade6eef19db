package nats

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/test/syncbuf"
)

// sent is one message a test published, with when its publish started
// and when it was confirmed.
type sent struct {
	seq            uint64
	started, acked time.Time
	kind           broker.Kind
	topic          broker.Topic
	payload        string
}

// journal keeps what was published, in sequence order per topic.
type journal struct {
	mu   sync.Mutex
	msgs []sent
}

func (j *journal) add(s sent) {
	j.mu.Lock()
	j.msgs = append(j.msgs, s)
	j.mu.Unlock()
}

// under returns what was sent of kind under topic (exactly topic for a
// bus), in sequence order.
func (j *journal) under(kind broker.Kind, topic broker.Topic) []sent {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []sent
	for _, s := range j.msgs {
		if s.kind != kind {
			continue
		}
		if s.topic == topic || kind == broker.KindPublish && strings.HasPrefix(string(s.topic), string(topic)+"/") {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sent) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// churn is one subscriber or bus peer that came and went.
type churn struct {
	kind    broker.Kind
	topic   broker.Topic
	since   uint64 // a subscriber with since: 0 for none
	backlog []*broker.Message
	live    *recorder
	came    time.Time // Subscribe returned
	mark    uint64    // the last message of its topic confirmed before it left
}

// check verifies that c got, in order, once each, every message of its
// topic after since (or, without since, from no later than the first
// published after it came) up to mark, the last one confirmed before it
// left, with nothing missing in between.
func (c *churn) check(t *testing.T, j *journal) {
	t.Helper()
	got := c.got()
	all := j.under(c.kind, c.topic)
	start := 0
	switch {
	case c.since > 0:
		for start < len(all) && all[start].seq <= c.since {
			start++
		}
	case len(got) > 0:
		for start < len(all) && all[start].seq < got[0].Seq {
			start++
		}
	default:
		start = len(all)
	}
	what := fmt.Sprintf("%v %s (since %d)", c.kind, c.topic, c.since)
	if len(got) > len(all)-start {
		t.Fatalf("%s: %d messages, only %d were sent from the first", what, len(got), len(all)-start)
	}
	for i, m := range got {
		if s := all[start+i]; m.Seq != s.seq || string(m.Payload) != s.payload {
			t.Fatalf("%s: message %d is seq %d %q, want seq %d %q", what, i, m.Seq, m.Payload, s.seq, s.payload)
		}
	}
	for _, s := range all {
		if s.seq <= c.mark && c.due(s) && (len(got) == 0 || got[0].Seq > s.seq || got[len(got)-1].Seq < s.seq) {
			t.Fatalf("%s: missed seq %d (got %d messages)", what, s.seq, len(got))
		}
	}
	if c.since == 0 && len(got) > 0 {
		if first := all[start]; first.acked.Before(c.came.Add(-2 * time.Second)) {
			t.Fatalf("%s: got seq %d, confirmed 2s before the subscriber came", what, first.seq)
		}
	}
}

// due reports whether c must get s, if s comes before its mark.
func (c *churn) due(s sent) bool {
	return s.seq > c.since && (c.since > 0 || s.started.After(c.came))
}

// lastDue returns the sequence number of the last message of all c must
// get before it leaves, 0 if none.
func (c *churn) lastDue(all []sent) uint64 {
	var last uint64
	for _, s := range all {
		if s.seq <= c.mark && c.due(s) {
			last = s.seq
		}
	}
	return last
}

func (c *churn) got() []*broker.Message {
	return append(append([]*broker.Message(nil), c.backlog...), c.live.got()...)
}

// TestInterestFeedChurnUnderLoad: while messages flow steadily, a broker's
// subscribers and bus peers come and go on several topics, so that its
// feed takes and drops subjects many times. A subscriber present all along
// gets every message of its topic, in order, once; each one that came and
// went gets every message from when it came (or from since) until it
// left, with no gap and no duplicate; the feed decodes less than all of
// the stream (all of it on a server before 2.10).
func TestInterestFeedChurnUnderLoad(t *testing.T) {
	old := narrowDelay
	narrowDelay = 20 * time.Millisecond
	defer func() { narrowDelay = old }()
	c := cluster(t)
	nodes := startNodes(t, c, 2, []broker.Policy{{Bus: "/load", History: broker.History{Messages: 100000}}})
	sub, pub := nodes[0], nodes[1]

	steady := &recorder{}
	defer sub.b.Subscribe("/load/a", steady)()

	var j journal
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	pubTopics := []broker.Topic{"/load/a", "/load/b", "/load/c/d", "/load/e", "/other/x"}
	busTopics := []broker.Topic{"/load/room", "/load/c"}
	pubs.Go(func() {
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			kind, topic := broker.KindPublish, pubTopics[k%len(pubTopics)]
			if k%7 == 3 {
				kind, topic = broker.KindBus, busTopics[k%2]
			}
			m := msg(string(topic), fmt.Sprint("m", k))
			started := time.Now()
			var err error
			if kind == broker.KindBus {
				err = pub.b.SendBus(m, nil)
			} else {
				err = pub.b.Publish(m)
			}
			if err != nil {
				t.Error(err)
				return
			}
			j.add(sent{seq: m.Seq, started: started, acked: time.Now(), kind: kind, topic: topic, payload: string(m.Payload)})
			time.Sleep(time.Millisecond)
		}
	})
	// Let a backlog build for subscribers with since.
	time.Sleep(200 * time.Millisecond)

	rnd := rand.New(rand.NewPCG(1, 2))
	var churns []*churn
	var mu sync.Mutex
	var subs sync.WaitGroup
	churnTopics := []broker.Topic{"/load/b", "/load/c", "/load/c/d", "/load/e", "/load"}
	for w := range 3 {
		seed := rnd.Uint64()
		subs.Go(func() {
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			for range 25 {
				c := &churn{kind: broker.KindPublish, topic: churnTopics[rnd.IntN(len(churnTopics))], live: &recorder{}}
				var unsub func()
				switch rnd.IntN(3) {
				case 0:
					unsub = sub.b.Subscribe(c.topic, c.live)
				case 1:
					// A position this broker delivered up to: one beyond it
					// (from a broker whose feed is ahead) gets the messages
					// up to it again, as with the whole stream.
					var seen []sent
					for _, s := range j.under(c.kind, c.topic) {
						if s.seq <= sub.b.LastSeq() {
							seen = append(seen, s)
						}
					}
					if len(seen) > 0 {
						c.since = seen[rnd.IntN(len(seen))].seq
					}
					var gap *broker.Gap
					c.backlog, gap, unsub = sub.b.SubscribeSince(c.topic, c.live, c.since)
					if gap != nil {
						t.Errorf("%s since %d: gap %+v", c.topic, c.since, gap)
					}
				case 2:
					c.kind, c.topic = broker.KindBus, busTopics[rnd.IntN(len(busTopics))]
					unsub = sub.b.JoinBus(c.topic, c.live, false)
				}
				c.came = time.Now()
				time.Sleep(time.Duration(10+rnd.IntN(100)) * time.Millisecond)
				// Stay until the last message due and confirmed by now came.
				if sofar := j.under(c.kind, c.topic); len(sofar) > 0 {
					c.mark = sofar[len(sofar)-1].seq
				}
				due := c.lastDue(j.under(c.kind, c.topic))
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if got := c.got(); due == 0 || len(got) > 0 && got[len(got)-1].Seq >= due {
						break
					}
				}
				unsub()
				mu.Lock()
				churns = append(churns, c)
				mu.Unlock()
				time.Sleep(time.Duration(rnd.IntN(60)) * time.Millisecond)
			}
		})
	}
	subs.Wait()
	close(stop)
	pubs.Wait()

	want := j.under(broker.KindPublish, "/load/a")
	got := steady.waitN(t, len(want))
	time.Sleep(100 * time.Millisecond)
	got = steady.got()
	if len(got) != len(want) {
		t.Fatalf("/load/a: %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.Seq != want[i].seq || string(m.Payload) != want[i].payload {
			t.Fatalf("/load/a: message %d is seq %d, want %d", i, m.Seq, want[i].seq)
		}
	}
	for _, c := range churns {
		c.check(t, &j)
	}
	total := uint64(len(j.msgs))
	received := sub.bp.MessagesReceived()
	t.Logf("%d messages sent, %d churning subscribers and peers; the subscribers' broker decoded %d", total, len(churns), received)
	if sub.bp.oneFilter.Load() {
		if received < total {
			t.Fatalf("on the whole stream the feed decoded %d of %d", received, total)
		}
	} else if received >= total {
		t.Fatalf("the feed decoded %d messages of %d: it took subjects nobody wanted", received, total)
	}
}

// TestInterestFeedFallback: on a server that takes one subject filter per
// consumer (2.9; taken for one on a newer server), the feed reads the
// whole stream, says so once in the log however often the interest
// changes, and still delivers everything.
func TestInterestFeedFallback(t *testing.T) {
	c := cluster(t)
	name := clusterName()
	var logs syncbuf.Buffer
	bp, err := Connect(Options{URLs: c.URLs(), Name: name, Timeout: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	bp.oneFilter.Store(true) // what a 2.9 server makes it
	b, err := broker.Open(broker.Options{Backplane: bp, Logger: testLogger()})
	if err != nil {
		bp.Close()
		t.Fatal(err)
	}
	defer func() { b.Close(); bp.Close() }()
	other := startNode(t, c, name, 1, nil)

	var recs []*recorder
	for i := range 5 {
		r := &recorder{}
		recs = append(recs, r)
		unsub := b.Subscribe(broker.Topic(fmt.Sprintf("/f/%d", i)), r)
		if i%2 == 1 {
			unsub()
		} else {
			defer unsub()
		}
	}
	leave := b.JoinBus("/f/room", &recorder{}, false)
	leave()
	all := &recorder{}
	defer b.Subscribe("/f", all)()
	const n = 40
	for k := range n {
		if err := other.b.Publish(msg(fmt.Sprintf("/f/%d", k%5), fmt.Sprint(k))); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(all.waitN(t, n)); got != n {
		t.Fatalf("/f: %d messages, want %d", got, n)
	}
	for i, r := range recs {
		want := n / 5
		if i%2 == 1 {
			want = 0
		}
		if i%2 == 0 {
			r.waitN(t, want)
		}
		if got := len(r.got()); got != want {
			t.Fatalf("/f/%d: %d messages, want %d", i, got, want)
		}
	}
	if received := bp.MessagesReceived(); received != n {
		t.Fatalf("the feed decoded %d messages, want all %d", received, n)
	}
	if k := strings.Count(logs.String(), "reads the whole message stream"); k != 1 {
		t.Fatalf("the fallback was logged %d times, want once:\n%s", k, logs.String())
	}
}
