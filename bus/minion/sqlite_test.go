package minion_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
	"github.com/mercury-broker/mercury/web"
)

// sqliteInstalled is Minion's SQLite database with the bridge installed.
func sqliteInstalled(t testing.TB) string {
	t.Helper()
	path := miniontest.NewSQLiteMinion(t)
	db, err := minion.OpenSQLite(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 { // idempotent
		in, err := minion.InstallSQLite(ctxT(t), db)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Complete() {
			t.Fatalf("installed: %+v", in)
		}
	}
	return path
}

func startSQLiteBridge(t testing.TB, path string, pub minion.Publisher, opts minion.Options) (b *minion.Bridge, stop func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	b = minion.NewSQLite(path, pub, opts)
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

func sqliteDepth(t testing.TB, path string) int64 {
	t.Helper()
	db, err := minion.OpenSQLite(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := minion.ReadSQLiteStatus(ctxT(t), db)
	if err != nil {
		t.Fatal(err)
	}
	return st.Lag.Depth
}

// TestSQLiteScenarioEvents runs the real Minion on SQLite through enqueue
// (arguments, notes, priorities, parents, a delay), a worker performing
// jobs (finish with a result, notes while running, fail with an automatic
// retry), a manual retry into another queue, the delayed job removed
// before it ran and a note from outside, with the bridge running, and
// checks each job's events arrive once, in order, in full detail.
func TestSQLiteScenarioEvents(t *testing.T) {
	path := sqliteInstalled(t)
	c := &collector{}
	startSQLiteBridge(t, path, c, minion.Options{})
	var out struct {
		IDs  map[string]int64 `json:"ids"`
		Host string           `json:"host"`
		PID  int64            `json:"pid"`
	}
	miniontest.Perl(t, miniontest.SQLiteDSN(path), &out, "lite")
	miniontest.WaitFor(t, "the outbox drained", func() bool { return sqliteDepth(t, path) == 0 && c.count() > 0 })
	events := c.events(t)
	seen := map[string]bool{}
	perJob := map[int64][]string{}
	for _, e := range events {
		validate(t, e)
		if seen[e.EventID] {
			t.Errorf("event %s delivered twice", e.EventID)
		}
		seen[e.EventID] = true
		typ := e.Type
		if e.Retry != "" {
			typ += "/" + e.Retry
		}
		perJob[*e.JobID] = append(perJob[*e.JobID], typ)
	}
	want := map[string][]string{
		"add":      {"enqueued", "started", "finished"},
		"child":    {"enqueued", "started", "finished"},
		"flaky":    {"enqueued", "started", "failed", "retried/automatic", "started", "failed", "retried/manual", "started", "failed", "noted"},
		"delayed":  {"enqueued", "removed"},
		"progress": {"enqueued", "started", "noted", "finished"},
	}
	for name, w := range want {
		if got := perJob[out.IDs[name]]; !slices.Equal(got, w) {
			t.Errorf("job %s: events %q, want %q", name, got, w)
		}
	}
	for _, e := range events {
		j := e.Job
		switch {
		case j.ID == out.IDs["add"] && e.Type == minion.TypeFinished:
			if !jsonEq(j.Result, `{"sum":5}`) || j.Priority != 5 || !jsonEq(j.Notes, `{"origin":"scenario"}`) ||
				!jsonEq(j.Args, `[2,3]`) || j.Finished == nil || j.Started == nil || j.Created == nil {
				t.Errorf("finished add: %+v", j)
			}
			if j.Worker == nil || j.Worker.Host == nil || *j.Worker.Host != out.Host || j.Worker.PID == nil || *j.Worker.PID != out.PID {
				t.Errorf("finished add: worker %+v, want host %s pid %d", j.Worker, out.Host, out.PID)
			}
			if _, ok := e.Changes["result"]; !ok {
				t.Errorf("finished add: changes %v lack result", keys(e.Changes))
			}
		case j.ID == out.IDs["child"] && e.Type == minion.TypeEnqueued:
			if !slices.Equal(j.Parents, []int64{out.IDs["add"]}) {
				t.Errorf("child: parents %v", j.Parents)
			}
		case j.ID == out.IDs["flaky"] && e.Retry == minion.RetryManual:
			if j.Queue != "important" || *e.StateBefore != "failed" || *e.StateAfter != "inactive" {
				t.Errorf("manual retry: %+v", j)
			}
		case j.ID == out.IDs["delayed"] && e.Type == minion.TypeRemoved:
			if j.Delayed == nil || !j.Delayed.After(time.Now().Add(50*time.Minute)) || j.State != "inactive" {
				t.Errorf("removed delayed job: %+v", j)
			}
		case j.ID == out.IDs["progress"] && e.Type == minion.TypeNoted:
			if !jsonEq(j.Notes, `{"progress":50,"stage":"half"}`) {
				t.Errorf("noted progress: notes %s", j.Notes)
			}
		}
	}
}

func jsonEq(raw []byte, want string) bool {
	var a, b any
	if json.Unmarshal(raw, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func keys(m map[string]minion.FieldChange) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// startBrokerOn runs the broker (as startBroker) on a listener made for
// addr, which must be free.
func startBrokerOn(t testing.TB, addr string, history int) {
	t.Helper()
	pol, err := broker.NewPolicies([]broker.Policy{{Bus: "/audit/minion", History: broker.History{Messages: history}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(broker.New(broker.Options{Policies: pol, Logger: quiet}), web.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSQLiteOutageWithWorkers runs 200 jobs on two real Minion workers on
// SQLite while the bridge runs and the broker is down: no worker sees
// "database is locked", and once the broker is up every event reaches the
// audit log kept in another SQLite file, once.
func TestSQLiteOutageWithWorkers(t *testing.T) {
	path := sqliteInstalled(t)
	addr := freeAddr(t)
	brokerURL := "http://" + addr
	startSQLiteBridge(t, path, &minion.HTTPPublisher{Broker: brokerURL}, minion.Options{RetryMax: 200 * time.Millisecond})
	auditPath := filepath.Join(t.TempDir(), "audit.db")
	a, err := minion.NewSQLiteAuditor(auditPath, minion.AuditOptions{Broker: "ws://" + addr, Logger: quiet, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAudit := context.WithCancel(context.Background())
	audited := make(chan error, 1)
	go func() { audited <- a.Run(actx) }()
	defer func() { stopAudit(); <-audited }()

	dsn := miniontest.SQLiteDSN(path)
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, dsn, &enq, "enqueue", "200", "2")
	w1 := miniontest.Start(t, dsn, "work", "4")
	w2 := miniontest.Start(t, dsn, "work", "4")
	w1.Wait(t, 3*time.Minute)
	w2.Wait(t, 3*time.Minute)
	for _, w := range []*miniontest.Process{w1, w2} {
		if s := w.Stderr.String() + w.Stdout.String(); strings.Contains(s, "locked") || strings.Contains(s, "busy") {
			t.Errorf("a worker saw a lock error:\n%s", s)
		}
	}
	if d := sqliteDepth(t, path); d < 600 {
		t.Errorf("outbox holds %d rows while the broker is down, want at least 600", d)
	}

	startBrokerOn(t, addr, 10000)
	db, err := minion.OpenSQLite(auditPath, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int64 {
		var n int64
		if err := db.QueryRowContext(ctxT(t), q).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	miniontest.WaitFor(t, "every job finished in the audit log", func() bool {
		return count(`SELECT count(*) FROM mercury_audit_events WHERE type = 'finished'`) == 200
	})
	for _, typ := range []string{"enqueued", "started", "finished"} {
		if n := count(`SELECT count(DISTINCT job_id) FROM mercury_audit_events WHERE type = '` + typ + `'`); n != 200 {
			t.Errorf("%s: %d jobs, want 200", typ, n)
		}
	}
	if n := count(`SELECT count(*) FROM mercury_audit_events`); n != 600 {
		t.Errorf("%d events in the audit log, want 600", n)
	}
	var buf strings.Builder
	n, err := minion.SQLiteAuditLog{DB: db}.Export(ctxT(t), minion.ExportFilter{JobID: &enq.IDs[0]}, &buf)
	if err != nil || n != 3 {
		t.Errorf("export of job %d: %d events, %v", enq.IDs[0], n, err)
	}
	evs, err := minion.SQLiteAuditLog{DB: db}.JobEvents(ctxT(t), enq.IDs[0])
	if err != nil || len(evs) != 3 || evs[0].Type != "enqueued" || evs[2].Type != "finished" {
		t.Errorf("timeline of job %d: %v, %v", enq.IDs[0], evs, err)
	}
	miniontest.WaitFor(t, "the outbox drained", func() bool { return sqliteDepth(t, path) == 0 })
	for _, q := range []string{`DELETE FROM mercury_audit_events`, `UPDATE mercury_audit_events SET type = 'x'`} {
		if _, err := db.ExecContext(ctxT(t), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s on the audit log: %v, want it refused as append-only", q, err)
		}
	}
}

// TestSQLiteTakeoverFromAStalledBridge: a bridge stuck in a publish for
// longer than its lease loses the lock; a standby takes over and publishes
// everything, and the stalled one, when its publish returns, deletes
// nothing and counts nothing as published.
func TestSQLiteTakeoverFromAStalledBridge(t *testing.T) {
	path := sqliteInstalled(t)
	stalled := &collector{hold: make(chan struct{})}
	a, _ := startSQLiteBridge(t, path, stalled, minion.Options{Instance: "a", LockLease: time.Second})
	miniontest.WaitFor(t, "bridge a active", func() bool { return a.Stats().Active })
	standby := &collector{}
	b, _ := startSQLiteBridge(t, path, standby, minion.Options{Instance: "b", LockLease: time.Second})

	var enq struct{ IDs []int64 }
	miniontest.Perl(t, miniontest.SQLiteDSN(path), &enq, "enqueue", "10", "0")
	miniontest.WaitFor(t, "bridge b took over", func() bool { return b.Stats().Active })
	miniontest.WaitFor(t, "the outbox drained by b", func() bool { return sqliteDepth(t, path) == 0 })
	close(stalled.hold)
	miniontest.WaitFor(t, "bridge a gave up", func() bool { return !a.Stats().Active })
	if got := a.Stats().Published; got != 0 {
		t.Errorf("the stalled bridge counted %d events as published after losing the lock", got)
	}
	ids := map[string]bool{}
	for _, e := range standby.events(t) {
		ids[e.EventID] = true
	}
	if len(ids) != len(enq.IDs) || b.Stats().Published != uint64(len(enq.IDs)) {
		t.Errorf("bridge b: %d events, %d published, want %d", len(ids), b.Stats().Published, len(enq.IDs))
	}
	for _, e := range stalled.events(t) {
		if !ids[e.EventID] {
			t.Errorf("event %s went only through the stalled bridge", e.EventID)
		}
	}
}

// TestSQLiteWorkersWhileBridgePublishes: two real Minion workers run 200
// jobs on SQLite while the bridge reads, publishes and deletes outbox rows
// all along; no worker sees "database is locked", and each job's events
// arrive once, in order.
func TestSQLiteWorkersWhileBridgePublishes(t *testing.T) {
	path := sqliteInstalled(t)
	c := &collector{}
	startSQLiteBridge(t, path, c, minion.Options{Batch: 20})
	dsn := miniontest.SQLiteDSN(path)
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, dsn, &enq, "enqueue", "200", "0")
	workers := []*miniontest.Process{miniontest.Start(t, dsn, "work", "4"), miniontest.Start(t, dsn, "work", "4")}
	for _, w := range workers {
		w.Wait(t, 3*time.Minute)
		if s := w.Stderr.String() + w.Stdout.String(); strings.Contains(s, "locked") || strings.Contains(s, "busy") {
			t.Errorf("a worker saw a lock error:\n%s", s)
		}
	}
	miniontest.WaitFor(t, "the outbox drained", func() bool { return sqliteDepth(t, path) == 0 })
	byJob := map[int64][]string{}
	seen := map[string]bool{}
	for _, e := range c.events(t) {
		if seen[e.EventID] {
			t.Errorf("event %s delivered twice", e.EventID)
		}
		seen[e.EventID] = true
		byJob[*e.JobID] = append(byJob[*e.JobID], e.Type)
	}
	for _, id := range enq.IDs {
		if w := []string{"enqueued", "started", "finished"}; !slices.Equal(byJob[id], w) {
			t.Errorf("job %d: %v, want %v", id, byJob[id], w)
		}
	}
}
