package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// sqliteMinion is Minion's SQLite database with the bridge installed by
// the mercury binary.
func sqliteMinion(t testing.TB) string {
	t.Helper()
	path := miniontest.NewSQLiteMinion(t)
	for range 2 { // idempotent
		if out, errOut, code := runMercury(t, "bridge", "minion", "install", "--sqlite", path); code != 0 {
			t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
		}
	}
	return path
}

// sqliteAuditJobs exports the audit log with the mercury binary and checks
// that each job has exactly enqueued, started and finished, each once.
func sqliteAuditJobs(t testing.TB, auditPath string, ids []int64, within time.Duration) {
	t.Helper()
	want := 3 * len(ids)
	deadline := time.Now().Add(within)
	var out, errOut string
	for {
		var code int
		out, errOut, code = runMercury(t, "audit", "export", "--sqlite", auditPath)
		if code == 0 && len(decodeLines(t, out)) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log has fewer than %d events after %s:\n%s", want, within, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	byJob := map[int64][]string{}
	seen := map[string]bool{}
	events := decodeLines(t, out)
	for _, e := range events {
		if seen[e.EventID] {
			t.Fatalf("event %s exported twice", e.EventID)
		}
		seen[e.EventID] = true
		byJob[*e.JobID] = append(byJob[*e.JobID], e.Type)
	}
	for _, id := range ids {
		if w := []string{"enqueued", "started", "finished"}; !slices.Equal(byJob[id], w) {
			t.Errorf("job %d: %v, want %v", id, byJob[id], w)
		}
	}
	if len(events) != want {
		t.Errorf("%d events, want %d", len(events), want)
	}
}

// sqliteAuditCount is how many events the audit file holds (0 before the
// logger created it).
func sqliteAuditCount(path string) int {
	db, err := minion.OpenSQLite(path, true)
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int
	db.QueryRow(`SELECT count(*) FROM mercury_audit_events`).Scan(&n)
	return n
}

// TestMinionSQLiteInsideServe: with minion.sqlite and audit.sqlite in its
// config file, mercury serve runs the bridge and the audit logger itself;
// a real Minion worker on SQLite runs jobs, and every transition reaches
// the audit file, which audit export and audit job read.
func TestMinionSQLiteInsideServe(t *testing.T) {
	path := sqliteMinion(t)
	auditPath := filepath.Join(t.TempDir(), "audit.db")
	conf := durableConfig(t)
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte("minion: {sqlite: "+path+"}\naudit: {sqlite: "+auditPath+"}\n")...)
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	br := startBroker(t, "--listen", "127.0.0.1:0", "--config", conf, "--data-dir", t.TempDir())
	waitFor(t, "the bridge publishing", func() bool { return contains(br.logs.String(), "minion bridge: publishing") })
	waitFor(t, "the audit logger subscribed", func() bool { return contains(br.logs.String(), "audit: subscribed") })

	dsn := miniontest.SQLiteDSN(path)
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, dsn, &enq, "enqueue", "20", "0")
	miniontest.Start(t, dsn, "work", "4").Wait(t, 2*time.Minute)
	sqliteAuditJobs(t, auditPath, enq.IDs, time.Minute)

	out, errOut, code := runMercury(t, "audit", "job", "--sqlite", auditPath, strconv.FormatInt(enq.IDs[0], 10))
	if code != 0 || !contains(out, "enqueued") || !contains(out, "finished") {
		t.Errorf("audit job: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runMercury(t, "bridge", "minion", "status", "--sqlite", path)
	if code != 0 || !contains(out, "bridge:     running") || !contains(out, "published:  60 events") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
}

// TestMinionSQLiteBridgeKilled: 300 jobs run on SQLite while the bridge is
// killed (SIGKILL) twice and restarted; the new bridge takes the lock over
// from the dead one and every transition reaches the audit log once.
func TestMinionSQLiteBridgeKilled(t *testing.T) {
	path := sqliteMinion(t)
	auditPath := filepath.Join(t.TempDir(), "audit.db")
	b := startBroker(t)
	audit := startMercury(t, "audit", "--sqlite", auditPath, "--broker", b.WS)
	waitFor(t, "the audit logger subscribed", func() bool { return contains(audit.logs.String(), "audit: subscribed") })
	bridgeArgs := []string{"bridge", "minion", "--sqlite", path, "--broker", b.HTTP, "--batch", "50"}
	bridge := startMercury(t, bridgeArgs...)

	dsn := miniontest.SQLiteDSN(path)
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, dsn, &enq, "enqueue", "300", "0")
	worker := miniontest.Start(t, dsn, "perform")
	for _, at := range []int{100, 500} {
		miniontest.WaitFor(t, "events in the audit log", func() bool { return sqliteAuditCount(auditPath) >= at })
		bridge.stop(t, syscall.SIGKILL)
		bridge = startMercury(t, bridgeArgs...)
	}
	worker.Wait(t, 3*time.Minute)
	sqliteAuditJobs(t, auditPath, enq.IDs, 2*time.Minute)
	if contains(bridge.logs.String(), "standing by") {
		t.Errorf("the restarted bridge waited for the dead one's lease:\n%s", bridge.logs)
	}
}

// TestMinionSQLiteCommandErrors: the --sqlite forms fail clearly.
func TestMinionSQLiteCommandErrors(t *testing.T) {
	missingFile := filepath.Join(t.TempDir(), "none.db")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bridge", "minion", "status", "--pg", "postgres://x", "--sqlite", "m.db"}, 2, "give one database"},
		{[]string{"bridge", "minion", "install", "--sqlite", "m.db", "--schema", "s"}, 2, "--schema is for PostgreSQL"},
		{[]string{"bridge", "minion", "status", "--sqlite", missingFile}, 3, "no such file"},
		{[]string{"audit", "export", "--sqlite", missingFile}, 3, "no such file"},
	} {
		_, errOut, code := runMercury(t, c.args...)
		if code != c.code || !contains(errOut, c.want) {
			t.Errorf("mercury %v: exit %d, %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	path := miniontest.NewSQLiteMinion(t)
	if _, errOut, code := runMercury(t, "bridge", "minion", "--sqlite", path); code != 1 || !contains(errOut, "not installed") {
		t.Errorf("bridge not installed: exit %d %q", code, errOut)
	}
	if out, _, code := runMercury(t, "bridge", "minion", "status", "--sqlite", path); code != 1 || !contains(out, "installed:  no") {
		t.Errorf("status not installed: exit %d\n%s", code, out)
	}
	runMercury(t, "bridge", "minion", "install", "--sqlite", path)
	miniontest.Perl(t, miniontest.SQLiteDSN(path), nil, "enqueue", "2", "0")
	if _, errOut, code := runMercury(t, "bridge", "minion", "uninstall", "--sqlite", path); code != 1 || !contains(errOut, "still waiting") {
		t.Errorf("uninstall with 2 events waiting: exit %d %q", code, errOut)
	}
	if out, errOut, code := runMercury(t, "bridge", "minion", "uninstall", "--sqlite", path, "--force"); code != 0 {
		t.Errorf("uninstall --force: exit %d\n%s%s", code, out, errOut)
	}
	miniontest.Perl(t, miniontest.SQLiteDSN(path), nil, "enqueue", "1", "0") // Minion works on without the triggers
	if out, _, code := runMercury(t, "bridge", "minion", "status", "--sqlite", path); code != 1 || !contains(out, "installed:  no") {
		t.Errorf("status after uninstall: exit %d\n%s", code, out)
	}
}
