package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Committer makes batches durable with group commit: callers that commit
// while an fsync is in progress wait together and share the next one. A
// single goroutine takes whatever is pending, applies it to the KV as one
// synced batch, and wakes every caller in it. Under load the number of
// fsyncs stays near what the disk can do, and every caller's latency stays
// near one or two fsyncs.
//
// Each caller's ops stay together and in order, and callers' ops are
// applied in the order the callers arrived. Because the whole group is one
// atomic batch, a caller whose ops are acknowledged never sees them
// partly applied.
type Committer struct {
	kv KV

	mu      sync.Mutex
	pending []*commitReq // in arrival order
	spare   []*commitReq // the previous group's slice, for reuse
	closed  bool

	onSync atomic.Pointer[func(time.Duration, int)] // see OnSync

	kick chan struct{} // capacity 1: "there is something pending"
	quit chan struct{}
	done chan struct{}
}

type commitReq struct {
	ops []Op
	err chan error // capacity 1
}

// NewCommitter starts the committing goroutine over kv. Close stops it; the
// KV stays open and is the caller's to close, after the Committer.
func NewCommitter(kv KV) *Committer {
	c := &Committer{
		kv:   kv,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go c.run()
	return c
}

// Commit applies ops as part of the next group and returns once they are
// on disk, or the error that prevented it (the same for the whole group).
// The caller must not modify ops until Commit returns. Invalid ops are
// refused at once and never join a group, so they cannot fail other
// callers' writes.
func (c *Committer) Commit(ops []Op) error {
	done, err := c.enqueue(ops)
	if err != nil {
		return err
	}
	return <-done
}

// enqueue adds ops to the next group and returns the channel that gets
// the group's result. Ops enqueued one after the other are applied in that
// order. A caller that does not wait for the result (a write that needs no
// confirmation) simply drops the channel: it has room for the answer.
func (c *Committer) enqueue(ops []Op) (<-chan error, error) {
	if err := validate(ops); err != nil {
		return nil, err
	}
	req := &commitReq{ops: ops, err: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending = append(c.pending, req)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // the committer already knows
	}
	return req.err, nil
}

// OnSync makes f observe every synced group: how long the write and fsync
// took, and how many commits shared it (for metrics). f must be quick.
func (c *Committer) OnSync(f func(took time.Duration, commits int)) { c.onSync.Store(&f) }

// Close commits what is pending, stops the goroutine and waits for it.
// Later Commits return ErrClosed.
func (c *Committer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.done
	return nil
}

func (c *Committer) run() {
	defer close(c.done)
	var ops []Op // reused across groups
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			// No Commit can join any more: flush the last group.
			c.commit(ops)
			return
		}
		ops = c.commit(ops)
	}
}

// commit applies everything pending as one synced batch and answers each
// waiter. It returns ops emptied, for reuse.
func (c *Committer) commit(ops []Op) []Op {
	c.mu.Lock()
	group := c.pending
	c.pending, c.spare = c.spare, nil
	c.mu.Unlock()
	if len(group) == 0 {
		return ops
	}
	for _, r := range group {
		ops = append(ops, r.ops...)
	}
	start := time.Now()
	err := c.kv.Apply(ops, true)
	if f := c.onSync.Load(); f != nil {
		(*f)(time.Since(start), len(group))
	}
	if err != nil {
		err = fmt.Errorf("failed to commit group of %d: %w", len(group), err)
	}
	for _, r := range group {
		r.err <- err
	}
	// Drop the references to callers' ops before reusing the slices.
	clear(group)
	clear(ops)
	c.mu.Lock()
	c.spare = group[:0]
	c.mu.Unlock()
	return ops[:0]
}
