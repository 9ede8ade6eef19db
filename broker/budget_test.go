package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kib is a message of 1 KiB and what it costs held.
func kib(topic string) *Message {
	return &Message{Topic: Topic(topic), Payload: []byte(strings.Repeat("x", 1024))}
}

const kibHeld = 1024 + messageOverhead

func limitOf(err error) string {
	var full *QueueFullError
	if errors.As(err, &full) {
		return full.Limit
	}
	return ""
}

func TestMemoryBudgetSpansQueues(t *testing.T) {
	b := New(Options{MaxMemory: 10 * kibHeld})
	t.Cleanup(b.Close)
	accepted := 0
	var err error
	for i := 0; i < 30 && err == nil; i++ {
		if err = b.Push(kib(fmt.Sprintf("/q%d", i%3)), PushOptions{}); err == nil {
			accepted++
		}
	}
	if !errors.Is(err, ErrQueueFull) || limitOf(err) != "max_memory" {
		t.Fatalf("err = %v, want the max_memory limit", err)
	}
	if accepted != 10 || b.MemoryUsed() != 10*kibHeld {
		t.Fatalf("accepted %d, memory %d; want 10 and %d", accepted, b.MemoryUsed(), 10*kibHeld)
	}
	if !strings.Contains(err.Error(), "max_memory") {
		t.Fatalf("the error does not name its limit: %q", err)
	}

	// A puller that takes one message (and writes it) makes room, on any
	// queue, and says so.
	room := b.Room()
	in := inbox{hold: true}
	leave := mustPull(t, b, "/q1", &in, PullOptions{Prefetch: 1})
	defer leave()
	select {
	case <-room:
	default:
		t.Fatal("taking a message did not signal room")
	}
	held := in.heldNow()
	if len(held) != 1 || !held[0].Claim() {
		t.Fatalf("puller holds %d", len(held))
	}
	held[0].Done()
	if b.MemoryUsed() != 9*kibHeld {
		t.Fatalf("memory %d after one was settled, want %d", b.MemoryUsed(), 9*kibHeld)
	}
	if err := b.Push(kib("/q2"), PushOptions{}); err != nil {
		t.Fatalf("push after room was made: %v", err)
	}
}

func TestQueueMaxBytes(t *testing.T) {
	b := queueBroker(t, QueuePolicy{MaxBytes: 3 * kibHeld})
	for i := range 3 {
		if err := b.Push(kib("/jobs/a"), PushOptions{}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	err := b.Push(kib("/jobs/a"), PushOptions{})
	if limitOf(err) != "queue.max_bytes" {
		t.Fatalf("fourth push err = %v, want the queue.max_bytes limit", err)
	}
	if err := b.Push(kib("/jobs/b"), PushOptions{}); err != nil {
		t.Fatalf("another queue refused: %v", err)
	}
	if st := stats(b, "/jobs/a"); st.WaitingBytes != 3*kibHeld || st.Bytes != 3*kibHeld || st.MaxBytes != 3*kibHeld {
		t.Fatalf("stats = %+v", st)
	}
	// What a puller holds no longer counts against the queue's bytes, but
	// still against the broker's memory until settled.
	in := inbox{hold: true}
	defer mustPull(t, b, "/jobs/a", &in, PullOptions{Prefetch: 1})()
	if err := b.Push(kib("/jobs/a"), PushOptions{}); err != nil {
		t.Fatalf("push once a puller holds one: %v", err)
	}
	if got := b.MemoryUsed(); got != 5*kibHeld {
		t.Fatalf("memory %d, want %d", got, 5*kibHeld)
	}
}

func TestEmptyQueueTakesAMessageBiggerThanItsLimit(t *testing.T) {
	b := queueBroker(t, QueuePolicy{MaxBytes: 100})
	if err := b.Push(kib("/jobs"), PushOptions{}); err != nil {
		t.Fatalf("a lone message over the limit was refused: %v", err)
	}
	if limitOf(b.Push(kib("/jobs"), PushOptions{})) != "queue.max_bytes" {
		t.Fatal("a second one was taken")
	}
}

func TestDeadLettersAndHistoryCountAgainstMemory(t *testing.T) {
	b := historyBroker(t, Policy{Bus: "/news", History: History{Messages: 2}},
		Policy{Bus: "/jobs", Queue: QueuePolicy{MaxAttempts: 1}})
	for range 5 {
		if err := b.Publish(kib("/news")); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.MemoryUsed(); got != 2*kibHeld {
		t.Fatalf("history of 2 holds %d bytes, want %d", got, 2*kibHeld)
	}
	if err := b.Push(kib("/jobs"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	var a acker
	leave := mustPull(t, b, "/jobs", &a, PullOptions{Ack: true})
	if err := b.Nack("/jobs", &a, a.last(t).ID(), 0, "no"); err != nil {
		t.Fatal(err)
	}
	leave()
	if st := stats(b, "/jobs"); st.Dead != 1 || st.Bytes != kibHeld || st.WaitingBytes != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if _, err := b.PurgeDead("/jobs"); err != nil {
		t.Fatal(err)
	}
	if got := b.MemoryUsed(); got != 2*kibHeld {
		t.Fatalf("memory %d once the dead letter went, want %d", got, 2*kibHeld)
	}
}

func TestMemTotal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(path, []byte("MemFree:  100 kB\nMemTotal:       16384 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := memTotal(path); err != nil || got != 16384<<10 {
		t.Fatalf("memTotal = %d, %v", got, err)
	}
	if got := DefaultMaxMemory(); got <= 0 || got > 1<<30 {
		t.Fatalf("DefaultMaxMemory = %d", got)
	}
}
