package test

import (
	"strings"
	"testing"
)

// TestCLIReqAndWho: mercury req and mercury who against a real broker and
// agents on WebSocket.
func TestCLIReqAndWho(t *testing.T) {
	b := startBroker(t)
	watch := startCLI(t, cliEnv(t), "who", "/livesys", "--watch", "--server", b.WS)
	if line := watch.line(t); !strings.HasPrefix(line, "/livesys\t-\t") {
		t.Fatalf("the watcher lists %q, want itself first", line)
	}
	runAgent(dial(t, b.WS+"/sub/livesys/42?envelope=1", nil), "42")
	dial(t, b.WS+"/sub/livesys/slow?envelope=1", nil) // never answers
	if line := watch.line(t); !strings.HasPrefix(line, "join\t/livesys/42\t-\t") {
		t.Fatalf("watch: %q", line)
	}
	if line := watch.line(t); !strings.HasPrefix(line, "join\t/livesys/slow\t") {
		t.Fatalf("watch: %q", line)
	}

	out, stderr, code := runCLI(t, "", "req", "/livesys/42", `"uptime?"`, "--server", b.WS)
	if code != 0 || out != `{"agent":"42"}`+"\n" {
		t.Fatalf("req: %d %q %s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, `{"cmd":"df"}`+"\n", "req", "/livesys", "--all", "--timeout", "500ms", "--server", b.WS)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"data":{"agent":"42"}`) {
		t.Fatalf("req --all: %d %q %s", code, out, stderr)
	}
	_, stderr, code = runCLI(t, "", "req", "/livesys/slow", "x", "--timeout", "300ms", "--server", b.WS)
	expectExit(t, stderr, code, 3, "no answer within 300ms")
	_, stderr, code = runCLI(t, "", "req", "/nobody", "x", "--server", b.WS)
	expectExit(t, stderr, code, 4, "no subscriber")

	out, stderr, code = runCLI(t, "", "who", "/livesys/42", "--server", b.WS)
	if code != 0 || !strings.HasPrefix(out, "/livesys/42\t-\t") || strings.Count(out, "\n") != 1 {
		t.Fatalf("who: %d %q %s", code, out, stderr)
	}
}

// TestCLIReplyExec: an agent in one line, mercury sub --reply-exec,
// answers requests with its command's output, or its failure.
func TestCLIReplyExec(t *testing.T) {
	b := startBroker(t)
	ok := startCLI(t, cliEnv(t), "sub", "/livesys/7", "--reply-exec", "tr a-z A-Z", "--server", b.WS)
	ok.waitStderr(t, "connected to")
	failing := startCLI(t, cliEnv(t), "sub", "/livesys/8", "--reply-exec", "echo disk full >&2; exit 3", "--server", b.WS)
	failing.waitStderr(t, "connected to")

	out, stderr, code := runCLI(t, "", "req", "/livesys/7", `{"cmd":"uptime"}`, "--server", b.WS)
	if code != 0 || out != `{"CMD":"UPTIME"}`+"\n" {
		t.Fatalf("req: %d %q %s", code, out, stderr)
	}
	r := post(t, b.HTTP+"/req/livesys/7", "plain text")
	if r.Status != 200 || string(r.Body) != "PLAIN TEXT" || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("text: %d %q %v", r.Status, r.Body, r.Header)
	}
	out, stderr, code = runCLI(t, "", "req", "/livesys/8", `"df"`, "--server", b.WS)
	if code != 0 || out != `{"error":"exit status 3: disk full"}`+"\n" {
		t.Fatalf("failing command: %d %q %s", code, out, stderr)
	}
}
