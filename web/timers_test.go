package web

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDeadlineTimerFiresOnceAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int32
		dt := newDeadlineTimer(func() { fired.Add(1) })
		dt.setWall(time.Now().Add(10 * time.Second))
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if n := fired.Load(); n != 0 {
			t.Fatalf("fired %d times before the deadline", n)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := fired.Load(); n != 1 {
			t.Fatalf("fired %d times, want once", n)
		}
	})
}

// A token refreshed before it expires moves the deadline: the timer
// armed for the old one must not close the connection.
func TestDeadlineTimerMovedLaterAndRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int32
		dt := newDeadlineTimer(func() { fired.Add(1) })
		dt.setWall(time.Now().Add(10 * time.Second))
		time.Sleep(5 * time.Second)
		dt.setWall(time.Now().Add(20 * time.Second)) // due at 25s
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("fired at the old deadline")
		}
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		if fired.Load() != 1 {
			t.Fatal("did not fire at the new deadline")
		}

		var other atomic.Int32
		dt2 := newDeadlineTimer(func() { other.Add(1) })
		dt2.setWall(time.Now().Add(time.Second))
		dt2.setWall(time.Time{}) // a token without expiry replaced it
		time.Sleep(time.Hour)
		synctest.Wait()
		if other.Load() != 0 {
			t.Fatal("fired with the deadline removed")
		}
	})
}

// A timer stopped with its connection never fires, even when it was
// already due, and cannot be armed again.
func TestDeadlineTimerStoppedForGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int32
		dt := newDeadlineTimer(func() { fired.Add(1) })
		dt.setWall(time.Now().Add(time.Second))
		dt.stop()
		dt.check() // a callback that raced with stop
		dt.setWall(time.Now().Add(time.Second))
		time.Sleep(time.Hour)
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("a stopped timer fired")
		}
		var nilTimer *deadlineTimer
		nilTimer.stop() // a connection that never had an expiry
	})
}

// Activity keeps a connection alive however long it lasts; it is closed
// the idle time after its last activity, not after its start.
func TestQuietTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int32
		qt := newQuietTimer(10*time.Second, func() { fired.Add(1) })
		for range 30 { // five minutes of a message every 9s... then 10s quiet
			time.Sleep(9 * time.Second)
			qt.note()
		}
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("an active connection was closed as idle")
		}
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("closed before the idle time passed")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if fired.Load() != 1 {
			t.Fatal("not closed when the idle time passed")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := fired.Load(); n != 1 {
			t.Fatalf("fired %d times, want once", n)
		}

		qt2 := newQuietTimer(time.Second, func() { fired.Add(1) })
		qt2.stop()
		qt2.check()
		time.Sleep(time.Hour)
		synctest.Wait()
		if fired.Load() != 1 {
			t.Fatal("a stopped idle timer fired")
		}
	})
}
