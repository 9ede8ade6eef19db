package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// responder takes requests and answers them from the test.
type responder struct {
	mu   sync.Mutex
	ids  []string
	msgs []*Message
	raw  bool // takes requests as messages, cannot answer
}

func (r *responder) Deliver(m *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *responder) DeliverRequest(m *Message, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.raw {
		r.msgs = append(r.msgs, m)
		return false
	}
	r.ids = append(r.ids, id)
	return true
}

func TestRequestWaitTimesOutAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(Options{})
		a := &responder{}
		defer b.Subscribe("/livesys/42", a)()
		p, err := b.Request(&Message{Topic: "/livesys/42", Payload: []byte("x")}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		start := time.Now()
		_, err = p.Wait(context.Background(), false)
		if !errors.Is(err, ErrRequestTimeout) {
			t.Fatalf("err %v", err)
		}
		if took := time.Since(start); took != 5*time.Second {
			t.Fatalf("timed out after %v, want 5s", took)
		}
		p.Close()
		if err := b.Reply(a.ids[0], Answer{Payload: []byte("1")}); !errors.Is(err, ErrRequestEnded) || b.LateAnswers() != 1 {
			t.Fatalf("late answer: %v, %d counted", err, b.LateAnswers())
		}
	})
}

func TestRequestAllGathersUntilTimeoutOrEveryAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(Options{})
		agents := []*responder{{}, {}, {}}
		for i, a := range agents {
			defer b.Subscribe(Topic("/livesys/"+string(rune('a'+i))), a)()
		}
		raw := &responder{raw: true}
		defer b.Subscribe("/livesys/raw", raw)()
		above := &responder{}
		defer b.Subscribe("/", above)()

		// Two of three answer: all of them come back at the timeout.
		p, err := b.Request(&Message{Topic: "/livesys", Payload: []byte("x")}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if p.Responders() != 3 || len(raw.msgs) != 1 || len(above.ids)+len(above.msgs) != 0 {
			t.Fatalf("responders %d, raw %d, above %d", p.Responders(), len(raw.msgs), len(above.ids))
		}
		go func() {
			time.Sleep(time.Second)
			b.Reply(agents[0].ids[0], Answer{Payload: []byte("0")})
			b.Reply(agents[1].ids[0], Answer{Payload: []byte("1")})
		}()
		start := time.Now()
		got, err := p.Wait(context.Background(), true)
		if err != nil || len(got) != 2 || time.Since(start) != 5*time.Second {
			t.Fatalf("%d answers, %v, after %v", len(got), err, time.Since(start))
		}
		p.Close()

		// All three answer: no wait for the timeout.
		p, _ = b.Request(&Message{Topic: "/livesys", Payload: []byte("x")}, 5*time.Second)
		go func() {
			time.Sleep(time.Second)
			for _, a := range agents {
				b.Reply(a.ids[1], Answer{})
			}
		}()
		start = time.Now()
		got, err = p.Wait(context.Background(), true)
		if err != nil || len(got) != 3 || time.Since(start) != time.Second {
			t.Fatalf("%d answers, %v, after %v", len(got), err, time.Since(start))
		}
		p.Close()
		if n := b.PendingRequests(); n != 0 {
			t.Fatalf("%d pending", n)
		}
	})
}

func TestRequestLimits(t *testing.T) {
	b := New(Options{MaxPendingRequests: 2})
	if _, err := b.Request(&Message{Topic: "/a"}, 5*time.Second); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("no subscriber: %v", err)
	}
	defer b.Subscribe("/a", &responder{raw: true})()
	if _, err := b.Request(&Message{Topic: "/a"}, 5*time.Second); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("raw subscriber only: %v", err)
	}
	defer b.Subscribe("/a", &responder{})()
	p1, _ := b.Request(&Message{Topic: "/a"}, 5*time.Second)
	p2, _ := b.Request(&Message{Topic: "/a"}, 5*time.Second)
	if _, err := b.Request(&Message{Topic: "/a"}, 5*time.Second); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("over the limit: %v", err)
	}
	p1.Close()
	p3, err := b.Request(&Message{Topic: "/a"}, 5*time.Second)
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	p2.Close()
	p3.Close()
	if n := b.PendingRequests(); n != 0 {
		t.Fatalf("%d pending", n)
	}
}

type watcher struct {
	mu     sync.Mutex
	events []PresenceEvent
}

func (w *watcher) PresenceEvent(e PresenceEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

func TestPresenceJoinLeave(t *testing.T) {
	b := New(Options{})
	w, other := &watcher{}, &watcher{}
	stop := b.WatchPresence("/livesys", w)
	defer b.WatchPresence("/livesysX", other)()
	leave := b.Join(Presence{Topic: "/livesys/42", User: "42", Since: time.Now()})
	b.Join(Presence{Topic: "/elsewhere"})
	if ps := b.Present("/livesys"); len(ps) != 1 || ps[0].User != "42" {
		t.Fatalf("present %+v", ps)
	}
	leave()
	leave() // once
	if ps := b.Present("/livesys"); len(ps) != 0 {
		t.Fatalf("present after leaving %+v", ps)
	}
	stop()
	b.Join(Presence{Topic: "/livesys/43"})
	if len(w.events) != 2 || !w.events[0].Join || w.events[1].Join || w.events[1].User != "42" || len(other.events) != 0 {
		t.Fatalf("events %+v, other %+v", w.events, other.events)
	}
}

// Other brokers' requests held here are bounded too: past the limit a
// request from a peer reaches nobody here, until earlier ones expire.
func TestPeerRequestsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(Options{MaxPendingRequests: 2})
		a := &responder{}
		defer b.Subscribe("/a", a)()
		feed := agentFeed{b}
		for i, want := range []int{1, 1, 0} {
			if got := feed.PeerRequest(&Message{Topic: "/a"}, "peer.e."+string(rune('a'+i)), time.Second); got != want {
				t.Fatalf("request %d reached %d, want %d", i, got, want)
			}
		}
		if !b.Waiting("peer.e.a") || b.Waiting("peer.e.c") {
			t.Fatal("waiting: the first should, the refused one should not")
		}
		time.Sleep(time.Second)
		if b.Waiting("peer.e.a") {
			t.Fatal("a peer's request still waits after its timeout")
		}
		if got := feed.PeerRequest(&Message{Topic: "/a"}, "peer.e.d", time.Second); got != 1 {
			t.Fatalf("after the others expired: %d", got)
		}
	})
}
