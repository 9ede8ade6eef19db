package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mercury-broker/mercury/web/client"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

func eventSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource("event.schema.json", bytes.NewReader(minion.EventSchema)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oldNotifierFrames is what the notifier Minion users had sends for the
// scenario, per job.
func oldNotifierFrames(s miniontest.Scenario) map[int64][]string {
	out := map[int64][]string{}
	for name, steps := range miniontest.ExpectedSteps {
		for _, st := range steps {
			var what string
			switch strings.Split(string(st), "/")[0] {
			case "enqueued":
				what = "enqueue"
			case "started":
				what = "dequeue"
			case "finished":
				what = "finished"
			case "failed", "worker_lost", "stuck":
				what = "failed"
			default:
				continue
			}
			out[s.IDs[name]] = append(out[s.IDs[name]], what)
		}
	}
	return out
}

// TestMinionAuditEndToEnd: the real Minion (Perl) enqueues and a real
// Minion worker performs the scenario's jobs; the real mercury binary runs
// the broker, `mercury bridge minion` and `mercury audit`. The audit log
// then holds every transition, in order, field by field; the old
// notifier's listeners on /bus/jobs get their frames; the CLI shows the
// timeline, the export and the status.
func TestMinionAuditEndToEnd(t *testing.T) {
	miniontest.RequireMinion(t)
	db := minionDB(t)
	auditDB := miniontest.NewDatabase(t)
	b := startBroker(t)
	jobs := dial(t, b.WS+"/bus/jobs", nil)
	audit := startMercury(t, "audit", "--pg", auditDB, "--broker", b.WS, "--topic", "/audit/minion")
	waitFor(t, "the audit logger subscribed", func() bool { return contains(audit.logs.String(), "audit: subscribed") })
	bridge := startMercury(t, "bridge", "minion", "--pg", db, "--broker", b.HTTP, "--compat-bus", "/jobs")
	waitFor(t, "the bridge publishing", func() bool { return contains(bridge.logs.String(), "minion bridge: publishing") })

	s := miniontest.RunScenario(t, db)
	conn := pgConnect(t, auditDB)
	want := len(miniontest.ExpectedOrder)
	waitAudit(t, conn, want, 60*time.Second)
	events := auditEvents(t, conn)
	s.Check(t, events)
	schema := eventSchema(t)
	for _, e := range events {
		var v any
		raw, _ := json.Marshal(e)
		json.Unmarshal(raw, &v)
		if err := schema.Validate(v); err != nil {
			t.Errorf("event %s (%s) does not match the schema: %v", e.EventID, e.Type, err)
		}
	}
	rows, err := conn.Query(context.Background(), `SELECT topic, event FROM mercury_audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var topic string
		var e minion.Event
		if err := rows.Scan(&topic, &e); err != nil {
			t.Fatal(err)
		}
		if want := minion.Topic("/audit/minion", &e); topic != want {
			t.Errorf("event %s arrived on %s, want %s", e.EventID, topic, want)
		}
	}

	// The old notifier's listeners.
	wantFrames := oldNotifierFrames(s)
	n := 0
	for _, f := range wantFrames {
		n += len(f)
	}
	gotFrames := map[int64][]string{}
	for range n {
		var frame []any
		if err := json.Unmarshal([]byte(readText(t, jobs)), &frame); err != nil || len(frame) != 2 {
			t.Fatalf("frame on /bus/jobs: %v %v", frame, err)
		}
		id := int64(frame[0].(float64))
		gotFrames[id] = append(gotFrames[id], frame[1].(string))
	}
	for id, want := range wantFrames {
		if !slices.Equal(gotFrames[id], want) {
			t.Errorf("job %d: frames %v on /bus/jobs, want %v", id, gotFrames[id], want)
		}
	}

	// The CLI.
	out, errOut, code := runMercury(t, "audit", "job", "--pg", auditDB, fmt.Sprint(s.IDs["flaky"]))
	if code != 0 {
		t.Fatalf("audit job: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"task fail  queue default", "retried (automatic)  attempts 2 → 1",
		`retried (manual)     queue "default" → "important"  by postgres from 127.0.0.1`, `noted                notes {"checked":"yes"}`} {
		if !strings.Contains(out, w) {
			t.Errorf("audit job output lacks %q:\n%s", w, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 3+len(miniontest.ExpectedSteps["flaky"]) {
		t.Errorf("audit job printed %d lines:\n%s", lines, out)
	}
	if _, errOut, code := runMercury(t, "audit", "job", "--pg", auditDB, "999999"); code != 1 || !contains(errOut, "no events for job 999999") {
		t.Errorf("audit job of an unknown job: exit %d: %s", code, errOut)
	}
	out, errOut, code = runMercury(t, "audit", "export", "--pg", auditDB, "--since", "1h")
	if code != 0 || len(decodeLines(t, out)) != want || !contains(errOut, fmt.Sprintf("%d events", want)) {
		t.Errorf("audit export: exit %d, %d lines, stderr %q", code, len(decodeLines(t, out)), errOut)
	}
	waitFor(t, "the outbox empty", func() bool {
		out, _, _ := runMercury(t, "bridge", "minion", "status", "--pg", db)
		return contains(out, "outbox:     0 waiting")
	})
	out, _, code = runMercury(t, "bridge", "minion", "status", "--pg", db)
	if code != 0 || !contains(out, fmt.Sprintf("published:  %d events", want)) || !contains(out, `bridge:     running`) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	bridge.stop(t, syscall.SIGTERM)
	if bridge.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("bridge exit %d", bridge.cmd.ProcessState.ExitCode())
	}
	out, _, _ = runMercury(t, "bridge", "minion", "status", "--pg", db)
	if !contains(out, "bridge:     none running") {
		t.Errorf("status after the bridge stopped:\n%s", out)
	}
}

// checkJobs checks that the audit log holds, for each of the jobs, exactly
// enqueued, started and finished, in that order, each once by event id.
func checkJobs(t testing.TB, conn *pgx.Conn, ids []int64) {
	t.Helper()
	byJob := map[int64][]string{}
	seen := map[string]bool{}
	for _, e := range auditEvents(t, conn) {
		if seen[e.EventID] {
			t.Fatalf("event %s stored twice", e.EventID)
		}
		seen[e.EventID] = true
		byJob[*e.JobID] = append(byJob[*e.JobID], e.Type)
	}
	want := []string{"enqueued", "started", "finished"}
	for _, id := range ids {
		if !slices.Equal(byJob[id], want) {
			t.Errorf("job %d: %v, want %v", id, byJob[id], want)
		}
	}
	if len(byJob) != len(ids) {
		t.Errorf("events for %d jobs, want %d", len(byJob), len(ids))
	}
}

// auditStopped stops the audit logger and returns its final counts line.
func auditStopped(t testing.TB, p *proc) string {
	t.Helper()
	p.stop(t, syscall.SIGTERM)
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if contains(line, "audit: stopped") {
			return line
		}
	}
	t.Fatalf("the audit logger printed no counts:\n%s", p.logs)
	return ""
}

// TestMinionBridgeKilledMidStream: 500 jobs run while the bridge is killed
// (SIGKILL) twice; each new bridge resumes from the outbox, and every
// transition reaches the audit log once by event id.
func TestMinionBridgeKilledMidStream(t *testing.T) {
	miniontest.RequireMinion(t)
	db := minionDB(t)
	auditDB := miniontest.NewDatabase(t)
	b := startBroker(t)
	audit := startMercury(t, "audit", "--pg", auditDB, "--broker", b.WS)
	waitFor(t, "the audit logger subscribed", func() bool { return contains(audit.logs.String(), "audit: subscribed") })
	conn := pgConnect(t, auditDB)
	bridgeArgs := []string{"bridge", "minion", "--pg", db, "--broker", b.HTTP, "--batch", "50"}
	bridge := startMercury(t, bridgeArgs...)

	var enq struct{ IDs []int64 }
	miniontest.Perl(t, db, &enq, "enqueue", "500", "10")
	worker := miniontest.Start(t, db, "perform")
	for _, at := range []int{100, 1000} { // mid-burst (the 500 enqueues), then mid-run
		deadline := time.Now().Add(2 * time.Minute)
		for auditCount(t, conn) < at {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d events after 2 minutes", at)
			}
			time.Sleep(5 * time.Millisecond)
		}
		bridge.stop(t, syscall.SIGKILL)
		bridge = startMercury(t, bridgeArgs...)
	}
	worker.Wait(t, 3*time.Minute)
	waitAudit(t, conn, 1500, 2*time.Minute)
	checkJobs(t, conn, enq.IDs)
	t.Log(auditStopped(t, audit))
}

// freeAddr returns a loopback address nothing listens on, to restart a
// broker on the same port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMinionBrokerOutage: 500 jobs run while the broker is stopped and
// started again on its data directory. The events wait in the outbox while
// it is down; the audit logger resumes from the sequence it stored, with
// nothing missing (no gap) and every transition once by event id. The bus
// /audit/minion is durable and checked against the event schema.
func TestMinionBrokerOutage(t *testing.T) {
	miniontest.RequireMinion(t)
	dataDir := t.TempDir()
	listen := freeAddr(t)
	b := startDurableBroker(t, listen, dataDir)
	db := minionDB(t)
	auditDB := miniontest.NewDatabase(t)
	audit := startMercury(t, "audit", "--pg", auditDB, "--broker", b.WS)
	waitFor(t, "the audit logger subscribed", func() bool { return contains(audit.logs.String(), "audit: subscribed") })
	conn := pgConnect(t, auditDB)
	bridge := startMercury(t, "bridge", "minion", "--pg", db, "--broker", b.HTTP, "--lag-interval", "100ms")

	// The bus refuses what is not an event.
	if resp := post(t, b.HTTP+"/pub/audit/minion/x", `{"not":"an event"}`); resp.Status != 422 {
		t.Errorf("a non-event on /audit/minion: %d %s, want 422", resp.Status, resp.Body)
	}

	var enq struct{ IDs []int64 }
	miniontest.Perl(t, db, &enq, "enqueue", "500", "10")
	worker := miniontest.Start(t, db, "perform")
	deadline := time.Now().Add(2 * time.Minute)
	for auditCount(t, conn) < 700 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 700 events after 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.signal(syscall.SIGTERM)
	b.wait(t)
	waitFor(t, "events waiting in the outbox", func() bool {
		out, _, _ := runMercury(t, "bridge", "minion", "status", "--pg", db)
		return !contains(out, "outbox:     0 waiting")
	})
	waitFor(t, "the bridge reporting the outage", func() bool { return contains(bridge.logs.String(), "publish failed") })
	time.Sleep(500 * time.Millisecond)
	startBrokerOn(t, listen, "--config", durableConfig(t), "--data-dir", dataDir)
	worker.Wait(t, 3*time.Minute)
	waitAudit(t, conn, 1500, 2*time.Minute)
	checkJobs(t, conn, enq.IDs)
	var gaps int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM mercury_audit_gaps`).Scan(&gaps); err != nil || gaps != 0 {
		t.Errorf("%d gaps recorded (%v), want none", gaps, err)
	}
	t.Log(auditStopped(t, audit))
}

// TestMinionCommandErrors: clear refusals, with the documented exit codes.
func TestMinionCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bridge"}, 2, "which bridge"},
		{[]string{"bridge", "kafka"}, 2, `unknown bridge "kafka"`},
		{[]string{"bridge", "minion", "frobnicate"}, 2, `unknown action "frobnicate"`},
		{[]string{"bridge", "minion", "install"}, 2, "--pg is required"},
		{[]string{"bridge", "minion", "status", "--pg", "postgres://postgres@127.0.0.1:1/x"}, 3, "failed to connect to PostgreSQL"},
		{[]string{"bridge", "minion", "--pg", "postgres://x", "--topic", "audit"}, 2, "a topic starts with /"},
		{[]string{"audit", "job", "--pg", "postgres://x", "abc"}, 2, `job id "abc": want a number`},
		{[]string{"audit", "export", "--pg", "postgres://x", "--since", "yesterday"}, 2, "--since"},
		{[]string{"audit", "frob"}, 2, `unknown audit command "frob"`},
	} {
		_, errOut, code := runMercury(t, c.args...)
		if code != c.code || !contains(errOut, c.want) {
			t.Errorf("mercury %v: exit %d, %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	db := miniontest.NewDatabase(t)
	if _, errOut, code := runMercury(t, "bridge", "minion", "install", "--pg", db); code != 1 || !contains(errOut, "no minion_jobs table") {
		t.Errorf("install without Minion: exit %d %q", code, errOut)
	}
	if _, errOut, code := runMercury(t, "bridge", "minion", "--pg", db); code != 1 || !contains(errOut, "no minion_jobs table") {
		t.Errorf("bridge without Minion: exit %d %q", code, errOut)
	}
	mdb := miniontest.NewMinionDatabase(t)
	if _, errOut, code := runMercury(t, "bridge", "minion", "--pg", mdb); code != 1 || !contains(errOut, "not installed") {
		t.Errorf("bridge not installed: exit %d %q", code, errOut)
	}
	out, _, code := runMercury(t, "bridge", "minion", "status", "--pg", mdb)
	if code != 1 || !contains(out, "installed:  no") {
		t.Errorf("status not installed: exit %d\n%s", code, out)
	}
}

// TestMinionBridgeInsideServe: with minion.pg in its config, the broker
// runs the bridge itself; the events arrive on the durable, schema-checked
// bus like anyone's.
func TestMinionBridgeInsideServe(t *testing.T) {
	miniontest.RequireMinion(t)
	db := minionDB(t)
	conf := durableConfig(t)
	b := startBrokerEnv(t, []string{"MERCURY_MINION_PG=" + db}, "--listen", "127.0.0.1:0", "--config", conf, "--data-dir", t.TempDir())
	sub := dial(t, b.WS+"/sub/audit/minion?envelope=1", nil)
	waitFor(t, "the bridge publishing", func() bool { return contains(b.logs.String(), "minion bridge: publishing") })
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, db, &enq, "enqueue", "3", "0")
	seen := map[int64]string{}
	for len(seen) < 3 {
		in, err := client.ParseIncoming([]byte(readText(t, sub)))
		if err != nil || in.Message == nil {
			t.Fatalf("frame: %+v %v", in, err)
		}
		var e minion.Event
		if err := json.Unmarshal(in.Message.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.JobID != nil {
			seen[*e.JobID] = e.Type
		}
	}
	for _, id := range enq.IDs {
		if seen[id] != "enqueued" {
			t.Errorf("job %d: event %q, want enqueued", id, seen[id])
		}
	}
}
