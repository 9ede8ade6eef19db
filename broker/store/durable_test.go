package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

func openDurable(t *testing.T, dir string) *Durable {
	t.Helper()
	d, err := OpenDurable(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDurableRecords(t *testing.T) {
	dir := t.TempDir()
	d := openDurable(t, dir)
	at := time.Date(2026, 11, 24, 11, 0, 0, 5, time.UTC)
	msgs := []*broker.Message{
		{Topic: "/a/x", Seq: 3, Time: at, Payload: []byte(`{"n":3}`)},
		{Topic: "/a/y", Seq: 7, Time: at, Binary: true, Payload: []byte{0, 0xff}},
		{Topic: "/a/b/z", Seq: 9, Time: at, Payload: []byte("nine")},
	}
	if err := d.AppendMessage("/a", msgs[0]); err != nil {
		t.Fatal(err)
	}
	d.AppendMessage("/a", msgs[1])
	d.AppendMessage("/a/b", msgs[2])
	d.PutQueued("/jobs", broker.QueuedMessage{Message: &broker.Message{Topic: "/jobs", Seq: 4, Time: at, Payload: []byte("j4")}}, true)
	d.PutQueued("/jobs", broker.QueuedMessage{Message: &broker.Message{Topic: "/jobs", Seq: 5, Time: at, Payload: []byte("j5")}, Attempts: 2, LastError: "boom"}, true)
	d.PutQueued("/jobs", broker.QueuedMessage{Message: &broker.Message{Topic: "/jobs", Seq: 6, Time: at, Payload: []byte("j6")}, Attempts: 5, LastError: "dead", Dead: true, Died: at}, true)
	d.PutQueued("/jobs/x", broker.QueuedMessage{Message: &broker.Message{Topic: "/jobs/x", Seq: 8, Time: at}}, true)
	d.DeleteQueued("/jobs", 4)
	d.DeleteQueue("/jobs/x", 8)
	d.SaveSeq(1 << 16)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openDurable(t, dir)
	defer d.Close()
	var got []string
	err := d.LoadMessages(func(bus broker.Topic, m *broker.Message) error {
		got = append(got, fmt.Sprintf("%s %s %d %v %q %s", bus, m.Topic, m.Seq, m.Binary, m.Payload, m.Time.Format(time.RFC3339Nano)))
		return nil
	})
	want := []string{
		`/a /a/x 3 false "{\"n\":3}" 2026-11-24T11:00:00.000000005Z`,
		`/a /a/y 7 true "\x00\xff" 2026-11-24T11:00:00.000000005Z`,
		`/a/b /a/b/z 9 false "nine" 2026-11-24T11:00:00.000000005Z`,
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("messages %q, %v\nwant %q", got, err, want)
	}
	var queued []string
	d.LoadQueued(func(q broker.Topic, r broker.QueuedMessage) error {
		queued = append(queued, fmt.Sprintf("%s %d %q %d %q %v", q, r.Message.Seq, r.Message.Payload, r.Attempts, r.LastError, r.Dead))
		return nil
	})
	if want := []string{`/jobs 5 "j5" 2 "boom" false`, `/jobs 6 "j6" 5 "dead" true`}; !slices.Equal(queued, want) {
		t.Fatalf("queued %q, want %q", queued, want)
	}
	if seq, err := d.LoadSeq(); seq != 1<<16 || err != nil {
		t.Fatalf("lease %d, %v", seq, err)
	}
	if err := d.TrimMessages("/a", 3); err != nil {
		t.Fatal(err)
	}
	if trims, _ := d.LoadTrims(); trims["/a"] != 3 || len(trims) != 1 {
		t.Fatalf("trims %v", trims)
	}
	// A trim joins the next group without waiting: Close commits it.
	d.Close()
	d = openDurable(t, dir)
	defer d.Close()
	if trims, _ := d.LoadTrims(); trims["/a"] != 3 || len(trims) != 1 {
		t.Fatalf("trims after reopening %v", trims)
	}
	n := 0
	d.LoadMessages(func(bus broker.Topic, m *broker.Message) error { n++; return nil })
	if n != 2 {
		t.Fatalf("%d messages after trimming /a up to 3, want 2", n)
	}
}

// durableBroker opens a broker on the store in dir with a durable bus
// /d (history 100) and a durable queue bus /q.
func durableBroker(t *testing.T, dir string) (*broker.Broker, *Durable) {
	t.Helper()
	d := openDurable(t, dir)
	ps, err := broker.NewPolicies([]broker.Policy{
		{Bus: "/d", Durable: true, History: broker.History{Messages: 100}},
		{Bus: "/q", Durable: true, Queue: broker.QueuePolicy{MaxAttempts: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Policies: ps, Store: d})
	if err != nil {
		t.Fatal(err)
	}
	return b, d
}

type puller struct {
	mu  sync.Mutex
	got []*broker.Delivery
}

func (p *puller) Offer(d *broker.Delivery) { p.mu.Lock(); p.got = append(p.got, d); p.mu.Unlock() }
func (p *puller) Evict(string)             {}

type receiver struct{}

func (receiver) Deliver(*broker.Message) {}

// TestBrokerSurvivesARestart checks what a durable bus promises across a
// restart on the same store: confirmed messages replay, sequence numbers
// go on upwards, unacknowledged queued messages come back with their ids,
// acknowledged ones do not, dead letters stay.
func TestBrokerSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	b, d := durableBroker(t, dir)
	for i := range 5 {
		if err := b.Publish(&broker.Message{Topic: broker.Topic(fmt.Sprintf("/d/%d", i%2)), Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Publish(&broker.Message{Topic: "/volatile", Payload: []byte("not kept")})
	for i := range 4 {
		b.Push(&broker.Message{Topic: "/q/jobs", Payload: fmt.Appendf(nil, "j%d", i)}, broker.PushOptions{})
	}
	var p puller
	leave, err := b.Pull("/q/jobs", &p, broker.PullOptions{Ack: true, Prefetch: 3})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	acked, held, failing := p.got[0], p.got[1], p.got[2]
	p.mu.Unlock()
	b.Ack("/q/jobs", &p, acked.ID())
	for range 3 { // three failures: a dead letter
		b.Nack("/q/jobs", &p, failing.ID(), 0, "broken")
	}
	_ = held // still held, unacknowledged, when the broker stops
	lastSeq := b.LastSeq()
	leave()
	b.Close()
	d.Close()

	b, d = durableBroker(t, dir)
	defer d.Close()
	defer b.Close()
	if next := b.LastSeq(); next < lastSeq {
		t.Fatalf("sequence went back: %d after a restart, was %d", next, lastSeq)
	}
	backlog, gap, unsub := b.SubscribeSince("/d", receiver{}, 0)
	defer unsub()
	var payloads []string
	for _, m := range backlog {
		payloads = append(payloads, string(m.Payload))
	}
	if !slices.Equal(payloads, []string{"m0", "m1", "m2", "m3", "m4"}) || gap != nil {
		t.Fatalf("replay after restart %q gap %+v", payloads, gap)
	}
	m := &broker.Message{Topic: "/d/new", Payload: []byte("after")}
	b.Publish(m)
	if m.Seq <= lastSeq {
		t.Fatalf("new message seq %d not above %d", m.Seq, lastSeq)
	}
	dead, _ := b.DeadLetters("/q/jobs")
	if len(dead) != 1 || dead[0].ID != failing.ID() || dead[0].LastError != "broken" {
		t.Fatalf("dead letters after restart %+v", dead)
	}
	var p2 puller
	b.Pull("/q/jobs", &p2, broker.PullOptions{Ack: true})
	p2.mu.Lock()
	defer p2.mu.Unlock()
	var ids []uint64
	for _, d := range p2.got {
		ids = append(ids, d.ID())
	}
	if len(ids) != 2 || ids[0] != held.ID() {
		t.Fatalf("redelivered ids %v, want the held %d and the never-delivered one", ids, held.ID())
	}
	for _, d := range p2.got {
		if d.ID() == acked.ID() {
			t.Fatal("an acknowledged message came back")
		}
	}
}

func TestDurableBusNeedsAStore(t *testing.T) {
	ps, _ := broker.NewPolicies([]broker.Policy{{Bus: "/d", Durable: true}})
	if _, err := broker.Open(broker.Options{Policies: ps}); err == nil {
		t.Fatal("a durable bus without a store was accepted")
	}
}

// TestFullHistoryTrimsTheStore publishes concurrently to durable buses
// whose history is full (100 messages, and 1): after a restart the store
// holds exactly what the histories retain, the newest messages, and
// replay reports the rest as a gap.
func TestFullHistoryTrimsTheStore(t *testing.T) {
	dir := t.TempDir()
	ps, err := broker.NewPolicies([]broker.Policy{
		{Bus: "/h100", Durable: true, History: broker.History{Messages: 100}},
		{Bus: "/h1", Durable: true, History: broker.History{Messages: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*broker.Broker, *Durable) {
		d := openDurable(t, dir)
		b, err := broker.Open(broker.Options{Policies: ps, Store: d})
		if err != nil {
			t.Fatal(err)
		}
		return b, d
	}
	b, d := open()
	var wg sync.WaitGroup
	for p := range 50 {
		wg.Go(func() {
			for i := range 20 {
				for _, bus := range []string{"/h100", "/h1"} {
					if err := b.Publish(&broker.Message{Topic: broker.Topic(bus + "/x"), Payload: fmt.Appendf(nil, "%d-%d", p, i)}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	want := map[broker.Topic][]uint64{}
	for _, bus := range []broker.Topic{"/h100", "/h1"} {
		backlog, _, unsub := b.SubscribeSince(bus, receiver{}, 0)
		unsub()
		for _, m := range backlog {
			want[bus] = append(want[bus], m.Seq)
		}
	}
	if len(want["/h100"]) != 100 || len(want["/h1"]) != 1 {
		t.Fatalf("histories hold %d and %d messages, want 100 and 1", len(want["/h100"]), len(want["/h1"]))
	}
	b.Close()
	d.Close()

	b, d = open()
	defer d.Close()
	defer b.Close()
	stored := map[broker.Topic][]uint64{}
	d.kv.Scan(msgPrefix, nil, func(key, _ []byte) bool {
		bus, seq, err := splitTopicKey(msgPrefix, key)
		if err != nil {
			t.Fatal(err)
		}
		stored[bus] = append(stored[bus], seq)
		return true
	})
	for bus, seqs := range want {
		if !slices.Equal(stored[bus], seqs) {
			t.Errorf("%s: store holds %v, want what its history retained, %v", bus, stored[bus], seqs)
		}
		backlog, gap, unsub := b.SubscribeSince(bus, receiver{}, 0)
		unsub()
		if len(backlog) != len(seqs) || backlog[0].Seq != seqs[0] || gap == nil || gap.From != 1 || gap.To >= seqs[0] {
			t.Errorf("%s: replay after a restart: %d messages from %d, gap %+v; want %d from %d and a gap before", bus, len(backlog), backlog[0].Seq, gap, len(seqs), seqs[0])
		}
	}
}

// TestRecordNotBefore checks that a queued record keeps its not-before
// time, and that a record written before that field existed still reads.
func TestRecordNotBefore(t *testing.T) {
	at := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	m := &broker.Message{Topic: "/q/jobs", Seq: 7, Time: at, Payload: []byte("job")}
	r := broker.QueuedMessage{Message: m, Attempts: 2, LastError: "later", NotBefore: at.Add(time.Hour)}
	got, err := decodeRecord(7, encodeRecord(r))
	if err != nil || !got.NotBefore.Equal(r.NotBefore) || got.Attempts != 2 || got.LastError != "later" || string(got.Message.Payload) != "job" {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, r)
	}
	// The layout of a record before the not-before time: no flag, no field.
	old := []byte{recordVersion, 0}
	old = binary.AppendVarint(old, at.UnixNano())
	old = binary.AppendUvarint(old, 2)
	old = binary.AppendVarint(old, time.Time{}.UnixNano())
	old = binary.AppendUvarint(old, uint64(len(m.Topic)))
	old = append(old, m.Topic...)
	old = binary.AppendUvarint(old, uint64(len("later")))
	old = append(old, "later"...)
	old = append(old, "job"...)
	got, err = decodeRecord(7, old)
	if err != nil || !got.NotBefore.IsZero() || got.Attempts != 2 || got.LastError != "later" || string(got.Message.Payload) != "job" {
		t.Fatalf("decoded an older record as %+v, %v", got, err)
	}
	r.NotBefore = time.Time{}
	if enc := encodeRecord(r); !bytes.Equal(enc, old) {
		t.Fatalf("a record without a delay is written as %x, want the older layout %x", enc, old)
	}
}

// TestFailedTrimIsRedone fails the group that carries a trim: the
// messages it covered are deleted once the store is opened again.
func TestFailedTrimIsRedone(t *testing.T) {
	dir := t.TempDir()
	d, f := openFaulty(t, dir)
	for seq := range uint64(6) {
		if err := d.AppendMessage("/a", &broker.Message{Topic: "/a/x", Seq: seq + 1}); err != nil {
			t.Fatal(err)
		}
	}
	f.failSyncs.Store(true)
	d.TrimMessages("/a", 2)
	if err := d.AppendMessage("/a", &broker.Message{Topic: "/a/x", Seq: 7}); !errors.Is(err, errInjected) {
		t.Fatalf("append in a failing group = %v", err)
	}
	f.failSyncs.Store(false)
	d.TrimMessages("/a", 4) // from the mark in memory: 3 and 4 only
	d.Close()

	d = openDurable(t, dir)
	defer d.Close()
	var seqs []uint64
	d.LoadMessages(func(_ broker.Topic, m *broker.Message) error { seqs = append(seqs, m.Seq); return nil })
	if !slices.Equal(seqs, []uint64{5, 6}) {
		t.Fatalf("after reopening, messages %v are stored, want 5 and 6", seqs)
	}
}
