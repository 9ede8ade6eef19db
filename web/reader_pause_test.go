package web

import (
	"testing"
	"testing/synctest"
	"time"
)

// A pong is excused while the reader waits and for the pong timeout after
// the wait ends, not later: a connection paused long ago must still answer
// its pings.
func TestReaderPauseExcusesPongsOnlyNearAWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newReaderPause()
		if p.pausedWithin(time.Second) {
			t.Fatal("paused before any wait")
		}
		done := make(chan bool)
		go func() { done <- p.wait(3*time.Second, nil) }()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !p.pausedWithin(time.Millisecond) {
			t.Fatal("not paused during the wait")
		}
		if !<-done {
			t.Fatal("the wait reported a closing connection")
		}
		time.Sleep(500 * time.Millisecond)
		if !p.pausedWithin(time.Second) {
			t.Fatal("a pong half a second after the wait is not excused")
		}
		time.Sleep(time.Second)
		if p.pausedWithin(time.Second) {
			t.Fatal("a pong 1.5 s after the wait is excused")
		}
	})
}

// A wake ends the wait early; an interrupt ends it, and every later one, at
// once with false.
func TestReaderPauseWakeAndInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newReaderPause()
		wake := make(chan struct{}, 1)
		wake <- struct{}{}
		start := time.Now()
		if !p.wait(time.Hour, wake) || time.Since(start) != 0 {
			t.Fatal("a wake did not end the wait at once")
		}
		done := make(chan bool)
		go func() { done <- p.wait(time.Hour, nil) }()
		time.Sleep(time.Second)
		p.interrupt()
		if <-done {
			t.Fatal("an interrupted wait reported true")
		}
		p.interrupt() // twice is fine
		if p.wait(time.Hour, nil) {
			t.Fatal("a wait after the interrupt reported true")
		}
	})
}
