package store

import "sync"

// guard turns calls on a closed engine into ErrClosed instead of a panic
// inside the engine, and lets Close wait for the calls that are running.
type guard struct {
	mu     sync.RWMutex
	closed bool
}

// enter admits a call; it returns ErrClosed once close has begun. A call
// admitted must be followed by leave.
func (g *guard) enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (g *guard) leave() { g.mu.RUnlock() }

// close waits for the running calls and reports whether this was the first
// close; later calls to enter fail.
func (g *guard) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	first := !g.closed
	g.closed = true
	return first
}
