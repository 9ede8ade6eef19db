package web

import (
	"errors"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// pushRecheck is how often a paused pusher tries again without being
// woken: room made on another node of a cluster, or by a queue that
// expired, wakes nobody here.
const pushRecheck = time.Second

// waitForRoom pauses a pusher's reader (readerPause) while its queue (its
// message or byte limit) or the broker's memory budget is full, until a
// puller may have made room or a recheck is due. It returns false when
// the connection is closing.
func (c *conn) waitForRoom(room <-chan struct{}) bool {
	if !c.pause.wait(pushRecheck, room) {
		return false
	}
	// Waiting on the broker is not being idle.
	c.idle.note()
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
		if !c.waitForRoom(room) {
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
