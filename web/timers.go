package web

import (
	"sync"
	"sync/atomic"
	"time"
)

// The connection's timers (token expiry, idle time) count in the
// monotonic clock: a step of the wall clock (NTP, a resumed VM) neither
// keeps an expired token's connection open nor closes an active one. And
// each is stopped for good with its connection: a callback that races
// with the stop finds it stopped and does nothing.

// deadlineTimer calls fire once, when its deadline passes.
type deadlineTimer struct {
	fire func()

	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time // with a monotonic reading; zero: none
	over     bool      // fired, or stopped for good
}

func newDeadlineTimer(fire func()) *deadlineTimer { return &deadlineTimer{fire: fire} }

// setWall sets the deadline to the wall-clock time at (a token's expiry),
// measured once now and counted down in the monotonic clock from here;
// a zero at removes the deadline.
func (t *deadlineTimer) setWall(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return
	}
	if at.IsZero() {
		t.deadline = time.Time{}
		if t.timer != nil {
			t.timer.Stop()
		}
		return
	}
	d := time.Until(at)
	t.deadline = time.Now().Add(d)
	if t.timer == nil {
		t.timer = time.AfterFunc(d, t.check)
		return
	}
	t.timer.Reset(d)
}

// check fires if the deadline has passed; a timer armed for an earlier
// deadline that was since moved re-arms for what is left.
func (t *deadlineTimer) check() {
	t.mu.Lock()
	if t.over || t.deadline.IsZero() {
		t.mu.Unlock()
		return
	}
	if left := time.Until(t.deadline); left > 0 {
		t.timer.Reset(left)
		t.mu.Unlock()
		return
	}
	t.over = true
	t.mu.Unlock()
	t.fire()
}

// stop stops the timer for good.
func (t *deadlineTimer) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.over = true
	if t.timer != nil {
		t.timer.Stop()
	}
}

// quietTimer calls fire once nothing was noted for limit. Noting costs an
// atomic store, not a timer reset: one timer re-arms itself for what is
// left when it finds activity since it was set.
type quietTimer struct {
	limit time.Duration
	fire  func()
	start time.Time // monotonic origin of last

	last  atomic.Int64 // nanoseconds from start to the last activity
	mu    sync.Mutex
	timer *time.Timer
	over  bool
}

func newQuietTimer(limit time.Duration, fire func()) *quietTimer {
	t := &quietTimer{limit: limit, fire: fire, start: time.Now()}
	t.mu.Lock()
	t.timer = time.AfterFunc(limit, t.check)
	t.mu.Unlock()
	return t
}

// note records activity.
func (t *quietTimer) note() {
	if t != nil {
		t.noteAt(time.Now())
	}
}

// noteAt records activity at now, a time read from the clock just before.
func (t *quietTimer) noteAt(now time.Time) {
	if t != nil {
		t.last.Store(int64(now.Sub(t.start)))
	}
}

func (t *quietTimer) check() {
	t.mu.Lock()
	if t.over {
		t.mu.Unlock()
		return
	}
	if quiet := time.Since(t.start) - time.Duration(t.last.Load()); quiet < t.limit {
		t.timer.Reset(t.limit - quiet)
		t.mu.Unlock()
		return
	}
	t.over = true
	t.mu.Unlock()
	t.fire()
}

// stop stops the timer for good.
func (t *quietTimer) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.over = true
	t.timer.Stop()
}
