package test

import (
	"syscall"
	"testing"
)

// A subscriber or a worker outlives a broker restart: it connects again,
// with backoff, to the new broker on the same address.

func TestCLISubReconnectsAcrossABrokerRestart(t *testing.T) {
	b := startBroker(t)
	sub := startCLI(t, nil, "sub", "/x", "--server", b.WS)
	sub.waitStderr(t, "connected to")
	post(t, b.HTTP+"/pub/x", "before")
	if got := sub.line(t); got != "before" {
		t.Fatalf("got %q", got)
	}

	b.signal(syscall.SIGKILL)
	b.wait(t)
	sub.waitStderr(t, "reconnecting in")
	b2 := startBrokerOn(t, b.Listen)
	sub.waitStderr(t, "reconnected to "+b.WS+"/sub/x")
	// Without envelope mode there is no sequence number to resume from:
	// the subscriber is told what it may have missed.
	sub.waitStderr(t, "messages published while disconnected were missed")
	post(t, b2.HTTP+"/pub/x", "after")
	if got := sub.line(t); got != "after" {
		t.Fatalf("got %q", got)
	}
}

func TestCLIPullReconnectsAcrossABrokerRestart(t *testing.T) {
	b := startBroker(t)
	pull := startCLI(t, nil, "pull", "/jobs", "--count", "2", "--server", b.WS)
	pull.waitStderr(t, "connected to")
	post(t, b.HTTP+"/push/jobs", "one")
	if got := pull.line(t); got != "one" {
		t.Fatalf("got %q", got)
	}
	// A graceful stop this time: the broker says it is going away.
	b.signal(syscall.SIGTERM)
	b.wait(t)
	pull.waitStderr(t, "1001 going away; reconnecting in")
	b2 := startBrokerOn(t, b.Listen)
	pull.waitStderr(t, "reconnected to")
	post(t, b2.HTTP+"/push/jobs", "two")
	if got := pull.line(t); got != "two" {
		t.Fatalf("got %q", got)
	}
	pull.expectExit(t, 0)
}
