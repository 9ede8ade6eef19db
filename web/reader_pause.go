package web

import (
	"sync"
	"sync/atomic"
	"time"
)

// readerPause is a connection reader's deliberate stop: a publisher paced
// to its rate, a pusher waiting for room in its queue. The reader stops
// reading the socket, so TCP carries the pressure back and nothing the
// client sent is refused. While it waits no control frame is read either:
// a pong waits behind the frames before it, so conn.ping excuses a late
// pong within pausedWithin. Only the connection's reader waits; times are
// monotonic.
type readerPause struct {
	start   time.Time     // monotonic origin of endAt
	waiting atomic.Bool   // a wait is in progress
	endAt   atomic.Int64  // ns from start to the end of the last wait; 0: none yet
	closing chan struct{} // closed by interrupt
	once    sync.Once
}

func newReaderPause() *readerPause {
	return &readerPause{start: time.Now(), closing: make(chan struct{})}
}

// wait stops the reader until wake is signalled (a nil wake never is) or
// d has passed. It returns false when the connection is closing.
func (p *readerPause) wait(d time.Duration, wake <-chan struct{}) bool {
	p.waiting.Store(true)
	defer func() {
		p.endAt.Store(int64(max(time.Since(p.start), 1)))
		p.waiting.Store(false)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-p.closing:
		return false
	}
	return true
}

// pausedWithin reports whether the reader is paused, or was within d: the
// peer's frames were not being read, so a pong behind them is late, not
// missing.
func (p *readerPause) pausedWithin(d time.Duration) bool {
	if p == nil {
		return false
	}
	end := p.endAt.Load()
	return p.waiting.Load() || (end != 0 && time.Since(p.start)-time.Duration(end) < d)
}

// interrupt ends a wait, and any later one: the connection is closing.
func (p *readerPause) interrupt() {
	if p != nil {
		p.once.Do(func() { close(p.closing) })
	}
}
