package web

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// pushRecheck is how often a paused pusher tries again without being
// woken: room made on another node of a cluster, or by a queue that
// expired, wakes nobody here.
const pushRecheck = time.Second

// pushPause pauses a WebSocket pusher whose queue (its message or byte
// limit) or the broker's memory budget is full: the reader stops reading
// the socket until a puller makes room, so TCP carries the pressure back
// and nothing the client sent is refused. Like rateGuard, it stops pongs
// from being read too (see conn.ping). Only the connection's reader waits.
type pushPause struct {
	ctx    context.Context // canceled when the connection closes
	cancel context.CancelFunc
	paused atomic.Bool
	endAt  atomic.Int64 // Unix ns the last pause ended
}

func newPushPause(p pattern) *pushPause {
	if p != patternPush {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &pushPause{ctx: ctx, cancel: cancel}
}

// pausedWithin reports whether the reader is paused, or was within d.
func (pp *pushPause) pausedWithin(d time.Duration) bool {
	return pp != nil && (pp.paused.Load() || time.Since(time.Unix(0, pp.endAt.Load())) < d)
}

// interrupt ends a wait: the connection is closing.
func (pp *pushPause) interrupt() {
	if pp != nil {
		pp.cancel()
	}
}

// wait waits until room may have been made, or a recheck is due. It
// returns false when the connection is closing.
func (pp *pushPause) wait(room <-chan struct{}, c *conn) bool {
	pp.paused.Store(true)
	defer func() {
		pp.endAt.Store(time.Now().UnixNano())
		pp.paused.Store(false)
	}()
	t := time.NewTimer(pushRecheck)
	defer t.Stop()
	select {
	case <-room:
	case <-t.C:
		// Waiting on the broker is not being idle.
		c.idle.note()
	case <-pp.ctx.Done():
		return false
	}
	return !c.isClosing()
}

// pushFrame queues a frame read from a pusher, waiting while its queue or
// the broker's memory is full. A frame refused for another reason gets an
// error frame; a connection that closes while paused leaves its frame
// unqueued and unanswered.
func (c *conn) pushFrame(m *broker.Message) {
	if aerr := c.s.check(patternPush, m, c.remote, c.currentGrant()); aerr != nil {
		c.sendError(aerr)
		return
	}
	opts := broker.PushOptions{MustExist: c.opts.mustExist, TTL: c.opts.ttl}
	err := c.s.broker.Push(m, opts)
	for errors.Is(err, broker.ErrQueueFull) {
		// Take the channel, then try again: room made in between is not
		// missed.
		room := c.s.broker.Room()
		if err = c.s.broker.Push(m, opts); !errors.Is(err, broker.ErrQueueFull) {
			break
		}
		if !c.full.wait(room, c) {
			return
		}
	}
	if err != nil {
		c.sendError(c.s.refusedByBroker(err, m, c.remote))
		return
	}
	c.msgsIn.Add(1)
	if c.opts.envelope {
		c.sendOK(m.Seq)
	}
}
