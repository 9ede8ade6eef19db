package web

import (
	"sync"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// On a cluster, storing a message is a round trip to NATS. A publishing
// connection keeps several in flight instead of waiting for each, and its
// answers ({"ok":SEQ} or an error frame) still go out in the order of its
// frames. A single broker answers at once, as before.

// maxInFlight bounds the messages one connection has in flight; past it,
// its reader waits (and TCP slows the publisher down).
const maxInFlight = 256

// pubOrder puts a connection's answers back in the order of its frames.
type pubOrder struct {
	room  chan struct{} // a token per message in flight
	mu    sync.Mutex
	slots []*pubSlot // in frame order
}

// pubSlot is one frame's answer, once known.
type pubSlot struct {
	known bool
	seq   uint64
	aerr  *apiError
}

// publishFrame accepts a frame read from a publishing connection and
// answers it, in order.
func (c *conn) publishFrame(m *broker.Message) {
	if c.pattern == patternPush {
		c.pushFrame(m)
		return
	}
	if !c.s.broker.Clustered() {
		if aerr := c.s.accept(c.pattern, m, c, c.opts, c.currentGrant()); aerr != nil {
			c.sendError(aerr)
		} else if c.opts.envelope {
			c.sendOK(m.Seq)
		}
		return
	}
	if c.pubs == nil {
		c.pubs = &pubOrder{room: make(chan struct{}, maxInFlight)}
	}
	o := c.pubs
	o.room <- struct{}{}
	slot := &pubSlot{}
	o.mu.Lock()
	o.slots = append(o.slots, slot)
	o.mu.Unlock()
	c.s.acceptAsync(c.pattern, m, c, c.currentGrant(), func(aerr *apiError) { c.answered(slot, m, aerr) })
}

// answered records a frame's answer and sends every answer now due.
func (c *conn) answered(slot *pubSlot, m *broker.Message, aerr *apiError) {
	o := c.pubs
	o.mu.Lock()
	defer o.mu.Unlock()
	slot.known, slot.seq, slot.aerr = true, m.Seq, aerr
	for len(o.slots) > 0 && o.slots[0].known {
		s := o.slots[0]
		o.slots[0] = nil
		o.slots = o.slots[1:]
		if s.aerr != nil {
			c.sendError(s.aerr)
		} else if c.opts.envelope {
			c.sendOK(s.seq)
		}
		<-o.room
	}
}

// acceptAsync is accept for a published or bus frame, whose answer may
// come later, on another goroutine.
func (s *Server) acceptAsync(p pattern, m *broker.Message, from *conn, g *auth.Grant, done func(*apiError)) {
	remote := ""
	if from != nil {
		remote = from.remote
	}
	if aerr := s.check(p, m, remote, g); aerr != nil {
		done(aerr)
		return
	}
	finish := func(err error) {
		if err != nil {
			done(s.refusedByBroker(err, m, remote))
			return
		}
		if from != nil {
			from.msgsIn.Add(1)
		}
		done(nil)
	}
	if p == patternBus {
		var sender broker.Receiver
		if from != nil {
			sender = from
		}
		s.broker.SendBusAsync(m, sender, finish)
		return
	}
	s.broker.PublishAsync(m, finish)
}
