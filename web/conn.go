package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// conn is one WebSocket connection. One goroutine reads; the server's
// writer shards write (see writers.go), so an idle connection costs one
// goroutine and no buffers beyond a small read buffer.
type conn struct {
	s       *Server
	pattern pattern
	topic   broker.Topic
	opts    connOptions
	remote  string
	opened  time.Time
	id      uint64 // for the admin API, unique in this server

	msgsIn  atomic.Uint64 // messages accepted from the client
	msgsOut atomic.Uint64 // messages written to it

	ws     *websocket.Conn
	wire   *wireConn // set with ws, under mu
	shard  *shard    // writes this connection's frames
	pinger *time.Timer

	grant  atomic.Pointer[auth.Grant] // what the client may do; a token frame replaces it
	expiry *deadlineTimer             // closes the connection when the grant expires; nil: none yet
	rate   *rateGuard                 // publish rate; reader only
	pause  *readerPause               // the reader's deliberate stops (rate, a pusher's full queue); nil if it never stops
	idle   *quietTimer                // nil: no idle limit

	mu        sync.Mutex
	out       []outFrame // waiting to be written
	spare     []outFrame // the writer's previous batch, reused
	outBytes  int        // bytes of the counted frames in out
	lastWrite mono       // of the shard's last write, with a coalescing window
	heldUntil mono       // the end of the coalescing window it waits in; zero: not held
	// lastAccepted is when the broker accepted the newest message queued
	// (Unix ns), lastGap how long after the one before it: a coalescing
	// window is worth holding only if the next is due before it ends.
	lastAccepted int64
	lastGap      int64
	// pingDue is when the pinger fires (from opened): a firing that finds
	// it later was reset while it waited for mu.
	pingDue time.Duration
	// The flags sit together: an idle connection's struct stays small.
	scheduled    bool // on the shard's ready list (or waiting in its coalescing window)
	slow         bool // the socket was full: a goroutine of its own writes
	closing      bool // a close was requested; nothing more is queued
	closeQueued  bool // the close is sent once the frames queued before it are written
	dead         bool // torn down; no goroutine may start
	awaitingPong bool // a ping is out and no pong has come back
	// closeGone is closing && !closeQueued, set under mu and read without
	// it: once set, the close frame may have been written.
	closeGone   atomic.Bool
	closeCode   websocket.StatusCode
	closeReason string
	bg          sync.WaitGroup

	pubs *pubOrder // a publisher's answers in order, on a cluster; the reader creates it

	replies replyIDs // requests received and not answered (request.go)
}

// Close codes of our own, in the range applications may use.
const (
	closeNoQueue  websocket.StatusCode = 4404 // must_exist and the queue does not exist
	closeConflict websocket.StatusCode = 4409 // exclusive puller, takeover
)

func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func (s *Server) handleWebSocket(p pattern) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		topic, aerr := s.topicOf(p, r)
		if aerr != nil {
			aerr.write(w)
			return
		}
		if !isWebSocketUpgrade(r) {
			if p == patternSub && acceptsEventStream(r) {
				s.serveSSE(w, r, topic)
				return
			}
			w.Header().Set("Upgrade", "websocket")
			http.Error(w, fmt.Sprintf("426 Upgrade Required: /%s/… is a WebSocket endpoint; connect with a WebSocket client (for example: wscat -c ws://%s%s)",
				p, r.Host, r.URL.Path), http.StatusUpgradeRequired)
			return
		}
		grant, aerr := s.authorizeRequest(r, actionOf(p), topic)
		if aerr != nil {
			s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		opts, aerr := parseConnOptions(r, topic)
		if aerr == nil {
			aerr = presenceNeedsEnvelope(p, opts, topic)
		}
		if aerr != nil {
			s.refused(refusedOther, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		c := &conn{s: s, pattern: p, topic: topic, opts: opts, remote: r.RemoteAddr, opened: time.Now(), rate: newRateGuard(&s.opts)}
		if c.rate != nil || p == patternPush {
			c.pause = newReaderPause()
		}
		c.grant.Store(grant)
		if aerr := s.register(c); aerr != nil {
			reason := refusedLimits
			if aerr.Code == "shutting_down" {
				reason = refusedOther
			}
			s.refused(reason, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		c.shard = s.writers().pick()

		// Attach before the handshake completes: once a client sees its
		// handshake answered, it is subscribed. Frames wait until the
		// connection is up.
		detach, refusal := c.attach()
		hw := &hijackWriter{ResponseWriter: w, writeTimeout: s.opts.WriteTimeout, sendBuffer: s.opts.SocketSendBuffer,
			smallReads: !p.sends() && !(p == patternPull && opts.envelope)}
		// The origin was checked above, with our own rules. The token
		// subprotocol is never chosen: only these two are.
		ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			Subprotocols:       []string{subprotocolEnvelope, subprotocolRaw},
			CompressionMode:    s.compressionMode(),
			OnPongReceived:     c.pong,
		})
		if err != nil {
			s.log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
			c.teardown(detach)
			s.unregister(c)
			s.wg.Done()
			return
		}
		ws.SetReadLimit(s.opts.MaxMessageSize) // after decompression
		c.armExpiry()
		c.startIdleGuard()
		if refusal != nil {
			c.closeWith(refusal.code, refusal.reason)
		}
		// Logged here, on the handler's stack: formatting a line would grow
		// the connection goroutine's small stack for good.
		s.log.Info("connection opened", "id", c.id, "remote", c.remote, "pattern", p.String(), "topic", topic, "user", c.user())
		// The connection lives on in a goroutine of its own, and the
		// handler returns: what net/http kept for the request (its buffers,
		// the handler's deep stack) is freed while the connection idles.
		go func() {
			defer s.wg.Done()
			defer s.unregister(c)
			c.serve(ws, hw.wire)
			c.teardown(detach)
		}()
	}
}

// refusal is why an attach failed: the connection is closed with it once
// the handshake completes.
type refusal struct {
	code   websocket.StatusCode
	reason string
}

// attach joins the broker as the connection's pattern says, and returns
// the function that leaves.
func (c *conn) attach() (detach func(), _ *refusal) {
	b := c.s.broker
	nothing := func() {}
	switch c.pattern {
	case patternSub:
		leave := c.joinPresence()
		unsubscribe := func() {}
		if !c.opts.hasSince {
			unsubscribe = b.Subscribe(c.topic, c)
		} else {
			var backlog []*broker.Message
			var gap *broker.Gap
			backlog, gap, unsubscribe = b.SubscribeFrom(c.topic, c, c.opts.since)
			c.prependBacklog(backlog, gap)
		}
		return func() { unsubscribe(); leave() }, nil
	case patternBus:
		return b.JoinBus(c.topic, c, c.opts.echo), nil
	case patternPull:
		leave, err := b.Pull(c.topic, c, broker.PullOptions{
			// What the broker offers a puller fits what its connection may
			// hold, so a fast puller of big messages is never a slow consumer.
			Prefetch: c.opts.prefetch, MaxBytes: c.s.opts.OutgoingQueue, Ack: c.opts.envelope, Exclusive: c.opts.exclusive,
			Takeover: c.opts.takeover, MustExist: c.opts.mustExist, TTL: c.opts.ttl,
		})
		switch {
		case errors.Is(err, broker.ErrNoQueue):
			return nothing, &refusal{closeNoQueue, "queue does not exist"}
		case errors.Is(err, broker.ErrExclusive):
			return nothing, &refusal{closeConflict, "queue has an exclusive puller"}
		case errors.Is(err, broker.ErrQueueBusy):
			return nothing, &refusal{closeConflict, "queue has other pullers; an exclusive puller needs it alone"}
		case err != nil:
			return nothing, &refusal{websocket.StatusInternalError, err.Error()}
		}
		return leave, nil
	case patternPush:
		if c.opts.mustExist && !b.QueueExists(c.topic) {
			return nothing, &refusal{closeNoQueue, "queue does not exist"}
		}
	}
	return nothing, nil
}

// serve runs the connection until it ends. Its frame, with readLoop's,
// is under the idle reader's wait, which must fit the 2 KB a goroutine
// starts with (see wireConn.awaitPong): what needs room is in start and
// closed.
func (c *conn) serve(ws *websocket.Conn, wire *wireConn) {
	c.start(ws, wire)
	err := c.readLoop()
	c.closed(err)
	ws.CloseNow() // unblocks a writer stuck on the network
}

// start hands the connection to its writer and starts its pinger.
//
//go:noinline
func (c *conn) start(ws *websocket.Conn, wire *wireConn) {
	c.mu.Lock()
	c.ws, c.wire = ws, wire
	pending := c.closing // a close requested during the handshake
	if pending {
		c.s.wg.Add(1)
	} else {
		c.kick()
	}
	c.mu.Unlock()
	if pending {
		go func() {
			defer c.s.wg.Done()
			ws.Close(c.closeCode, c.closeReason)
		}()
	}
	c.mu.Lock()
	c.pingDue = time.Since(c.opened) + c.s.opts.PingInterval
	c.pinger = time.AfterFunc(c.s.opts.PingInterval, c.ping)
	c.mu.Unlock()
}

// closed logs the connection's end.
//
//go:noinline
func (c *conn) closed(err error) {
	reason := closeReason(err)
	c.mu.Lock()
	if c.closing {
		// The broker closed it: its own code says why, where the error
		// is only what the reader met on the way out.
		reason = fmt.Sprintf("%d %s (by the broker)", c.closeCode, c.closeReason)
	}
	c.mu.Unlock()
	c.s.log.Info("connection closed", "id", c.id, "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic,
		"duration", time.Since(c.opened).Round(time.Millisecond), "reason", reason,
		"messages_in", c.msgsIn.Load(), "messages_out", c.msgsOut.Load())
}

// teardown stops the connection's goroutines and leaves the broker.
func (c *conn) teardown(detach func()) {
	c.mu.Lock()
	c.dead = true
	c.out, c.spare, c.outBytes = nil, nil, 0
	c.mu.Unlock()
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.stopExpiry()
	c.idle.stop()
	c.bg.Wait()
	// Only now, with the writer gone, does a puller give back what it
	// could not write.
	detach()
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason == "" {
			return strconv.Itoa(int(ce.Code))
		}
		return fmt.Sprintf("%d %s", ce.Code, ce.Reason)
	}
	return err.Error()
}

// closeWith starts a close handshake with code and reason, once.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode, c.closeReason = code, reason
	c.pause.interrupt() // a paused reader reads the close
	ws := c.ws
	if ws != nil && (len(c.out) > 0 || c.scheduled || c.slow) {
		// Frames wait (an error frame that says why, maybe): the close
		// follows them (see closeIfDrained).
		c.closeQueued = true
		c.mu.Unlock()
		return
	}
	c.closeGone.Store(true)
	if ws != nil {
		// The handler is still running (dead is not set), so the server's
		// wait group cannot be at zero.
		c.s.wg.Add(1)
	}
	c.mu.Unlock()
	if ws == nil {
		return // serve closes it once the handshake completes
	}
	go func() {
		defer c.s.wg.Done()
		ws.Close(code, reason)
	}()
}

// closeIfDrained sends a queued close once the frames before it are
// written; c.mu is held.
func (c *conn) closeIfDrained() {
	if !c.closeQueued || c.dead || c.slow || c.scheduled || len(c.out) > 0 {
		return
	}
	c.closeQueued = false
	c.closeGone.Store(true)
	ws, code, reason := c.ws, c.closeCode, c.closeReason
	c.s.wg.Add(1) // the handler goroutine is running (dead is not set)
	go func() {
		defer c.s.wg.Done()
		ws.Close(code, reason)
	}()
}

// closeSent reports whether the close frame may have gone: nothing may
// follow it.
func (c *conn) closeSent() bool { return c.closeGone.Load() }

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Evict closes a puller that lost its place to another (broker.Puller).
func (c *conn) Evict(reason string) { c.closeWith(closeConflict, reason) }

// pingFrame is an unmasked ping with no payload.
var pingFrame = []byte{0x89, 0x00}

// ping checks the peer is alive, and schedules the next check. It writes
// the ping itself and does not wait for the pong: the timer comes back
// after the pong timeout, and pong stops that wait. An idle connection
// so costs no goroutine, context or timer of its own while a ping is out,
// where the library's Ping holds all three for each ping.
func (c *conn) ping() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	if time.Since(c.opened) < c.pingDue {
		c.mu.Unlock() // reset while this firing waited for the lock
		return
	}
	if c.awaitingPong {
		c.awaitingPong = false
		if c.pause.pausedWithin(c.s.opts.PongTimeout) {
			// A paced publisher or a paused pusher: its pong waits behind
			// frames not read yet.
			c.resetPinger(c.s.opts.PingInterval)
			c.mu.Unlock()
			return
		}
		closing := c.closing
		c.mu.Unlock()
		if !closing {
			c.s.log.Info("connection dropped: no pong", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic,
				"timeout", c.s.opts.PongTimeout)
			c.ws.CloseNow()
		}
		return
	}
	c.awaitingPong = true
	c.resetPinger(c.s.opts.PongTimeout)
	c.bg.Add(1)
	c.mu.Unlock()
	defer c.bg.Done()

	if err := c.wire.writeControl(pingFrame, c.closeSent); err != nil && !c.isClosing() {
		c.s.log.Info("connection dropped: ping failed", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic,
			"err", err)
		c.ws.CloseNow()
	}
}

// pong notes the peer's answer to a ping (the WebSocket library calls it
// from the reader): the next ping is due an interval from now.
func (c *conn) pong(context.Context, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.awaitingPong && !c.dead {
		c.awaitingPong = false
		c.resetPinger(c.s.opts.PingInterval)
	}
}

// resetPinger fires the pinger again after d; c.mu is held.
func (c *conn) resetPinger(d time.Duration) {
	c.pingDue = time.Since(c.opened) + d
	c.pinger.Reset(d)
}

var (
	_ broker.Receiver = (*conn)(nil)
	_ broker.Puller   = (*conn)(nil)
)
