package broker

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// restartedWithoutStore returns a broker that kept history of /feed and
// gave out seq 1–5, and the broker started after it (no store: sequence
// numbers start afresh) that has given out 1–3 since.
func restartedWithoutStore(t *testing.T) (before, after *Broker) {
	t.Helper()
	pol := Policy{Bus: "/feed", History: History{Messages: 100}}
	before = historyBroker(t, pol)
	for i := range 5 {
		before.Publish(msg("/feed/a", fmt.Sprint("old ", i)))
	}
	after = historyBroker(t, pol)
	for i := range 3 {
		after.Publish(msg("/feed/a", fmt.Sprint("new ", i)))
	}
	return before, after
}

// A position from before a restart without a store is beyond the last
// sequence number given out since: the subscriber gets a notice and
// everything kept, not nothing.
func TestSinceBeyondTheLastSeqIsAReset(t *testing.T) {
	_, b := restartedWithoutStore(t)
	backlog, gap, unsub := b.SubscribeSince("/feed", &inbox{}, 5)
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("backlog %v, want 1 2 3", got)
	}
	if gap == nil {
		t.Fatal("no notice that the position is from before the restart")
	}
	if !gap.Reset || gap.Epoch != b.Epoch() || gap.From != 0 || gap.To != 0 {
		t.Fatalf("gap %+v, want a reset to epoch %s with nothing missing", gap, b.Epoch())
	}
}

// The epoch tells the two lives apart even where the numbers overlap: a
// position at seq 2 before the restart is not seq 2 after it.
func TestPositionFromAnotherEpochIsAReset(t *testing.T) {
	before, b := restartedWithoutStore(t)
	if before.Epoch() == "" || before.Epoch() == b.Epoch() {
		t.Fatalf("epochs %q and %q: want two different ones", before.Epoch(), b.Epoch())
	}
	backlog, gap, unsub := b.SubscribeFrom("/feed", &inbox{}, Position{Seq: 2, Epoch: before.Epoch()})
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{1, 2, 3}) || gap == nil || !gap.Reset || gap.Epoch != b.Epoch() {
		t.Fatalf("from another epoch: backlog %v gap %+v, want a reset and 1 2 3", got, gap)
	}
	// The same number in this epoch resumes as before.
	backlog, gap, unsub2 := b.SubscribeFrom("/feed", &inbox{}, Position{Seq: 2, Epoch: b.Epoch()})
	defer unsub2()
	if got := seqs(backlog); !slices.Equal(got, []uint64{3}) || gap != nil {
		t.Fatalf("from this epoch: backlog %v gap %+v, want 3 and no gap", got, gap)
	}
	// A position without an epoch, within the numbers given out, is
	// taken as one of this epoch (clients from before epochs).
	backlog, gap, unsub3 := b.SubscribeSince("/feed", &inbox{}, 3)
	defer unsub3()
	if len(backlog) != 0 || gap != nil {
		t.Fatalf("caught up: backlog %v gap %+v", seqs(backlog), gap)
	}
}

// What is no longer kept of this epoch is part of the reset notice.
func TestResetReportsWhatIsNoLongerKept(t *testing.T) {
	b := historyBroker(t, Policy{Bus: "/feed", History: History{Messages: 2}})
	for i := range 5 {
		b.Publish(msg("/feed", fmt.Sprint(i)))
	}
	backlog, gap, unsub := b.SubscribeFrom("/feed", &inbox{}, Position{Seq: 9, Epoch: "elsewhere"})
	defer unsub()
	if got := seqs(backlog); !slices.Equal(got, []uint64{4, 5}) || gap == nil || !gap.Reset || gap.From != 1 || gap.To != 3 {
		t.Fatalf("backlog %v gap %+v, want 4 5 after a reset missing 1–3", got, gap)
	}
}

func TestEnvelopeCarriesTheEpoch(t *testing.T) {
	b := historyBroker(t)
	m := msg("/a", `{"x":1}`)
	b.Publish(m)
	want := fmt.Sprintf(`{"topic":"/a","seq":1,"epoch":%q,"time":`, b.Epoch())
	if env := m.Envelope(); !bytes.HasPrefix(env, []byte(want)) {
		t.Fatalf("envelope %s, want it to start %s", env, want)
	}
}

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Position
		ok   bool
	}{
		{"17", Position{Seq: 17}, true},
		{"ab12:17", Position{Seq: 17, Epoch: "ab12"}, true},
		{"0", Position{}, true},
		{":17", Position{}, false},
		{"ab12:", Position{}, false},
		{"x", Position{}, false},
		{"-1", Position{}, false},
	} {
		got, err := ParsePosition(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("ParsePosition(%q) = %+v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}
