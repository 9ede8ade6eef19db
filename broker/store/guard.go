package store

import "sync"

// guard turns calls on a closed engine into ErrClosed instead of a panic
// inside the engine, and lets Close wait for the calls that are running.
// It is not a read-write lock on purpose: a Scan callback may call Get
// while Close waits, and gets ErrClosed rather than a deadlock.
type guard struct {
	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// enter admits a call; it returns ErrClosed once close has begun. A call
// admitted must be followed by leave.
func (g *guard) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.running.Add(1)
	return nil
}

func (g *guard) leave() { g.running.Done() }

// close refuses new calls, waits for the running ones and reports whether
// this was the first close.
func (g *guard) close() bool {
	g.mu.Lock()
	first := !g.closed
	g.closed = true
	g.mu.Unlock()
	if first {
		g.running.Wait()
	}
	return first
}
