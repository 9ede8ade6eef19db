package minion_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// collector is a Publisher that keeps what it is given, so the bridge's
// PostgreSQL side can be tested without a broker. The end-to-end tests in
// test/ run the bridge against the real broker.
type collector struct {
	mu       sync.Mutex
	msgs     []minion.Message
	seq      uint64
	failNext int           // fail this many Publish calls, delivering nothing
	confirm  int           // when > 0: deliver this many messages of the next call, then fail
	lost     int           // when > 0: the next call delivers this many but never confirms them
	hold     chan struct{} // when set, Publish waits for it to close
}

var errDown = errors.New("broker down")

func (c *collector) Publish(ctx context.Context, msgs []minion.Message) ([]uint64, error) {
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seqs := make([]uint64, len(msgs))
	if c.failNext > 0 {
		c.failNext--
		return seqs, errDown
	}
	n := len(msgs)
	var err error
	if c.confirm > 0 && c.confirm < n {
		n, err, c.confirm = c.confirm, errDown, 0
	}
	if c.lost > 0 {
		k := min(c.lost, len(msgs))
		c.msgs = append(c.msgs, msgs[:k]...)
		c.lost = 0
		return seqs, errDown
	}
	for i := range n {
		c.seq++
		seqs[i] = c.seq
		c.msgs = append(c.msgs, msgs[i])
	}
	return seqs, err
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) events(t testing.TB) []*minion.Event {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*minion.Event
	for _, m := range c.msgs {
		var e minion.Event
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatalf("payload %s: %v", m.Payload, err)
		}
		if want := minion.Topic(minion.DefaultTopic, &e); m.Topic != want || m.Key != want {
			t.Errorf("event %s published to %s (key %s), want %s", e.EventID, m.Topic, m.Key, want)
		}
		out = append(out, &e)
	}
	return out
}

// enqueueMany enqueues n jobs in one transaction, so the bridge reads them
// in one batch.
func enqueueMany(t testing.TB, conn *pgx.Conn, n int) []int64 {
	t.Helper()
	tx, err := conn.Begin(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range n {
		ids = append(ids, enqueue(t, tx, "batch"))
	}
	if err := tx.Commit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return ids
}

// dedup keeps the first delivery of each event id.
func dedup(events []*minion.Event) []*minion.Event {
	seen := map[string]bool{}
	var out []*minion.Event
	for _, e := range events {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			out = append(out, e)
		}
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startBridge runs a bridge until the test ends (or stop is called).
func startBridge(t testing.TB, db string, pub minion.Publisher, opts minion.Options) (b *minion.Bridge, stop func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.LagInterval == 0 {
		opts.LagInterval = 50 * time.Millisecond
	}
	b = minion.New(db, pub, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("bridge: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return b, stop
}

func outboxDepth(t testing.TB, db string) int64 {
	t.Helper()
	lag, err := minion.NewOutbox("public").Lag(ctxT(t), miniontest.Connect(t, db))
	if err != nil {
		t.Fatal(err)
	}
	return lag.Depth
}

func TestBridgePublishesTheScenario(t *testing.T) {
	db, conn := installed(t)
	pub := &collector{}
	b, stop := startBridge(t, db, pub, minion.Options{PollInterval: 10 * time.Minute})
	s := miniontest.RunScenario(t, db)
	want := len(miniontest.ExpectedOrder)
	miniontest.WaitFor(t, "every event published and confirmed", func() bool { return b.Stats().Published >= uint64(want) })
	stop()
	events := pub.events(t)
	if len(events) != want {
		t.Fatalf("published %d events, want %d", len(events), want)
	}
	for _, e := range events {
		validate(t, e)
	}
	s.Check(t, events)
	if got := s.Order(events); !slices.Equal(got, miniontest.ExpectedOrder) {
		t.Errorf("published in this order:\n%q\nwant:\n%q", got, miniontest.ExpectedOrder)
	}
	if d := outboxDepth(t, db); d != 0 {
		t.Errorf("%d rows left in the outbox", d)
	}
	var published, lastSeq int64
	var lastEvent string
	err := conn.QueryRow(ctxT(t), `SELECT published, last_seq, last_event_id::TEXT FROM mercury_minion_bridge WHERE name = 'bridge'`).
		Scan(&published, &lastSeq, &lastEvent)
	if err != nil {
		t.Fatal(err)
	}
	if published != int64(want) || lastSeq != int64(want) || lastEvent != events[want-1].EventID {
		t.Errorf("cursor: published %d, last seq %d, last event %s; want %d, %d, %s", published, lastSeq, lastEvent, want, want, events[want-1].EventID)
	}
	if st := b.Stats(); st.Published != uint64(want) || st.Failures != 0 || st.Active {
		t.Errorf("stats %+v", st)
	}
}

// TestBridgeWakesOnNotify: with a poll interval of ten minutes, only the
// NOTIFY can make the bridge publish within the test's time.
func TestBridgeWakesOnNotify(t *testing.T) {
	db, conn := installed(t)
	pub := &collector{}
	b, _ := startBridge(t, db, pub, minion.Options{PollInterval: 10 * time.Minute})
	miniontest.WaitFor(t, "the bridge active", func() bool { return b.Stats().Active })
	time.Sleep(100 * time.Millisecond) // past its first look at the outbox
	for i := range 3 {
		enqueue(t, conn, "notified")
		miniontest.WaitFor(t, "the event published", func() bool { return pub.count() == i+1 })
	}
}

// TestBridgeKeepsEventsUntilConfirmed: while the broker fails, the events
// wait in the outbox and the lag shows them; a partial confirm deletes only
// what was confirmed; in the end every event is published once, in order.
func TestBridgeKeepsEventsUntilConfirmed(t *testing.T) {
	db, conn := installed(t)
	pub := &collector{failNext: 4, confirm: 2}
	b, stop := startBridge(t, db, pub, minion.Options{RetryMax: 50 * time.Millisecond})
	jobs := enqueueMany(t, conn, 5)
	miniontest.WaitFor(t, "all published and confirmed", func() bool { return b.Stats().Published == 5 })
	stop()
	st := b.Stats()
	if st.Failures != 5 || st.Published != 5 || st.LastError == "" {
		t.Errorf("stats %+v, want 5 failures (4 refusals, 1 partial) and 5 published", st)
	}
	var got []int64
	for _, e := range pub.events(t) {
		got = append(got, *e.JobID)
	}
	if !slices.Equal(got, jobs) {
		t.Fatalf("published jobs %v, want %v once each in order", got, jobs)
	}
}

func TestBridgeLagWhileTheBrokerIsDown(t *testing.T) {
	db, conn := installed(t)
	pub := &collector{failNext: 1 << 30}
	b, _ := startBridge(t, db, pub, minion.Options{RetryMax: 20 * time.Millisecond})
	for range 3 {
		enqueue(t, conn, "waits")
	}
	miniontest.WaitFor(t, "the lag measured", func() bool {
		l := b.Stats().Lag
		return l.Depth == 3 && l.Ready == 3 && l.OldestAge > 0
	})
	if d := outboxDepth(t, db); d != 3 {
		t.Fatalf("outbox depth %d, want 3", d)
	}
}

// TestBridgeResumesWithTheSameEventIDs: messages delivered but never
// confirmed (the bridge died, or the confirm was lost) are published again
// by the next bridge with the same event ids; nothing is lost.
func TestBridgeResumesWithTheSameEventIDs(t *testing.T) {
	db, conn := installed(t)
	pub := &collector{lost: 2}
	enqueueMany(t, conn, 4)
	b, stop := startBridge(t, db, pub, minion.Options{RetryMax: 10 * time.Millisecond})
	miniontest.WaitFor(t, "all published and confirmed", func() bool { return b.Stats().Published == 4 })
	stop()
	first := pub.events(t)

	// A bridge killed between publishing and confirming: the rows stay.
	pub2 := &collector{hold: make(chan struct{})}
	_, stop2 := startBridge(t, db, pub2, minion.Options{})
	enqueue(t, conn, "held")
	time.Sleep(300 * time.Millisecond)
	stop2() // Publish is waiting: nothing confirmed
	if d := outboxDepth(t, db); d != 1 {
		t.Fatalf("outbox depth %d after a bridge died mid-publish, want 1", d)
	}
	pub3 := &collector{}
	startBridge(t, db, pub3, minion.Options{})
	miniontest.WaitFor(t, "the held event published", func() bool { return pub3.count() == 1 })

	all := append(first, pub3.events(t)...)
	unique := dedup(all)
	if len(unique) != 5 {
		t.Fatalf("%d distinct events, want 5", len(unique))
	}
	if len(all) != 7 || all[0].EventID != all[2].EventID || all[1].EventID != all[3].EventID {
		t.Fatalf("want the two unconfirmed events repeated with the same ids: got %d deliveries", len(all))
	}
}

// TestBridgeStandsByWhileAnotherPublishes: b starts while a holds the
// outbox, stands by while a publishes, and publishes once a stops. It waits
// for b to say it stands by: otherwise b may reach the lock only after a
// stopped, and nothing here would show that b held back.
func TestBridgeStandsByWhileAnotherPublishes(t *testing.T) {
	db, conn := installed(t)
	a, b := &collector{}, &collector{}
	bridgeA, stopA := startBridge(t, db, a, minion.Options{Instance: "a"})
	miniontest.WaitFor(t, "bridge a active", func() bool { return bridgeA.Stats().Active })
	logB := &logRecorder{}
	bridgeB, _ := startBridge(t, db, b, minion.Options{Instance: "b", Logger: slog.New(logB)})
	miniontest.WaitFor(t, "bridge b standing by", func() bool { return logB.has(standingBy) })
	enqueue(t, conn, "one")
	// Published counts what the broker confirmed and a deleted: stopping a
	// before that would leave the row for b to publish again, a repeat the
	// design allows.
	miniontest.WaitFor(t, "published and deleted by a", func() bool { return bridgeA.Stats().Published == 1 })
	// b looks for the lock again every second: watch it over a few looks.
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); {
		if bridgeB.Stats().Active || b.count() != 0 || logB.has(publishing) {
			t.Fatal("the second bridge published while the first held the outbox")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopA()
	two := enqueue(t, conn, "two")
	miniontest.WaitFor(t, "published by b", func() bool { return b.count() > 0 })
	if a.count() != 1 {
		t.Fatalf("a published %d events, want 1", a.count())
	}
	events := b.events(t)
	if len(events) != 1 {
		t.Fatalf("b published %d events, want 1", len(events))
	}
	if e := events[0]; e.JobID == nil || *e.JobID != two || e.Bridge.Instance != "b" {
		t.Fatalf("b published %s %s by %q, want job %d's enqueue by b", e.Type, e.EventID, e.Bridge.Instance, two)
	}
}

const (
	standingBy = "minion bridge: another bridge publishes this outbox; standing by"
	publishing = "minion bridge: publishing"
)

// logRecorder is a slog.Handler keeping the messages logged, so a test can
// wait for a bridge to reach a state only its log shows.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.msgs, msg)
}

func TestBridgeRefusesToRunUninstalled(t *testing.T) {
	db := miniontest.NewMinionDatabase(t)
	err := minion.New(db, &collector{}, minion.Options{Logger: quiet}).Run(ctxT(t))
	if !errors.Is(err, minion.ErrNotInstalled) {
		t.Fatalf("Run: %v, want ErrNotInstalled", err)
	}
}

// TestBridgeCompatFrames: the frames the old notifier sent, alongside the
// events; a failing compat topic holds nothing up.
func TestBridgeCompatFrames(t *testing.T) {
	db, _ := installed(t)
	pub, compat := &collector{}, &collector{}
	startBridge(t, db, pub, minion.Options{Compat: compat, CompatTopic: "/jobs"})
	var got struct{ ID int64 }
	miniontest.Perl(t, db, &got, "check")
	miniontest.WaitFor(t, "three compat frames", func() bool { return compat.count() == 3 })
	compat.mu.Lock()
	var frames []string
	for _, m := range compat.msgs {
		if m.Topic != "/jobs" {
			t.Errorf("compat frame to %s", m.Topic)
		}
		frames = append(frames, string(m.Payload))
	}
	compat.failNext = 1
	compat.mu.Unlock()
	id := itoa(got.ID)
	want := []string{`[` + id + `,"enqueue"]`, `[` + id + `,"dequeue"]`, `[` + id + `,"finished"]`}
	if !slices.Equal(frames, want) {
		t.Fatalf("compat frames %v, want %v", frames, want)
	}
	miniontest.Perl(t, db, nil, "check")
	miniontest.WaitFor(t, "events still published", func() bool { return pub.count() == 6 })
}
