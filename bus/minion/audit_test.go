package minion_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// startAuditor runs an auditor until the test ends (or stop is called).
func startAuditor(t testing.TB, db, broker string) (a *minion.Auditor, stop func()) {
	t.Helper()
	a, err := minion.NewAuditor(db, minion.AuditOptions{Broker: broker, Logger: quiet, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("auditor: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	miniontest.WaitFor(t, "the auditor subscribed", func() bool { return a.Stats().Connected })
	return a, stop
}

// jobEvents has the real Minion perform one job and returns its three
// events, built from the outbox.
func jobEvents(t testing.TB) []*minion.Event {
	t.Helper()
	db, conn := installed(t)
	miniontest.Perl(t, db, nil, "check")
	evs := drain(t, conn)
	if len(evs) != 3 {
		t.Fatalf("%d events for one job", len(evs))
	}
	return evs
}

func publishEvents(t testing.TB, broker string, evs ...*minion.Event) []uint64 {
	t.Helper()
	var msgs []minion.Message
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		topic := minion.Topic(minion.DefaultTopic, e)
		msgs = append(msgs, minion.Message{Topic: topic, Key: topic, Payload: b})
	}
	seqs, err := (&minion.HTTPPublisher{Broker: broker, Concurrency: 1}).Publish(ctxT(t), msgs)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func count(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(ctxT(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestAuditKeepsEachEventOnce(t *testing.T) {
	evs := jobEvents(t)
	broker := startBroker(t, 1000)
	db := miniontest.NewDatabase(t)
	conn := miniontest.Connect(t, db)
	a, _ := startAuditor(t, db, broker)

	publishEvents(t, broker, evs...)
	publishEvents(t, broker, evs[0]) // a repeat, same event id
	junk, err := (&minion.HTTPPublisher{Broker: broker}).Publish(ctxT(t), []minion.Message{{Topic: "/audit/minion/x", Payload: []byte("not an event")}})
	if err != nil {
		t.Fatal(err)
	}
	miniontest.WaitFor(t, "everything handled", func() bool {
		s := a.Stats()
		return s.Stored == 3 && s.Duplicates == 1 && s.Invalid == 1 && s.LastSeq == junk[0]
	})
	rows, err := conn.Query(ctxT(t), `SELECT event_id::TEXT, type, job_id, task, queue, time, topic FROM mercury_audit_events ORDER BY time, seq`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var id, typ, task, queue, topic string
		var job int64
		var tm time.Time
		if err := rows.Scan(&id, &typ, &job, &task, &queue, &tm, &topic); err != nil {
			t.Fatal(err)
		}
		e := evs[i]
		if id != e.EventID || typ != e.Type || job != *e.JobID || task != "add" || queue != "default" ||
			!tm.Equal(e.Time) || topic != minion.Topic(minion.DefaultTopic, e) {
			t.Errorf("row %d: %s %s %d %s %s %v %s, want event %+v", i, id, typ, job, task, queue, tm, topic, e)
		}
		i++
	}
	if rows.Err() != nil || i != 3 {
		t.Fatalf("%d rows (%v), want 3", i, rows.Err())
	}
	if c := count(t, conn, `SELECT seq FROM mercury_audit_cursor WHERE topic = '/audit/minion'`); uint64(c) != junk[0] {
		t.Fatalf("cursor %d, want %d", c, junk[0])
	}
	for _, sql := range []string{
		`UPDATE mercury_audit_events SET type = 'finished'`,
		`DELETE FROM mercury_audit_events`,
		`TRUNCATE mercury_audit_events`,
	} {
		if _, err := conn.Exec(ctxT(t), sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", sql, err)
		}
	}
}

// TestAuditResumesAfterItsCursor: events published while the logger is
// down are replayed from the broker's history when it comes back, and
// nothing is stored twice.
func TestAuditResumesAfterItsCursor(t *testing.T) {
	evs := jobEvents(t)
	broker := startBroker(t, 1000)
	db := miniontest.NewDatabase(t)
	conn := miniontest.Connect(t, db)
	a, stop := startAuditor(t, db, broker)
	publishEvents(t, broker, evs[0])
	miniontest.WaitFor(t, "one stored", func() bool { return a.Stats().Stored == 1 })
	stop()
	publishEvents(t, broker, evs[1:]...)
	a2, _ := startAuditor(t, db, broker)
	miniontest.WaitFor(t, "the rest stored", func() bool { return a2.Stats().Stored == 2 })
	if s := a2.Stats(); s.Duplicates != 0 || s.Gaps != 0 {
		t.Fatalf("after resuming: %+v", s)
	}
	if n := count(t, conn, `SELECT count(*) FROM mercury_audit_events`); n != 3 {
		t.Fatalf("%d events stored, want 3", n)
	}
}

// TestAuditRecordsGaps: the broker keeps two messages; five were published
// while the logger was down; it stores the two and records the three it
// missed.
func TestAuditRecordsGaps(t *testing.T) {
	evs := append(jobEvents(t), jobEvents(t)...)
	broker := startBroker(t, 2)
	db := miniontest.NewDatabase(t)
	conn := miniontest.Connect(t, db)
	a, stop := startAuditor(t, db, broker)
	first := publishEvents(t, broker, evs[0])
	miniontest.WaitFor(t, "one stored", func() bool { return a.Stats().Stored == 1 })
	stop()
	seqs := publishEvents(t, broker, evs[1:]...)
	a2, _ := startAuditor(t, db, broker)
	miniontest.WaitFor(t, "the kept ones stored", func() bool { return a2.Stats().Stored == 2 && a2.Stats().Gaps == 1 })
	var from, to int64
	if err := conn.QueryRow(ctxT(t), `SELECT from_seq, to_seq FROM mercury_audit_gaps`).Scan(&from, &to); err != nil {
		t.Fatal(err)
	}
	if uint64(from) != first[0]+1 || uint64(to) != seqs[2] {
		t.Fatalf("gap %d..%d, want %d..%d", from, to, first[0]+1, seqs[2])
	}
}

func TestExportAndTimeline(t *testing.T) {
	db, conn := installed(t)
	s := miniontest.RunScenario(t, db)
	evs := drain(t, conn)
	l, err := minion.NewAuditLog("")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Install(ctxT(t), conn); err != nil {
		t.Fatal(err)
	}
	if err := l.Install(ctxT(t), conn); err != nil {
		t.Fatalf("second install: %v", err)
	}
	var msgs []minion.Received
	for i, e := range evs {
		b, _ := json.Marshal(e)
		msgs = append(msgs, minion.Received{Seq: uint64(100 + i), Topic: minion.Topic(minion.DefaultTopic, e), Data: b})
	}
	if n, err := l.Store(ctxT(t), conn, minion.DefaultTopic, msgs); err != nil || n != len(evs) {
		t.Fatalf("stored %d of %d: %v", n, len(evs), err)
	}
	if n, err := l.Store(ctxT(t), conn, minion.DefaultTopic, msgs[:5]); err != nil || n != 0 {
		t.Fatalf("storing again: %d new, %v", n, err)
	}

	var out bytes.Buffer
	n, err := l.Export(ctxT(t), conn, minion.ExportFilter{}, &out)
	if err != nil || n != len(evs) {
		t.Fatalf("exported %d: %v", n, err)
	}
	var exported []*minion.Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e minion.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		validate(t, &e)
		exported = append(exported, &e)
	}
	s.Check(t, exported)

	flaky := s.IDs["flaky"]
	out.Reset()
	if n, err := l.Export(ctxT(t), conn, minion.ExportFilter{JobID: &flaky, Type: "failed"}, &out); err != nil || n != 3 {
		t.Fatalf("flaky's failures: %d (%v)", n, err)
	}
	mid := evs[len(evs)/2].Time
	out.Reset()
	before, _ := l.Export(ctxT(t), conn, minion.ExportFilter{Until: mid}, &out)
	after, _ := l.Export(ctxT(t), conn, minion.ExportFilter{Since: mid}, &out)
	if before+after != len(evs) || before == 0 || after == 0 {
		t.Fatalf("before %d + since %d != %d", before, after, len(evs))
	}

	jobs, err := l.JobEvents(ctxT(t), conn, s.IDs["lost"])
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := minion.WriteTimeline(&out, jobs); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if testing.Verbose() {
		t.Log("\n" + text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	wantLines := []string{
		"job " + itoa(s.IDs["lost"]) + "  task add  queue lost",
		"  args [5,5]  priority 0  attempts 2",
		"",
	}
	for i, w := range wantLines {
		if lines[i] != w {
			t.Fatalf("timeline line %d: %q, want %q\n%s", i, lines[i], w, text)
		}
	}
	worker := itoa(s.IDs["lost_worker"])
	for i, w := range []string{
		"enqueued",
		"started              attempt 1  worker " + worker + " (" + s.Host + " pid " + itoa(s.PID) + ")",
		`worker_lost          result "Worker went away"  after `,
		"retried (automatic)  attempts 2 → 1",
		"started              attempt 2  worker ",
		`finished             result {"sum":10}  after `,
		"purged               was finished",
	} {
		line := lines[len(wantLines)+i]
		if !strings.Contains(line, "Z  "+w) || !strings.HasPrefix(line, "20") {
			t.Errorf("timeline line %q, want %q after the time", line, w)
		}
	}
	if !strings.Contains(text, "worker "+worker+" ("+s.Host+" pid "+itoa(s.PID)+") gone") {
		t.Errorf("the lost worker is not shown as gone:\n%s", text)
	}
	if _, err := l.JobEvents(ctxT(t), conn, 999999); err == nil {
		t.Fatal("a job without events has a timeline")
	}
}
