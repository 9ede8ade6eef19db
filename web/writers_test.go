package web

import (
	"testing"
	"time"
)

// TestFlushDueWritesWindowsEndingTogether: the connections held after one
// pass of writes have windows that end a few microseconds apart; the shard
// wakes once for all those ending within dueTogether of the first, rather
// than once for each, and keeps the later ones.
func TestFlushDueWritesWindowsEndingTogether(t *testing.T) {
	s := &shard{coalesce: 5 * time.Millisecond}
	now := time.Now()
	// Connections not held (heldUntil zero) are passed over by flush: what
	// the test looks at is which entries leave the list.
	ended, soon, later := &conn{}, &conn{}, &conn{}
	s.delay(ended, now)
	s.delay(soon, now.Add(s.dueTogether()/2))
	s.delay(later, now.Add(3*time.Millisecond))
	wake := s.wakeAt()
	if wake.Before(now) || !wake.Before(now.Add(time.Millisecond)) {
		t.Fatalf("the shard wakes %v after the first window's end (want at most a millisecond)", wake.Sub(now))
	}
	s.flushDue(wake)
	if len(s.delayed) != 1 || s.delayed[0].c != later {
		t.Fatalf("after the wake-up, %d connections wait (want only the one whose window ends 3 ms later)", len(s.delayed))
	}
}
