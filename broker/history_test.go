package broker

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func historyBroker(t *testing.T, ps ...Policy) *Broker {
	t.Helper()
	pols, err := NewPolicies(ps)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Policies: pols})
	t.Cleanup(b.Close)
	return b
}

func seqs(ms []*Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func TestReplayAfterSince(t *testing.T) {
	b := historyBroker(t, Policy{Bus: "/livesys", History: History{Messages: 100}})
	for i := range 5 {
		b.Publish(msg(fmt.Sprintf("/livesys/%d", i%2), fmt.Sprint(i)))
	}
	b.Publish(msg("/other", "not kept"))
	var in inbox
	backlog, gap, unsub := b.SubscribeSince("/livesys", &in, 2)
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("backlog %v, want 3 4 5", got)
	}
	if gap != nil {
		t.Fatalf("gap %+v, want none", gap)
	}
	backlog, _, unsub2 := b.SubscribeSince("/livesys/1", &inbox{}, 0)
	defer unsub2()
	if got := seqs(backlog); !slices.Equal(got, []uint64{2, 4}) {
		t.Fatalf("backlog of /livesys/1 %v, want 2 4", got)
	}
	b.Publish(msg("/livesys/0", "live"))
	if got := in.payloads(); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("live after the backlog: %v", got)
	}
}

func TestReplayReportsWhatIsNoLongerKept(t *testing.T) {
	b := historyBroker(t, Policy{Bus: "/livesys", History: History{Messages: 3}})
	for i := range 6 {
		b.Publish(msg("/livesys/a", fmt.Sprint(i)))
	}
	backlog, gap, unsub := b.SubscribeSince("/livesys", &inbox{}, 1)
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Fatalf("backlog %v", got)
	}
	if gap == nil || gap.From != 2 || gap.To != 3 {
		t.Fatalf("gap %+v, want 2..3", gap)
	}
}

func TestReplayWithoutHistoryIsAGap(t *testing.T) {
	b := historyBroker(t)
	for range 3 {
		b.Publish(msg("/x", "m"))
	}
	backlog, gap, unsub := b.SubscribeSince("/x", &inbox{}, 1)
	defer unsub()
	if len(backlog) != 0 || gap == nil || gap.From != 2 || gap.To != 3 {
		t.Fatalf("backlog %v gap %+v, want none and 2..3", seqs(backlog), gap)
	}
	_, gap, unsub2 := b.SubscribeSince("/x", &inbox{}, 3)
	defer unsub2()
	if gap != nil {
		t.Fatalf("since the last seq: gap %+v", gap)
	}
}

func TestReplayMergesNestedBuses(t *testing.T) {
	b := historyBroker(t,
		Policy{Bus: "/livesys", History: History{Messages: 10}},
		Policy{Bus: "/livesys/admin", History: History{Messages: 10}})
	b.Publish(msg("/livesys/1", "a"))
	b.Publish(msg("/livesys/admin/1", "b"))
	b.Publish(msg("/livesys/2", "c"))
	b.Publish(msg("/livesys/admin", "d"))
	backlog, gap, unsub := b.SubscribeSince("/livesys", &inbox{}, 0)
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{1, 2, 3, 4}) || gap != nil {
		t.Fatalf("backlog %v gap %+v", got, gap)
	}
}

func TestHistoryAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := historyBroker(t, Policy{Bus: "/a", History: History{Age: time.Minute}})
		b.Publish(msg("/a", "old"))
		time.Sleep(2 * time.Minute)
		b.Publish(msg("/a", "new"))
		backlog, gap, unsub := b.SubscribeSince("/a", &inbox{}, 0)
		defer unsub()
		if got := seqs(backlog); !slices.Equal(got, []uint64{2}) || gap == nil || gap.To != 1 {
			t.Fatalf("backlog %v gap %+v", got, gap)
		}
	})
}

// TestReplayJoinsLiveWithoutGapOrDuplicate subscribes with since=0 while
// publishers are busy: the backlog then the live messages must be every
// sequence number exactly once, in order.
func TestReplayJoinsLiveWithoutGapOrDuplicate(t *testing.T) {
	b := historyBroker(t, Policy{Bus: "/t", History: History{Messages: 1 << 20}})
	const publishers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range publishers {
		wg.Go(func() {
			for i := range each {
				b.Publish(msg(fmt.Sprintf("/t/%d", w), fmt.Sprint(i)))
			}
		})
	}
	var subs []*inbox
	var backlogs [][]*Message
	for range 5 {
		time.Sleep(time.Millisecond)
		in := &inbox{}
		backlog, gap, unsub := b.SubscribeSince("/t", in, 0)
		defer unsub()
		if gap != nil {
			t.Fatalf("gap %+v with everything kept", gap)
		}
		subs = append(subs, in)
		backlogs = append(backlogs, backlog)
	}
	wg.Wait()
	for i, in := range subs {
		in.mu.Lock()
		all := append(slices.Clone(backlogs[i]), in.msgs...)
		in.mu.Unlock()
		if len(all) != publishers*each {
			t.Fatalf("subscriber %d saw %d messages, want %d", i, len(all), publishers*each)
		}
		for j, m := range all {
			if m.Seq != uint64(j+1) {
				t.Fatalf("subscriber %d: message %d has seq %d", i, j, m.Seq)
			}
		}
	}
}
