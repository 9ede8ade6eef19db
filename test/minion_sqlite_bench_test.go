package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// transitions drives a job through Minion's enqueue, dequeue and finish
// statements on one database; each call makes one transition and returns
// the key eventKey gives its event.
type transitions func(step int) (string, error)

// BenchmarkMinionBridgeSQLite measures the commit-to-subscriber lag at 200
// job transitions per second with the real binary and broker, the bridge
// on SQLite against the bridge on PostgreSQL, in the same run (the
// PostgreSQL bridge is the baseline). Run with -benchtime=1x; the workload
// is fixed.
func BenchmarkMinionBridgeSQLite(b *testing.B) {
	br := startBroker(b)
	ctx := context.Background()

	pgDB := minionDB(b)
	conn := pgConnect(b, pgDB)
	startMercury(b, "bridge", "minion", "--pg", pgDB, "--broker", br.HTTP)
	var pgWorker int64
	if err := conn.QueryRow(ctx, `INSERT INTO minion_workers (host, pid) VALUES ('bench', 1) RETURNING id`).Scan(&pgWorker); err != nil {
		b.Fatal(err)
	}
	var pgJob int64
	pg := func(step int) (string, error) {
		switch step % 3 {
		case 0:
			err := conn.QueryRow(ctx, `INSERT INTO minion_jobs (args, delayed, priority, queue, task)
				VALUES ('[]', NOW(), 0, 'pg', 'bench') RETURNING id`).Scan(&pgJob)
			return fmt.Sprintf("enqueued:%d", pgJob), err
		case 1:
			_, err := conn.Exec(ctx, `UPDATE minion_jobs SET started = NOW(), state = 'active', worker = $1
				WHERE id = $2 AND state = 'inactive'`, pgWorker, pgJob)
			return fmt.Sprintf("started:%d", pgJob), err
		}
		_, err := conn.Exec(ctx, `UPDATE minion_jobs SET finished = NOW(), result = '"ok"', state = 'finished'
			WHERE id = $1 AND state = 'active'`, pgJob)
		return fmt.Sprintf("finished:%d", pgJob), err
	}

	path := miniontest.NewSQLiteMinion(b)
	if out, errOut, code := runMercury(b, "bridge", "minion", "install", "--sqlite", path); code != 0 {
		b.Fatalf("install: %s%s", out, errOut)
	}
	startMercury(b, "bridge", "minion", "--sqlite", path, "--broker", br.HTTP)
	db, err := minion.OpenSQLite(path, true)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`INSERT INTO minion_workers (host, pid) VALUES ('bench', 1)`)
	if err != nil {
		b.Fatal(err)
	}
	liteWorker, _ := res.LastInsertId()
	var liteJob int64
	lite := func(step int) (string, error) {
		switch step % 3 {
		case 0:
			res, err := db.Exec(`INSERT INTO minion_jobs (args, attempts, delayed, priority, queue, task)
				VALUES ('[]', 1, datetime('now'), 0, 'sqlite', 'bench')`)
			if err != nil {
				return "", err
			}
			liteJob, err = res.LastInsertId()
			return fmt.Sprintf("enqueued:%d", liteJob), err
		case 1:
			_, err := db.Exec(`UPDATE minion_jobs SET started = datetime('now'), state = 'active', worker = ?
				WHERE id = ? AND state = 'inactive'`, liteWorker, liteJob)
			return fmt.Sprintf("started:%d", liteJob), err
		}
		_, err := db.Exec(`UPDATE minion_jobs SET finished = datetime('now'), result = '"ok"', state = 'finished'
			WHERE id = ? AND state = 'active'`, liteJob)
		return fmt.Sprintf("finished:%d", liteJob), err
	}

	pgLags := lagAt200(b, br, "/audit/minion/pg", pg)
	liteLags := lagAt200(b, br, "/audit/minion/sqlite", lite)
	b.ReportMetric(ms(percentile(liteLags, 0.50)), "sqlite-lag-p50-ms")
	b.ReportMetric(ms(percentile(liteLags, 0.99)), "sqlite-lag-p99-ms")
	b.ReportMetric(ms(percentile(pgLags, 0.50)), "pg-lag-p50-ms")
	b.ReportMetric(ms(percentile(pgLags, 0.99)), "pg-lag-p99-ms")
	b.Logf("commit-to-subscriber lag at 200 transitions/s: SQLite p50 %.1fms p99 %.1fms; PostgreSQL p50 %.1fms p99 %.1fms (ratio p50 %.2f, p99 %.2f)",
		ms(percentile(liteLags, 0.5)), ms(percentile(liteLags, 0.99)), ms(percentile(pgLags, 0.5)), ms(percentile(pgLags, 0.99)),
		ms(percentile(liteLags, 0.5))/ms(percentile(pgLags, 0.5)), ms(percentile(liteLags, 0.99))/ms(percentile(pgLags, 0.99)))
}

// lagAt200 makes 200 transitions per second for 10 seconds (after one to
// warm up) and returns each one's lag from commit to the subscriber of
// topic.
func lagAt200(b *testing.B, br *brokerProc, topic string, next transitions) []time.Duration {
	events := subscribe(b, br.WS, topic, eventKey)
	if _, err := next(0); err != nil { // warm up: the bridge is up and publishing
		b.Fatal(err)
	}
	events.waitCount(b, 1, 30*time.Second)
	const rate, dur = 200, 10 * time.Second
	committed := map[string]time.Time{}
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	step := 1
	end := time.Now().Add(dur)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		key, err := next(step)
		if err != nil {
			b.Fatal(err)
		}
		committed[key] = time.Now()
		step++
	}
	events.waitCount(b, step, time.Minute)
	return collectLags(events, committed)
}
