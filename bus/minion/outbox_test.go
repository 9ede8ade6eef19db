package minion_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// enqueue inserts a job as Minion's enqueue does.
func enqueue(t testing.TB, q minion.Querier, task string) int64 {
	t.Helper()
	var id int64
	err := q.QueryRow(ctxT(t), `INSERT INTO minion_jobs (args, attempts, delayed, expires, lax, notes, parents, priority, queue, task)
		VALUES ('[]', 1, NOW(), NULL, FALSE, '{}', '{}', 0, 'default', $1) RETURNING id`, task).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func begin(t testing.TB, db string) pgx.Tx {
	t.Helper()
	tx, err := miniontest.Connect(t, db).Begin(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

func next(t testing.TB, conn *pgx.Conn) []minion.Change {
	t.Helper()
	cs, err := minion.NewOutbox("public").Next(ctxT(t), conn, 100)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// nextReady reads the outbox until n changes are readable. Rows become
// readable once no transaction anywhere on the server could still write
// below them (the horizon is the server's, not the database's): another
// test's open transaction may hold them back for a moment.
func nextReady(t testing.TB, conn *pgx.Conn, n int) []minion.Change {
	t.Helper()
	var cs []minion.Change
	miniontest.WaitFor(t, fmt.Sprintf("%d readable changes", n), func() bool {
		cs = next(t, conn)
		return len(cs) >= n
	})
	return cs
}

func rowIDs(cs []minion.Change) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, *c.RowID)
	}
	return out
}

// TestOutboxNeverSkipsALateCommit: a reader that took "outbox id > the
// last id read" would read job 2 and 3, then never see job 1, whose
// transaction took the lower outbox id but commits last.
func TestOutboxNeverSkipsALateCommit(t *testing.T) {
	db, conn := installed(t)
	ctx := ctxT(t)
	a := begin(t, db)
	job1 := enqueue(t, a, "late")
	job2 := enqueue(t, conn, "early")
	if cs := next(t, conn); len(cs) != 0 {
		t.Fatalf("read %v while the transaction with the lower outbox id is still running", rowIDs(cs))
	}
	job3 := enqueue(t, conn, "early")
	if cs := next(t, conn); len(cs) != 0 {
		t.Fatalf("read %v while the transaction with the lower outbox id is still running", rowIDs(cs))
	}
	lag, err := minion.NewOutbox("public").Lag(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Depth != 2 || lag.Ready != 0 || lag.OldestAge <= 0 {
		t.Fatalf("lag %+v, want 2 waiting, none ready", lag)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cs := nextReady(t, conn, 3)
	if got := rowIDs(cs); len(got) != 3 || got[0] != job1 || got[1] != job2 || got[2] != job3 {
		t.Fatalf("read jobs %v, want %d %d %d", got, job1, job2, job3)
	}
	if cs[0].ID > cs[1].ID {
		t.Fatalf("job 1's outbox id %d should be the lowest (it was taken first)", cs[0].ID)
	}
}

// TestOutboxLateIDEarlyTransaction: the transaction that started writing
// first takes the higher outbox id; it is read first, and nothing is lost.
func TestOutboxLateIDEarlyTransaction(t *testing.T) {
	db, conn := installed(t)
	ctx := ctxT(t)
	a := begin(t, db)
	if _, err := a.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // a has the lower transaction id
		t.Fatal(err)
	}
	jobB := enqueue(t, conn, "b")
	jobA := enqueue(t, a, "a")
	if cs := next(t, conn); len(cs) != 0 {
		t.Fatalf("read %v while an older transaction runs", rowIDs(cs))
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cs := nextReady(t, conn, 2)
	if got := rowIDs(cs); len(got) != 2 || got[0] != jobA || got[1] != jobB {
		t.Fatalf("read jobs %v, want %d then %d", got, jobA, jobB)
	}
	if cs[0].ID < cs[1].ID {
		t.Fatalf("outbox ids %d, %d: the test needs the first read to have the higher id", cs[0].ID, cs[1].ID)
	}
}

// TestOutboxKeepsAJobsChangesInOrder: transaction A has the lower id but
// changes the job after B, which held the row lock, committed. A's change
// must come after B's, although A's transaction id is lower.
func TestOutboxKeepsAJobsChangesInOrder(t *testing.T) {
	db, conn := installed(t)
	ctx := ctxT(t)
	job := enqueue(t, conn, "contended")
	drain(t, conn)

	a := begin(t, db)
	if _, err := a.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	b := begin(t, db)
	if _, err := b.Exec(ctx, `UPDATE minion_jobs SET priority = 7 WHERE id = $1`, job); err != nil {
		t.Fatal(err)
	}
	updated := make(chan error, 1)
	go func() { // blocks on B's row lock
		_, err := a.Exec(ctx, `UPDATE minion_jobs SET priority = priority + 2 WHERE id = $1`, job)
		updated <- err
	}()
	// Let A queue behind B's lock before B commits.
	miniontest.WaitFor(t, "A waiting for B's row lock", func() bool {
		var waiting bool
		conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'UPDATE minion_jobs SET priority = priority + 2%')`).Scan(&waiting)
		return waiting
	})
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cs := nextReady(t, conn, 2)
	if len(cs) != 2 {
		t.Fatalf("read %d changes, want 2", len(cs))
	}
	var first, second struct{ Priority int }
	json.Unmarshal(cs[0].New, &first)
	json.Unmarshal(cs[1].New, &second)
	if first.Priority != 7 || second.Priority != 9 {
		t.Fatalf("priorities in reading order: %d then %d, want 7 (B's change) then 9 (A's)", first.Priority, second.Priority)
	}
	if cs[0].TxID < cs[1].TxID {
		t.Fatalf("transaction ids %d then %d: the test needs the later change to come from the lower id", cs[0].TxID, cs[1].TxID)
	}
}

// TestOutboxTruncateComesAfterEarlierChanges: TRUNCATE waits for every
// writer of the table; its event comes after theirs even when they have
// higher transaction ids, and a job inserted after it comes after it.
func TestOutboxTruncateComesAfterEarlierChanges(t *testing.T) {
	db, conn := installed(t)
	ctx := ctxT(t)
	trunc := begin(t, db)
	if _, err := trunc.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	before := enqueue(t, conn, "before") // higher transaction id, committed before the truncate
	if _, err := trunc.Exec(ctx, `TRUNCATE minion_jobs`); err != nil {
		t.Fatal(err)
	}
	after := begin(t, db)
	if _, err := after.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	inserted := make(chan int64, 1)
	go func() { // waits for the truncate's lock
		var id int64
		after.QueryRow(ctx, `INSERT INTO minion_jobs (args, delayed, priority, task) VALUES ('[]', NOW(), 0, 'after') RETURNING id`).Scan(&id)
		inserted <- id
	}()
	miniontest.WaitFor(t, "the insert waiting for the truncate", func() bool {
		var waiting bool
		conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'INSERT INTO minion_jobs%')`).Scan(&waiting)
		return waiting
	})
	if err := trunc.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	afterID := <-inserted
	if err := after.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range nextReady(t, conn, 3) {
		if c.RowID != nil {
			got = append(got, fmt.Sprintf("%s %d", c.Op, *c.RowID))
		} else {
			got = append(got, c.Op)
		}
	}
	want := []string{fmt.Sprintf("INSERT %d", before), "TRUNCATE", fmt.Sprintf("INSERT %d", afterID)}
	if !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}

func TestOutboxWaitsForTheHorizonOfAnotherDatabase(t *testing.T) {
	_, conn := installed(t)
	other := miniontest.NewDatabase(t)
	tx := begin(t, other)
	if _, err := tx.Exec(ctxT(t), `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	enqueue(t, conn, "waits")
	if cs := next(t, conn); len(cs) != 0 {
		t.Fatalf("read %d rows while a transaction that started earlier runs in another database", len(cs))
	}
	tx.Rollback(ctxT(t))
	deadline := time.Now().Add(5 * time.Second)
	for len(next(t, conn)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the row never became readable")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
