package miniontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
)

// Scenario is what "driver.pl DSN scenario" printed: the ids of its jobs,
// and the host and pid of the process its workers ran in.
type Scenario struct {
	IDs  map[string]int64 `json:"ids"`
	Host string           `json:"host"`
	PID  int64            `json:"pid"`
}

// RunScenario runs the audit scenario against dbURL with the real Minion.
func RunScenario(t testing.TB, dbURL string) Scenario {
	t.Helper()
	var s Scenario
	Perl(t, dbURL, &s, "scenario")
	for _, k := range []string{"add", "child", "flaky", "delayed", "progress", "lost", "stuck", "lost_worker"} {
		if s.IDs[k] == 0 {
			t.Fatalf("scenario printed no id for %s: %+v", k, s)
		}
	}
	return s
}

// Step is one expected event of a job: its type (with the retry kind after
// a slash: "retried/automatic").
type Step string

// ExpectedSteps is every job's history in the scenario, in order.
var ExpectedSteps = map[string][]Step{
	"add":      {"enqueued", "started", "finished", "purged"},
	"child":    {"enqueued", "started", "finished", "purged"},
	"flaky":    {"enqueued", "started", "failed", "retried/automatic", "started", "failed", "retried/manual", "started", "failed", "noted"},
	"delayed":  {"enqueued", "removed"},
	"progress": {"enqueued", "started", "noted", "finished", "purged"},
	"lost":     {"enqueued", "started", "worker_lost", "retried/automatic", "started", "finished", "purged"},
	"stuck":    {"enqueued", "stuck"},
}

// ExpectedOrder is the scenario's events in the order they happened (the
// script runs one statement at a time); the four purges come from one
// DELETE, in an order PostgreSQL chooses. "" stands for the truncation.
var ExpectedOrder = []string{
	"add enqueued", "child enqueued", "flaky enqueued", "delayed enqueued", "progress enqueued",
	"add started", "add finished", "child started", "child finished",
	"flaky started", "flaky failed", "flaky retried/automatic", "flaky started", "flaky failed",
	"progress started", "progress noted", "progress finished",
	"flaky retried/manual", "flaky started", "flaky failed",
	"delayed removed",
	"lost enqueued", "lost started", "lost worker_lost", "lost retried/automatic", "lost started", "lost finished",
	"stuck enqueued", "stuck stuck",
	"* purged", "* purged", "* purged", "* purged",
	"flaky noted",
	" truncated",
}

func step(e *minion.Event) Step {
	if e.Retry != "" {
		return Step(e.Type + "/" + e.Retry)
	}
	return Step(e.Type)
}

// Order returns the events as ExpectedOrder writes them, purges as
// "* purged".
func (s Scenario) Order(events []*minion.Event) []string {
	names := map[int64]string{}
	for k, id := range s.IDs {
		if k != "lost_worker" {
			names[id] = k
		}
	}
	var out []string
	for _, e := range events {
		name := ""
		if e.JobID != nil {
			name = names[*e.JobID]
		}
		if e.Type == minion.TypePurged {
			name = "*"
		}
		out = append(out, name+" "+string(step(e)))
	}
	return out
}

// Check verifies events — everything the bridge emitted for the scenario,
// each job's events in the order they happened — field by field.
func (s Scenario) Check(t testing.TB, events []*minion.Event) {
	t.Helper()
	byJob := map[int64][]*minion.Event{}
	var truncations []*minion.Event
	for _, e := range events {
		switch {
		case e.Type == minion.TypeTruncated:
			truncations = append(truncations, e)
		case e.JobID != nil:
			byJob[*e.JobID] = append(byJob[*e.JobID], e)
		default:
			t.Errorf("event %s of type %s names no job", e.EventID, e.Type)
		}
	}
	if len(truncations) != 1 {
		t.Errorf("got %d truncated events, want 1", len(truncations))
	} else {
		tr := truncations[0]
		expect(t, "truncated", tr.Entity == "table" && tr.Job == nil && tr.JobID == nil &&
			tr.DB.Operation == "TRUNCATE" && tr.DB.Table == "minion_jobs" && strings.HasPrefix(tr.DB.Query, "TRUNCATE minion_jobs"),
			"%+v", tr)
	}
	ids := map[string]bool{}
	for _, e := range events {
		if ids[e.EventID] {
			t.Errorf("event id %s appears twice", e.EventID)
		}
		ids[e.EventID] = true
		s.checkCommon(t, e)
	}
	for name, want := range ExpectedSteps {
		evs := byJob[s.IDs[name]]
		var got []Step
		for _, e := range evs {
			got = append(got, step(e))
		}
		if !slices.Equal(got, want) {
			t.Errorf("job %s (%d): events %v, want %v", name, s.IDs[name], got, want)
			continue
		}
		s.checkJob(t, name, evs)
	}
	// The child ran only after its parent finished.
	if add, child := byJob[s.IDs["add"]], byJob[s.IDs["child"]]; len(add) == 4 && len(child) == 4 {
		expect(t, "child", !child[1].Job.Started.Before(*add[2].Job.Finished), "started %v before its parent finished %v",
			child[1].Job.Started, add[2].Job.Finished)
	}
	if len(byJob) != len(ExpectedSteps) {
		t.Errorf("events for %d jobs, want %d", len(byJob), len(ExpectedSteps))
	}
}

func expect(t testing.TB, what string, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf("%s: "+format, append([]any{what}, args...)...)
	}
}

func jsonIs(raw json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(raw, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func keys(m map[string]minion.FieldChange) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkCommon checks what every event carries.
func (s Scenario) checkCommon(t testing.TB, e *minion.Event) {
	t.Helper()
	what := fmt.Sprintf("event %s (%s)", e.EventID, e.Type)
	expect(t, what, len(e.EventID) == 36, "event id %q is not a UUID", e.EventID)
	expect(t, what, e.SchemaVersion == minion.SchemaVersion, "schema_version %d", e.SchemaVersion)
	expect(t, what, !e.Time.IsZero() && e.Time.Location() == time.UTC, "time %v", e.Time)
	expect(t, what, !e.DB.TxTime.After(e.Time), "tx_time %v after time %v", e.DB.TxTime, e.Time)
	expect(t, what, e.DB.User == "postgres", "db.user %q", e.DB.User)
	expect(t, what, strings.HasPrefix(e.DB.Database, "mercury_minion_"), "db.database %q", e.DB.Database)
	expect(t, what, e.DB.Schema == "public" && e.DB.OutboxID > 0 && e.DB.TxID > 0 && e.DB.BackendPID > 0,
		"db %+v", e.DB)
	expect(t, what, e.DB.ClientAddr != nil && *e.DB.ClientAddr == "127.0.0.1", "db.client_addr %v", e.DB.ClientAddr)
	expect(t, what, e.Bridge.Instance != "" && !e.Bridge.Read.Before(e.Time), "bridge %+v", e.Bridge)
	if e.Job == nil {
		return
	}
	j := e.Job
	expect(t, what, *e.JobID == j.ID && *e.Task == j.Task && *e.Queue == j.Queue, "job_id/task/queue %d/%s/%s vs job %+v", *e.JobID, *e.Task, *e.Queue, j)
	expect(t, what, e.Entity == "job" && e.DB.Table == "minion_jobs", "entity %s table %s", e.Entity, e.DB.Table)
	expect(t, what, j.Created != nil && j.Delayed != nil && !j.Delayed.Before(*j.Created), "created %v delayed %v", j.Created, j.Delayed)
	expect(t, what, j.Expires == nil && !j.Lax && j.Extra == nil, "expires %v lax %v extra %v", j.Expires, j.Lax, j.Extra)
	if e.Type != minion.TypeEnqueued && e.Type != minion.TypeRemoved && !(e.Type == minion.TypeStuck) {
		expect(t, what, j.Worker != nil, "no worker")
	}
	if j.Worker != nil {
		expect(t, what, j.Worker.Host != nil && *j.Worker.Host == s.Host && j.Worker.PID != nil && *j.Worker.PID == s.PID,
			"worker %+v, want host %s pid %d", j.Worker, s.Host, s.PID)
	}
	switch e.DB.Operation {
	case "INSERT":
		expect(t, what, e.StateBefore == nil && e.StateAfter != nil && *e.StateAfter == "inactive" && len(e.Changes) == 0,
			"insert: states %v→%v changes %v", e.StateBefore, e.StateAfter, keys(e.Changes))
		expect(t, what, strings.HasPrefix(e.DB.Query, "INSERT INTO minion_jobs"), "query %q", e.DB.Query)
	case "UPDATE":
		expect(t, what, e.StateBefore != nil && e.StateAfter != nil && *e.StateAfter == j.State && len(e.Changes) > 0,
			"update: states %v→%v changes %v", e.StateBefore, e.StateAfter, keys(e.Changes))
		if c, ok := e.Changes["state"]; ok {
			expect(t, what, jsonIs(c.Old, `"`+*e.StateBefore+`"`) && jsonIs(c.New, `"`+*e.StateAfter+`"`),
				"changes.state %s→%s", c.Old, c.New)
		} else {
			expect(t, what, *e.StateBefore == *e.StateAfter, "state changed but not in changes")
		}
		expect(t, what, strings.HasPrefix(e.DB.Query, "UPDATE minion_jobs"), "query %q", e.DB.Query)
	case "DELETE":
		expect(t, what, e.StateBefore != nil && *e.StateBefore == j.State && e.StateAfter == nil && len(e.Changes) == 0,
			"delete: states %v→%v changes %v", e.StateBefore, e.StateAfter, keys(e.Changes))
		expect(t, what, strings.HasPrefix(e.DB.Query, "DELETE FROM minion_jobs"), "query %q", e.DB.Query)
	}
}

// checkJob checks one job's events against the scenario, field by field.
func (s Scenario) checkJob(t testing.TB, name string, evs []*minion.Event) {
	t.Helper()
	at := func(i int) (*minion.Event, string) {
		return evs[i], fmt.Sprintf("job %s event %d (%s)", name, i, step(evs[i]))
	}
	changed := func(what string, e *minion.Event, want ...string) {
		t.Helper()
		slices.Sort(want)
		expect(t, what, slices.Equal(keys(e.Changes), want), "changed %v, want %v", keys(e.Changes), want)
	}
	enqueued := func(task, queue, args string, priority, attempts int64, notes string, parents []int64) {
		t.Helper()
		e, what := at(0)
		j := e.Job
		expect(t, what, j.Task == task && j.Queue == queue && jsonIs(j.Args, args) && j.Priority == priority &&
			j.Attempts == attempts && jsonIs(j.Notes, notes) && slices.Equal(j.Parents, parents),
			"job %+v args %s notes %s, want task %s queue %s args %s priority %d attempts %d notes %s parents %v",
			j, j.Args, j.Notes, task, queue, args, priority, attempts, notes, parents)
		expect(t, what, j.State == "inactive" && j.Retries == 0 && jsonIs(j.Result, "null") && j.Started == nil &&
			j.Finished == nil && j.Retried == nil && j.Worker == nil, "fresh job %+v", j)
	}
	started := func(i int, retries int64) int64 {
		t.Helper()
		e, what := at(i)
		j := e.Job
		expect(t, what, j.State == "active" && j.Started != nil && j.Retries == retries && j.Worker != nil && !j.Worker.Gone,
			"job %+v, want active with retries %d and a live worker", j, retries)
		if i > 0 && evs[i-1].Job.Worker != nil && evs[i-1].Job.Worker.ID == j.Worker.ID {
			changed(what, e, "started", "state")
		} else {
			changed(what, e, "started", "state", "worker")
		}
		return j.Worker.ID
	}
	ended := func(i int, state, result string, worker int64) {
		t.Helper()
		e, what := at(i)
		j := e.Job
		expect(t, what, j.State == state && jsonIs(j.Result, result) && j.Finished != nil && !j.Finished.Before(*j.Started) &&
			j.Worker != nil && j.Worker.ID == worker, "job %+v result %s, want %s with %s by worker %d", j, j.Result, state, result, worker)
		prev := evs[i-1].Job
		want := []string{"finished", "state"}
		if !jsonIs(prev.Result, result) {
			want = append(want, "result")
		}
		changed(what, e, want...)
		if c, ok := e.Changes["result"]; ok {
			expect(t, what, jsonIs(c.New, result) && jsonIs(c.Old, string(prev.Result)), "changes.result %s→%s", c.Old, c.New)
		}
	}
	retried := func(i int, attempts, retries int64, queue string, manual bool) {
		t.Helper()
		e, what := at(i)
		j, prev := e.Job, evs[i-1].Job
		expect(t, what, j.State == "inactive" && j.Attempts == attempts && j.Retries == retries && j.Queue == queue &&
			j.Retried != nil && !j.Delayed.After(j.Retried.Add(time.Second)), "job %+v, want attempts %d retries %d queue %s", j, attempts, retries, queue)
		expect(t, what, j.Finished != nil && prev.Finished != nil && j.Finished.Equal(*prev.Finished), "finished %v lost", j.Finished)
		want := []string{"delayed", "retried", "retries", "state"}
		if attempts != prev.Attempts {
			want = append(want, "attempts")
		}
		if queue != prev.Queue {
			want = append(want, "queue")
			c := e.Changes["queue"]
			expect(t, what, jsonIs(c.Old, `"`+prev.Queue+`"`) && jsonIs(c.New, `"`+queue+`"`), "changes.queue %s→%s", c.Old, c.New)
		}
		changed(what, e, want...)
		r := e.Changes["retries"]
		expect(t, what, jsonIs(r.Old, fmt.Sprint(retries-1)) && jsonIs(r.New, fmt.Sprint(retries)), "changes.retries %s→%s", r.Old, r.New)
	}
	removedOrPurged := func(i int, state string) {
		t.Helper()
		e, what := at(i)
		expect(t, what, e.Job.State == state && *e.StateBefore == state, "job %+v, want %s", e.Job, state)
	}
	noted := func(i int, state, notes string) {
		t.Helper()
		e, what := at(i)
		changed(what, e, "notes")
		expect(t, what, e.Job.State == state && *e.StateBefore == state && jsonIs(e.Job.Notes, notes) &&
			jsonIs(e.Changes["notes"].New, notes), "job %+v notes %s, want %s in state %s", e.Job, e.Job.Notes, notes, state)
		expect(t, what, strings.HasPrefix(e.DB.Query, "UPDATE minion_jobs SET notes"), "query %q", e.DB.Query)
	}

	switch name {
	case "add":
		enqueued("add", "default", "[2,3]", 5, 1, `{"origin":"scenario"}`, []int64{})
		w := started(1, 0)
		ended(2, "finished", `{"sum":5}`, w)
		removedOrPurged(3, "finished")
	case "child":
		enqueued("add", "default", "[1,1]", 1, 1, `{}`, []int64{s.IDs["add"]})
		w := started(1, 0)
		ended(2, "finished", `{"sum":2}`, w)
		removedOrPurged(3, "finished")
	case "flaky":
		enqueued("fail", "default", `["x"]`, 0, 2, `{}`, []int64{})
		w1 := started(1, 0)
		ended(2, "failed", `"boom\n"`, w1)
		retried(3, 1, 1, "default", false)
		w2 := started(4, 1)
		expect(t, "flaky", w1 == w2, "the second attempt ran on worker %d, the first on %d (one perform_jobs)", w2, w1)
		ended(5, "failed", `"boom\n"`, w2)
		retried(6, 1, 2, "important", true)
		w3 := started(7, 2)
		expect(t, "flaky", w3 != w1, "the manual retry ran on the same worker %d", w3)
		expect(t, "flaky", evs[7].Job.Queue == "important" && *evs[7].Queue == "important", "queue %s", evs[7].Job.Queue)
		ended(8, "failed", `"boom\n"`, w3)
		noted(9, "failed", `{"checked":"yes"}`)
	case "delayed":
		enqueued("add", "default", "[0,0]", 0, 1, `{}`, []int64{})
		j := evs[0].Job
		expect(t, "delayed", j.Delayed.Sub(*j.Created) > 3590*time.Second, "delayed %v created %v", j.Delayed, j.Created)
		removedOrPurged(1, "inactive")
		expect(t, "delayed removed", strings.HasPrefix(evs[1].DB.Query, "DELETE FROM minion_jobs WHERE id = $1"), "query %q", evs[1].DB.Query)
	case "progress":
		enqueued("progress", "default", "[]", 0, 1, `{}`, []int64{})
		w := started(1, 0)
		noted(2, "active", `{"progress":50,"stage":"half"}`)
		ended(3, "finished", `"done"`, w)
		removedOrPurged(4, "finished")
	case "lost":
		enqueued("add", "lost", "[5,5]", 0, 2, `{}`, []int64{})
		w := started(1, 0)
		expect(t, "lost", w == s.IDs["lost_worker"], "started by worker %d, want the vanishing worker %d", w, s.IDs["lost_worker"])
		e, what := at(2)
		ended(2, "failed", `"Worker went away"`, w)
		expect(t, what, e.Job.Worker.Gone && *e.Job.Worker.Host == s.Host && *e.Job.Worker.PID == s.PID,
			"worker %+v, want gone with its host and pid remembered", e.Job.Worker)
		retried(3, 1, 1, "lost", false)
		w2 := started(4, 1)
		expect(t, "lost", w2 != w, "ran again on the lost worker %d", w)
		ended(5, "finished", `{"sum":10}`, w2)
		removedOrPurged(6, "finished")
	case "stuck":
		enqueued("add", "nobody", "[7,7]", 0, 1, `{}`, []int64{})
		e, what := at(1)
		changed(what, e, "result", "state")
		expect(t, what, e.Job.State == "failed" && jsonIs(e.Job.Result, `"Job appears stuck in queue"`) && *e.StateBefore == "inactive" &&
			e.Job.Worker == nil && e.Job.Finished == nil, "job %+v result %s", e.Job, e.Job.Result)
	}
}
