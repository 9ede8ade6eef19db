package minion_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

//go:embed testdata/minion12.sql
var minion12Schema string

// Minion 12's statements, as its Minion::Backend::Pg runs them (Mojo::Pg
// turns its ? placeholders into $n).
const (
	m12RegisterWorker = `INSERT INTO minion_workers (id, host, pid, status)
      VALUES (COALESCE($1, NEXTVAL('minion_workers_id_seq')), $2, $3, $4)
      ON CONFLICT(id) DO UPDATE SET notified = now(), status = $4
      RETURNING id`
	m12Enqueue = `INSERT INTO minion_jobs (args, attempts, delayed, expires, lax, notes, parents, priority, queue, task)
      VALUES ($1, $2, (NOW() + (INTERVAL '1 second' * $3)),
      CASE WHEN $4::BIGINT IS NOT NULL THEN NOW() + (INTERVAL '1 second' * $4::BIGINT) END, $5, $6, $7, $8, $9, $10)
      RETURNING id`
	m12Schedule = `INSERT INTO minion_schedules (args, attempts, cron, expire, lax, name, next_run, notes, priority, queue, task)
      VALUES ($1, $2, $3, $4, $5, $6, TO_TIMESTAMP($7), $8, $9, $10, $11)
      ON CONFLICT (name) DO UPDATE SET
        args = EXCLUDED.args, attempts = EXCLUDED.attempts, cron = EXCLUDED.cron, expire = EXCLUDED.expire,
        lax = EXCLUDED.lax, notes = EXCLUDED.notes, priority = EXCLUDED.priority, queue = EXCLUDED.queue,
        task = EXCLUDED.task,
        next_run = CASE WHEN minion_schedules.cron = EXCLUDED.cron THEN minion_schedules.next_run ELSE EXCLUDED.next_run END
      RETURNING id`
	m12Due = `SELECT id, args, attempts, cron, expire, lax, name, EXTRACT(EPOCH FROM next_run) AS next_run,
        EXTRACT(EPOCH FROM NOW()) AS now, notes, priority, queue, task
      FROM minion_schedules WHERE next_run <= NOW() AND NOT paused FOR UPDATE`
	m12Dispatched = `UPDATE minion_schedules SET last_job = $1, last_run = NOW(), next_run = TO_TIMESTAMP($2) WHERE id = $3`
	m12Try        = `WITH cte AS (
        SELECT id FROM minion_jobs AS j
        WHERE delayed <= NOW() AND id = COALESCE($1, id) AND (parents = '{}' OR NOT EXISTS (
          SELECT 1 FROM minion_jobs
          WHERE id = ANY (j.parents) AND (
            state = 'active' OR (state = 'failed' AND NOT j.lax)
            OR (state = 'inactive' AND (expires IS NULL OR expires > NOW()))
          )
        )) AND priority >= COALESCE($2, priority) AND queue = ANY ($3) AND state = 'inactive' AND task = ANY ($4)
          AND (expires IS NULL OR expires > NOW())
        ORDER BY priority DESC, id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
      )
      UPDATE minion_jobs
      SET started = NOW(), state = 'active', worker = $5
      WHERE id = (SELECT id FROM cte)
      RETURNING id, args, retries, task`
	m12Note   = `UPDATE minion_jobs SET notes = JSONB_STRIP_NULLS(notes || $1) WHERE id = $2`
	m12Update = `UPDATE minion_jobs SET finished = NOW(), result = $1, state = $2
     WHERE id = $3 AND retries = $4 AND state = 'active'
     RETURNING attempts`
	m12Retry = `UPDATE minion_jobs SET attempts = COALESCE($1, attempts), delayed = (NOW() + (INTERVAL '1 second' * $2)),
        expires = CASE WHEN $3::BIGINT IS NOT NULL THEN NOW() + (INTERVAL '1 second' * $3::BIGINT) ELSE expires END,
        lax = COALESCE($4, lax), parents = COALESCE($5, parents), priority = COALESCE($6, priority),
        queue = COALESCE($7, queue), retried = NOW(), retries = retries + 1, state = 'inactive'
      WHERE id = $8 AND retries = $9
      RETURNING 1`
	m12Paused     = `UPDATE minion_schedules SET paused = $1 WHERE name = $2 RETURNING 1`
	m12Remove     = `DELETE FROM minion_jobs WHERE id = $1 AND state IN ('inactive', 'failed', 'finished') RETURNING 1`
	m12RepairGone = `DELETE FROM minion_workers WHERE notified < NOW() - INTERVAL '1 second' * $1`
	m12RepairOld  = `DELETE FROM minion_jobs
     WHERE id IN (
      SELECT id FROM minion_jobs WHERE state = 'finished' AND finished <= NOW() - INTERVAL '1 second' * $1
      EXCEPT SELECT unnest(parents) AS id FROM minion_jobs WHERE state != 'finished'
    )`
	m12RepairExpired = `DELETE FROM minion_jobs WHERE state = 'inactive' AND expires <= NOW()`
	m12Unschedule    = `DELETE FROM minion_schedules WHERE name = $1 RETURNING 1`
	m12Reset         = `TRUNCATE minion_jobs, minion_locks, minion_schedules, minion_workers RESTART IDENTITY`
)

// TestMinion12Schema installs the bridge on Minion 12's schema (applied
// from testdata/minion12.sql) and drives it with Minion 12's own
// statements: schedules created, changed, dispatched in one transaction
// with the job they enqueue, paused, resumed and deleted; jobs dequeued
// with its CTE, noted, finished, failed and retried, removed, purged by its
// new repair query; and a reset truncating both tables.
func TestMinion12Schema(t *testing.T) {
	db := miniontest.NewDatabase(t)
	conn := miniontest.Connect(t, db)
	ctx := ctxT(t)
	if _, err := conn.Exec(ctx, minion12Schema); err != nil {
		t.Fatalf("minion12.sql: %v", err)
	}
	in, err := minion.Install(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	if !in.Complete() || !in.SchedulesTable || !in.SchedulesTrig {
		t.Fatalf("installed %+v, want minion_schedules captured too", in)
	}
	if _, err := minion.Install(ctx, conn, ""); err != nil {
		t.Fatalf("second install: %v", err)
	}

	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", strings.Fields(sql)[0], err)
		}
	}
	id := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", strings.Fields(sql)[0], err)
		}
		return n
	}
	jsonb := func(s string) json.RawMessage { return json.RawMessage(s) }
	var worker int64
	dequeue := func(job any, task string) int64 {
		t.Helper()
		var got, retries int64
		var args json.RawMessage
		var gotTask string
		err := conn.QueryRow(ctx, m12Try, job, nil, []string{"default"}, []string{task}, worker).Scan(&got, &args, &retries, &gotTask)
		if err != nil {
			t.Fatalf("dequeue: %v", err)
		}
		return got
	}

	worker = id(m12RegisterWorker, nil, "host12", 4242, jsonb(`{}`))
	var now float64
	conn.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM NOW())`).Scan(&now)
	sched := id(m12Schedule, jsonb(`["daily"]`), 1, "0 4 * * *", nil, false, "nightly", now+3600, jsonb(`{"k":"v"}`), 0, "default", "report")
	id(m12Schedule, jsonb(`["daily"]`), 1, "0 5 * * *", nil, false, "nightly", now+7200, jsonb(`{"k":"v"}`), 0, "default", "report")
	exec(`UPDATE minion_schedules SET next_run = NOW() - INTERVAL '1 minute' WHERE id = $1`, sched)

	// dispatch_schedules: one transaction enqueues the job and moves the schedule on.
	var job1 int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('minion.schedules'))`).Scan(&locked); err != nil || !locked {
			return fmt.Errorf("lock: %v %v", locked, err)
		}
		rows, err := tx.Query(ctx, m12Due)
		if err != nil {
			return err
		}
		rows.Close()
		if err := tx.QueryRow(ctx, m12Enqueue, jsonb(`["daily"]`), 1, 0, nil, false, jsonb(`{"k":"v"}`), []int64{}, 0, "default", "report").Scan(&job1); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, m12Dispatched, job1, now+86400, sched)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if got := dequeue(nil, "report"); got != job1 {
		t.Fatalf("dequeued %d, want %d", got, job1)
	}
	exec(m12Note, jsonb(`{"progress":100}`), job1)
	id(m12Update, jsonb(`"ok"`), "finished", job1, 0)

	job2 := id(m12Enqueue, jsonb(`[1]`), 2, 0, nil, false, jsonb(`{}`), []int64{}, 3, "default", "flaky")
	dequeue(job2, "flaky")
	attempts := id(m12Update, jsonb(`"boom"`), "failed", job2, 0)
	id(m12Retry, attempts-1, 0, nil, nil, nil, nil, nil, job2, 0) // auto_retry_job

	exec(m12Paused, true, "nightly")
	exec(m12Paused, false, "nightly")

	job3 := id(m12Enqueue, jsonb(`[]`), 1, 3600, 60, true, jsonb(`{}`), []int64{job1}, 0, "later", "report")
	id(m12Remove, job3)

	exec(m12RepairGone, 1800)
	exec(m12RepairOld, 0)
	exec(m12RepairExpired)
	id(m12Unschedule, "nightly")
	exec(m12Reset)

	events := drain(t, conn)
	var got []string
	for _, e := range events {
		s := e.Type
		if e.Retry != "" {
			s += "/" + e.Retry
		}
		switch {
		case e.JobID != nil:
			s = fmt.Sprintf("job%d %s", map[int64]int{job1: 1, job2: 2, job3: 3}[*e.JobID], s)
		case e.ScheduleID != nil:
			s = "schedule " + s
		default:
			s = e.DB.Table + " " + s
		}
		got = append(got, s)
	}
	want := []string{
		"schedule scheduled", "schedule schedule_updated", "schedule schedule_updated",
		"job1 enqueued", "schedule schedule_dispatched",
		"job1 started", "job1 noted", "job1 finished",
		"job2 enqueued", "job2 started", "job2 failed", "job2 retried/automatic",
		"schedule schedule_paused", "schedule schedule_resumed",
		"job3 enqueued", "job3 removed",
		"job1 purged",
		"schedule unscheduled",
	}
	truncs := got[len(want):]
	slices.Sort(truncs)
	if !slices.Equal(got[:min(len(got), len(want))], want) ||
		!slices.Equal(truncs, []string{"minion_jobs truncated", "minion_schedules truncated"}) {
		t.Fatalf("events:\n%q\nwant:\n%q and both tables truncated", got, want)
	}

	// Field by field where Minion 12 differs: schedules, and the worker.
	s := events[0].Schedule
	if s == nil || s.ID != sched || s.Name != "nightly" || s.Cron != "0 4 * * *" || s.Task != "report" || s.Queue != "default" ||
		string(s.Args) != `["daily"]` || string(s.Notes) != `{"k": "v"}` || s.Paused || s.Attempts != 1 || s.NextRun == nil ||
		s.Created == nil || s.LastRun != nil || s.LastJob != nil || s.Extra != nil {
		t.Errorf("scheduled: %+v", s)
	}
	if c := events[1].Changes; len(c) != 2 || string(c["cron"].Old) != `"0 4 * * *"` || string(c["cron"].New) != `"0 5 * * *"` {
		t.Errorf("schedule_updated changes: %v", c)
	}
	d := events[4]
	if d.Schedule.LastJob == nil || *d.Schedule.LastJob != job1 || d.Schedule.LastRun == nil || d.DB.TxID != events[3].DB.TxID {
		t.Errorf("schedule_dispatched: %+v in transaction %d, the job's in %d", d.Schedule, d.DB.TxID, events[3].DB.TxID)
	}
	if topic := minion.Topic("/audit/minion", d); topic != "/audit/minion/default/report/schedules/nightly" {
		t.Errorf("schedule topic %s", topic)
	}
	st := events[5].Job
	if st.Worker == nil || st.Worker.ID != worker || *st.Worker.Host != "host12" || *st.Worker.PID != 4242 || st.Worker.Gone {
		t.Errorf("started by %+v, want worker %d on host12 pid 4242", st.Worker, worker)
	}
	if j := events[14].Job; j.Expires == nil || !j.Lax || j.Queue != "later" || !slices.Equal(j.Parents, []int64{job1}) {
		t.Errorf("job3 enqueued: %+v", j)
	}
	if q := events[15].DB.Query; !strings.HasPrefix(q, "DELETE FROM minion_jobs WHERE id = $1") {
		t.Errorf("removed by %q", q)
	}
	if events[16].DB.Operation != "DELETE" || !strings.Contains(events[16].DB.Query, "EXCEPT SELECT unnest(parents)") {
		t.Errorf("purged by %q", events[16].DB.Query)
	}
	if err := minion.Uninstall(context.Background(), conn, "", true); err != nil {
		t.Fatal(err)
	}
}
