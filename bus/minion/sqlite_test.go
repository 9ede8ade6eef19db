package minion_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
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
