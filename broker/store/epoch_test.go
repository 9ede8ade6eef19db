package store

import (
	"fmt"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

// With a data directory the sequence numbers carry on across a restart,
// and so does their epoch: a client's position stays good. A new data
// directory starts a new epoch.
func TestEpochSurvivesARestartWithTheStore(t *testing.T) {
	dir := t.TempDir()
	b, d := durableBroker(t, dir)
	epoch := b.Epoch()
	if epoch == "" {
		t.Fatal("no epoch")
	}
	for i := range 5 {
		if err := b.Publish(&broker.Message{Topic: "/d/a", Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	d.Close()

	b, d = durableBroker(t, dir)
	defer d.Close()
	defer b.Close()
	if b.Epoch() != epoch {
		t.Fatalf("epoch %q after a restart, was %q", b.Epoch(), epoch)
	}
	backlog, gap, unsub := b.SubscribeFrom("/d", receiver{}, broker.Position{Seq: 3, Epoch: epoch})
	defer unsub()
	if len(backlog) != 2 || backlog[0].Seq != 4 || backlog[0].Epoch != epoch || gap != nil {
		t.Fatalf("resumed at 3: %d messages, gap %+v", len(backlog), gap)
	}
	m := &broker.Message{Topic: "/d/a", Payload: []byte("after")}
	b.Publish(m)
	if m.Epoch != epoch {
		t.Fatalf("a new message's epoch %q, want %q", m.Epoch, epoch)
	}

	other, od := durableBroker(t, t.TempDir())
	defer od.Close()
	defer other.Close()
	if other.Epoch() == "" || other.Epoch() == epoch {
		t.Fatalf("a new data directory's epoch %q, the other's %q", other.Epoch(), epoch)
	}
}
