package minion_test

import (
	"errors"
	"testing"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// minionWorks has the real Minion enqueue and perform a job.
func minionWorks(t *testing.T, db string) {
	t.Helper()
	var got struct {
		State  string         `json:"state"`
		Result map[string]int `json:"result"`
	}
	miniontest.Perl(t, db, &got, "check")
	if got.State != "finished" || got.Result["sum"] != 42 {
		t.Fatalf("Minion's job ended %+v, want finished with sum 42", got)
	}
}

func TestInstallTwiceUninstallInstallAgain(t *testing.T) {
	db := miniontest.NewMinionDatabase(t)
	conn := miniontest.Connect(t, db)
	ctx := ctxT(t)
	minionWorks(t, db)

	for i := range 2 {
		in, err := minion.Install(ctx, conn, "")
		if err != nil {
			t.Fatalf("install #%d: %v", i+1, err)
		}
		if !in.Complete() || in.Schema != "public" || in.SchedulesTable {
			t.Fatalf("install #%d: %+v", i+1, in)
		}
		minionWorks(t, db)
	}
	// Each installation captured one job's three changes, once.
	if evs := drain(t, conn); len(evs) != 6 {
		t.Fatalf("got %d events after two installs and two jobs, want 6", len(evs))
	}

	if err := minion.Uninstall(ctx, conn, "", false); err != nil {
		t.Fatal(err)
	}
	in, err := minion.Inspect(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	if in.Outbox || in.JobsTrigger || in.WorkersTrigger {
		t.Fatalf("after uninstall: %+v", in)
	}
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'mercury_minion%'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d functions left after uninstall (%v)", left, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname LIKE 'mercury_minion%'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d relations left after uninstall (%v)", left, err)
	}
	minionWorks(t, db)

	if _, err := minion.Install(ctx, conn, ""); err != nil {
		t.Fatal(err)
	}
	minionWorks(t, db)
	if evs := drain(t, conn); len(evs) != 3 || evs[0].Type != "enqueued" || evs[2].Type != "finished" {
		t.Fatalf("after reinstalling: %d events", len(evs))
	}
}

func TestInstallNeedsMinionTables(t *testing.T) {
	db := miniontest.NewDatabase(t)
	conn := miniontest.Connect(t, db)
	_, err := minion.Install(ctxT(t), conn, "")
	if !errors.Is(err, minion.ErrNoMinion) {
		t.Fatalf("install without Minion's tables: %v, want ErrNoMinion", err)
	}
	if _, err := minion.Install(ctxT(t), conn, "bad-schema"); err == nil {
		t.Fatal("a schema that is not a plain identifier was accepted")
	}
}

func TestUninstallKeepsWaitingEventsUnlessForced(t *testing.T) {
	db, conn := installed(t)
	minionWorks(t, db)
	err := minion.Uninstall(ctxT(t), conn, "", false)
	if !errors.Is(err, minion.ErrPending) {
		t.Fatalf("uninstall with 3 waiting events: %v, want ErrPending", err)
	}
	if in, _ := minion.Inspect(ctxT(t), conn, ""); !in.Complete() {
		t.Fatalf("a refused uninstall removed something: %+v", in)
	}
	if err := minion.Uninstall(ctxT(t), conn, "", true); err != nil {
		t.Fatal(err)
	}
	minionWorks(t, db)
}
