package broker

import (
	"slices"
	"strings"
	"testing"
)

func (in *inbox) heldNow() []*Delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.held)
}

// A puller's byte budget bounds what it holds, except that a puller
// holding nothing takes one message however big.
func TestPullerByteBudget(t *testing.T) {
	b := New(Options{})
	in := &inbox{hold: true}
	leave, err := b.Pull("/q", in, PullOptions{MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	b.Push(msg("/q", strings.Repeat("b", 1500)), PushOptions{})
	for range 3 {
		b.Push(msg("/q", strings.Repeat("s", 400)), PushOptions{})
	}
	if n := len(in.heldNow()); n != 1 {
		t.Fatalf("holding %d, want the one big message", n)
	}
	in.heldNow()[0].Done()
	if n := len(in.heldNow()); n != 3 { // the big one, settled, and two of 400
		t.Fatalf("offered %d in all, want 3", n)
	}
	in.heldNow()[1].Done()
	if n := len(in.heldNow()); n != 4 {
		t.Fatalf("offered %d in all, want 4", n)
	}
}

// A takeover hands the new puller what the old one held but had not
// started writing; the old one can neither write those nor settle the new
// one's, and what it was writing stays its own until written or released.
func TestTakeoverHandsOverOnlyWhatWasNotBeingWritten(t *testing.T) {
	b := New(Options{})
	old, taker := &inbox{hold: true}, &inbox{hold: true}
	if _, err := b.Pull("/q", old, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"m1", "m2", "m3"} {
		b.Push(msg("/q", p), PushOptions{})
	}
	ds := old.heldNow()
	if len(ds) != 3 || !ds[0].Claim() {
		t.Fatalf("old puller holds %d", len(ds))
	}
	leave, err := b.Pull("/q", taker, PullOptions{Takeover: true})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if got := taker.payloads(); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Fatalf("taker got %v, want m2 m3", got)
	}
	for _, d := range ds[1:] {
		if d.Claim() {
			t.Fatalf("%s was handed over, yet the old puller may still write it", d.Message.Payload)
		}
		d.Done() // must not settle the taker's
	}
	if s := stats(b, "/q"); s.InFlight != 2 {
		t.Fatalf("in flight %d after the old puller's Done, want the taker's 2", s.InFlight)
	}
	ds[0].Release() // its write failed
	if got := taker.payloads(); !slices.Equal(got, []string{"m2", "m3", "m1"}) {
		t.Fatalf("taker got %v, want m1 after the release", got)
	}
	if d := taker.heldNow()[2]; d.Attempt != 1 {
		t.Fatalf("m1 on attempt %d after a release, want 1", d.Attempt)
	}
	for _, d := range taker.heldNow() {
		d.Done()
	}
	if s := stats(b, "/q"); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("queue after: %+v", s)
	}
}

// An acking puller's deliveries go back whole when it is taken over, and
// what it had not written yet can no longer be claimed: its frames waiting
// to be written are dropped rather than reach both pullers.
func TestTakeoverOfAnAckingPullerLeavesNothingToWrite(t *testing.T) {
	b := New(Options{})
	old, taker := &inbox{hold: true}, &inbox{hold: true}
	if _, err := b.Pull("/q", old, PullOptions{Ack: true}); err != nil {
		t.Fatal(err)
	}
	b.Push(msg("/q", "m1"), PushOptions{})
	b.Push(msg("/q", "m2"), PushOptions{})
	ds := old.heldNow()
	leave, err := b.Pull("/q", taker, PullOptions{Ack: true, Takeover: true})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if got := taker.payloads(); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("taker got %v", got)
	}
	for _, d := range ds {
		if d.Claim() {
			t.Fatalf("%s was handed over, yet the old puller may still write it", d.Message.Payload)
		}
	}
	for _, d := range taker.heldNow() {
		if d.Attempt != 2 {
			t.Fatalf("%s on attempt %d, want 2", d.Message.Payload, d.Attempt)
		}
		if err := b.Ack("/q", taker, d.ID()); err != nil {
			t.Fatal(err)
		}
	}
}

// What an acking puller is writing when it is taken over stays with it
// until the write ends (Sent): the taker gets it then, never while the old
// connection may still be writing it.
func TestTakeoverWaitsForAnAckingPullersWrite(t *testing.T) {
	b := New(Options{})
	old, taker := &inbox{hold: true}, &inbox{hold: true}
	if _, err := b.Pull("/q", old, PullOptions{Ack: true}); err != nil {
		t.Fatal(err)
	}
	b.Push(msg("/q", "m1"), PushOptions{})
	b.Push(msg("/q", "m2"), PushOptions{})
	ds := old.heldNow()
	if !ds[0].Claim() { // m1's frame is being written
		t.Fatal("claim of a held delivery refused")
	}
	leave, err := b.Pull("/q", taker, PullOptions{Ack: true, Takeover: true})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if got := taker.payloads(); !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("taker got %v while m1 was being written to the old puller, want [m2]", got)
	}
	ds[0].Sent()
	if got := taker.payloads(); !slices.Equal(got, []string{"m2", "m1"}) {
		t.Fatalf("taker got %v once the write ended, want [m2 m1]", got)
	}
	for _, d := range taker.heldNow() {
		if d.Message.Payload[1] == '1' && d.Attempt != 2 {
			t.Fatalf("m1 on attempt %d, want 2: the old puller may have started on it", d.Attempt)
		}
	}
}
