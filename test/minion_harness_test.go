package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
	"github.com/mercury-broker/mercury/test/syncbuf"
)

// proc is a mercury subcommand other than serve, running in the background.
type proc struct {
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
	exit error
}

// startMercury runs the mercury binary with args until the test ends.
func startMercury(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(mercuryBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("mercury %s logs:\n%s", strings.Join(args[:min(2, len(args))], " "), p.logs)
		}
	})
	return p
}

// stop sends sig and waits for the process to exit.
func (p *proc) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%v still running 20s after %v:\n%s", p.cmd.Args, sig, p.logs)
	}
}

// runMercury runs the mercury binary with args and returns its output and
// exit code.
func runMercury(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mercuryBin, args...)
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("mercury %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// minionDB is a database with Minion's tables (created by the real Minion)
// and the bridge installed by `mercury bridge minion install`.
func minionDB(t testing.TB) string {
	t.Helper()
	db := miniontest.NewMinionDatabase(t)
	if out, errOut, code := runMercury(t, "bridge", "minion", "install", "--pg", db); code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	return db
}

func pgConnect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	return miniontest.Connect(t, db)
}

func auditCount(t testing.TB, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM mercury_audit_events`).Scan(&n); err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return 0
		}
		t.Fatal(err)
	}
	return n
}

// waitAudit waits until the audit log holds n events.
func waitAudit(t testing.TB, conn *pgx.Conn, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := auditCount(t, conn)
		if got == n {
			return
		}
		if got > n {
			t.Fatalf("the audit log holds %d events, want %d", got, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log holds %d events after %s, want %d", got, within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditEvents returns every event in the audit log, in the order the
// changes happened.
func auditEvents(t testing.TB, conn *pgx.Conn) []*minion.Event {
	t.Helper()
	l, err := minion.NewAuditLog("")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	if _, err := l.Export(context.Background(), conn, minion.ExportFilter{}, &buf); err != nil {
		t.Fatal(err)
	}
	return decodeLines(t, buf.String())
}

func decodeLines(t testing.TB, s string) []*minion.Event {
	t.Helper()
	var out []*minion.Event
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var e minion.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		out = append(out, &e)
	}
	return out
}

// durableConfig writes a config file that makes /audit/minion a durable bus
// with history, checked against the event schema, and returns its path.
func durableConfig(t testing.TB) string {
	t.Helper()
	schema, err := filepath.Abs("../bus/minion/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "mercury.yaml")
	conf := "buses:\n" +
		"  /audit/minion:\n" +
		"    schema: " + schema + "\n" +
		"    durable: true\n" +
		"    history: {messages: 100000, age: 24h}\n"
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDurableBroker runs mercury serve with durableConfig on listen and
// dataDir.
func startDurableBroker(t testing.TB, listen, dataDir string) *brokerProc {
	t.Helper()
	return startBrokerOn(t, listen, "--config", durableConfig(t), "--data-dir", dataDir)
}
