package test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/web/client"
)

// The mercury command line in pipes: one message per line in, one per
// line out, nothing else on standard output.

func TestCLIPubReadsLinesOfStandardInput(t *testing.T) {
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/events", nil)
	stdout, stderr, code := runCLI(t, "first\n{\"b\": 1}\n\r\n\nno newline at the end", "pub", "/events/x", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "" {
		t.Fatalf("pub printed %q on stdout", stdout)
	}
	// Each line is one message, sent as typed; empty lines are skipped.
	for _, want := range []string{"first", `{"b": 1}`, "no newline at the end"} {
		if got := readText(t, sub); got != want {
			t.Fatalf("subscriber got %q, want %q", got, want)
		}
	}
}

func TestCLIPubMessagesOnTheCommandLine(t *testing.T) {
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/livesys", nil)
	_, stderr, code := runCLI(t, "", "pub", "--server", b.HTTP, "livesys/42", `{"cmd":"reboot"}`, "second")
	expectExit(t, stderr, code, 0)
	for _, want := range []string{`{"cmd":"reboot"}`, "second"} {
		if got := readText(t, sub); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A whole URL works where a topic does.
	_, stderr, code = runCLI(t, "", "pub", b.WS+"/pub/livesys/7", "by URL")
	expectExit(t, stderr, code, 0)
	if got := readText(t, sub); got != "by URL" {
		t.Fatalf("got %q", got)
	}
}

func TestCLISubWritesOneMessagePerLine(t *testing.T) {
	b := startBroker(t)
	sub := startCLI(t, nil, "sub", "/livesys", "--server", b.WS)
	sub.waitStderr(t, "connected to "+b.WS+"/sub/livesys")

	post(t, b.HTTP+"/pub/livesys/42", "{\n  \"cmd\": \"reboot\",\n  \"args\": [1, 2]\n}")
	post(t, b.HTTP+"/pub/livesys", "plain text")
	resp, err := client.Post(context.Background(), nil, b.HTTP+"/pub/livesys/1", "application/octet-stream", []byte{0xff, 0, 0x80, 0x41}, nil)
	if err != nil || resp.Status != 200 {
		t.Fatal(resp, err)
	}
	post(t, b.HTTP+"/pub/livesysX", "not under /livesys")
	post(t, b.HTTP+"/pub/livesys", "last")

	for _, want := range []string{`{"cmd":"reboot","args":[1,2]}`, "plain text", "/wCAQQ==", "last"} {
		if got := sub.line(t); got != want {
			t.Fatalf("sub printed %q, want %q", got, want)
		}
	}
	if strings.Contains(sub.stdout.String(), "connected") {
		t.Fatal("status went to stdout")
	}
}

func TestCLISubRaw(t *testing.T) {
	b := startBroker(t)
	sub := startCLI(t, nil, "sub", "/x", "--raw", "--count", "1", "--server", b.WS)
	sub.waitStderr(t, "connected")
	post(t, b.HTTP+"/pub/x", `{ "a" : 1 }`)
	sub.expectExit(t, 0)
	if got := sub.stdout.String(); got != "{ \"a\" : 1 }\n" {
		t.Fatalf("--raw printed %q", got)
	}
	// --quiet: nothing on stderr but errors.
	_, stderr, code := runCLI(t, "", "sub", "/x", "--timeout", "100ms", "--quiet", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stderr != "" {
		t.Fatalf("--quiet printed %q on stderr", stderr)
	}
}

func TestCLISubCount(t *testing.T) {
	b := startBroker(t)
	sub := startCLI(t, nil, "sub", "/n", "--count", "2", "--server", b.WS)
	sub.waitStderr(t, "connected")
	for i := range 5 {
		post(t, b.HTTP+"/pub/n", fmt.Sprint(i))
	}
	sub.expectExit(t, 0)
	if got := sub.stdout.String(); got != "0\n1\n" {
		t.Fatalf("--count 2 printed %q", got)
	}
}

func TestCLISubTimeout(t *testing.T) {
	b := startBroker(t)
	// Without --count, the end of the time is the end of the session.
	stdout, stderr, code := runCLI(t, "", "sub", "/quiet", "--timeout", "300ms", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "" {
		t.Fatalf("stdout %q", stdout)
	}
	// With --count, not getting the messages in time is a failure.
	sub := startCLI(t, nil, "sub", "/few", "--count", "2", "--timeout", "2s", "--server", b.WS)
	sub.waitStderr(t, "connected")
	post(t, b.HTTP+"/pub/few", "only one")
	sub.expectExit(t, 1, "timed out after 2s: 1 of 2 messages received")
	if got := sub.stdout.String(); got != "only one\n" {
		t.Fatalf("stdout %q", got)
	}
}

func TestCLIBusPipesBothWays(t *testing.T) {
	b := startBroker(t)
	peer := dial(t, b.WS+"/bus/room", nil)
	bus := startCLI(t, nil, "bus", "/room", "--count", "1", "--server", b.WS)
	bus.waitStderr(t, "connected")
	bus.send(t, "from the pipe")
	if got := readText(t, peer); got != "from the pipe" {
		t.Fatalf("peer got %q", got)
	}
	if err := peer.WriteText(context.Background(), `{"from": "peer"}`); err != nil {
		t.Fatal(err)
	}
	if got := bus.line(t); got != `{"from":"peer"}` {
		t.Fatalf("bus printed %q", got)
	}
	bus.expectExit(t, 0)

	// Without --count or --timeout, the end of the input is the end.
	_, stderr, code := runCLI(t, "bye\n", "bus", "/room", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if got := readText(t, peer); got != "bye" {
		t.Fatalf("peer got %q", got)
	}
}

func TestCLIConnectIsWscat(t *testing.T) {
	b := startBroker(t)
	peer := dial(t, b.WS+"/bus/room", nil)
	c := startCLI(t, nil, "connect", b.WS+"/bus/room", "--count", "1")
	c.waitStderr(t, "connected to "+b.WS+"/bus/room")
	c.send(t, "hello from connect")
	if got := readText(t, peer); got != "hello from connect" {
		t.Fatalf("peer got %q", got)
	}
	peer.WriteText(context.Background(), "hello back")
	if got := c.line(t); got != "hello back" {
		t.Fatalf("connect printed %q", got)
	}
	c.expectExit(t, 0)

	// Any URL: a path that is not Mercury's is the broker's 404.
	_, stderr, code := runCLI(t, "", "connect", b.WS+"/nowhere/x")
	expectExit(t, stderr, code, 1, "404 Not Found")
}

func TestCLIPullExec(t *testing.T) {
	b := startBroker(t)
	for _, job := range []string{`{"job":1}`, `{"job":2}`, "job 3"} {
		post(t, b.HTTP+"/push/jobs", job)
	}
	stdout, stderr, code := runCLI(t, "", "pull", "/jobs", "--count", "3", "--server", b.WS,
		"--exec", `printf '%s <- %s\n' "$(cat)" "$MERCURY_TOPIC"`)
	expectExit(t, stderr, code, 0)
	want := "{\"job\":1} <- /jobs\n{\"job\":2} <- /jobs\njob 3 <- /jobs\n"
	if stdout != want {
		t.Fatalf("--exec printed\n%s\nwant\n%s", stdout, want)
	}
	// A failing command is told, and the worker goes on.
	post(t, b.HTTP+"/push/jobs", "bad")
	post(t, b.HTTP+"/push/jobs", "good")
	stdout, stderr, code = runCLI(t, "", "pull", "/jobs", "--count", "2", "--server", b.WS,
		"--exec", `read m; if [ "$m" = bad ]; then echo "cannot do $m" >&2; exit 3; fi; echo "did $m"`)
	expectExit(t, stderr, code, 0, "cannot do bad", "--exec failed", "exit status 3: cannot do bad")
	if stdout != "did good\n" {
		t.Fatalf("stdout %q", stdout)
	}
}

func TestCLIPullPrints(t *testing.T) {
	b := startBroker(t)
	post(t, b.HTTP+"/push/q", `{"n": 1}`)
	stdout, stderr, code := runCLI(t, "", "pull", "/q", "--count", "1", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "{\"n\":1}\n" {
		t.Fatalf("stdout %q", stdout)
	}
	// push: the same as pub, into a queue.
	_, stderr, code = runCLI(t, "a\nb\n", "push", "/q", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	stdout, stderr, code = runCLI(t, "", "pull", "/q", "--count", "2", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "a\nb\n" {
		t.Fatalf("stdout %q", stdout)
	}
}

func TestCLIExitCodes(t *testing.T) {
	b := startBroker(t, "--queue-limit", "1", "--max-message-size", "16")

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"sub"}, {"sub", "/x", "--count", "x"}, {"pub", b.WS + "/sub/x", "m"}, {"nonsense"}} {
			_, stderr, code := runCLI(t, "", args...)
			expectExit(t, stderr, code, 2)
		}
	})
	t.Run("cannot connect", func(t *testing.T) {
		closed := freePort(t)
		for _, args := range [][]string{
			{"sub", "/x", "--server", "ws://" + closed},
			{"pub", "/x", "message", "--server", "ws://" + closed},
			{"pub", "/x", "--server", "ws://" + closed},
			{"connect", "ws://" + closed + "/bus/x"},
		} {
			_, stderr, code := runCLI(t, "m\n", args...)
			expectExit(t, stderr, code, 3, "cannot connect to ws://"+closed, "connection refused")
		}
	})
	t.Run("bad topic", func(t *testing.T) {
		_, stderr, code := runCLI(t, "", "sub", "/a//b", "--server", b.WS)
		expectExit(t, stderr, code, 1, "the broker refused", "400 Bad Request", "empty")
	})
	t.Run("origin", func(t *testing.T) {
		b := startBroker(t, "--allow-origin", "https://good.example")
		_, stderr, code := runCLI(t, "", "sub", "/x", "--server", b.WS, "--header", "Origin: https://evil.example")
		expectExit(t, stderr, code, 1, "403 Forbidden: Origin check failed")
		_, stderr, code = runCLI(t, "", "pub", "/x", "m", "--server", b.WS, "--header", "Origin: https://evil.example")
		expectExit(t, stderr, code, 1, "403 Forbidden: Origin check failed")
		_, stderr, code = runCLI(t, "", "sub", "/x", "--server", b.WS, "--header", "Origin: https://good.example", "--timeout", "100ms")
		expectExit(t, stderr, code, 0)
	})
	t.Run("queue full", func(t *testing.T) {
		_, stderr, code := runCLI(t, "", "push", "/full", "one", "two", "--server", b.WS)
		expectExit(t, stderr, code, 1, "503 Service Unavailable: queue is full", "the broker refused 1 of 2 messages")
	})
	t.Run("message too big", func(t *testing.T) {
		pub := startCLI(t, nil, "pub", "/x", "--server", b.WS)
		pub.send(t, strings.Repeat("x", 100)) // standard input stays open
		pub.expectExit(t, 1, "1009")
	})
}

func TestCLITooManyConnections(t *testing.T) {
	b := startBroker(t, "--max-connections", "1")
	dial(t, b.WS+"/sub/x", nil)
	_, stderr, code := runCLI(t, "", "sub", "/x", "--server", b.WS)
	expectExit(t, stderr, code, 1, "503 Service Unavailable: too many connections")
}

// freePort returns a loopback address nothing listens on.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
