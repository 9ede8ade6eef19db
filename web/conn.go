package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
)

// conn is one WebSocket connection. Its handler goroutine reads; a writer
// goroutine runs only while frames are waiting, so an idle connection
// costs one goroutine.
type conn struct {
	s       *Server
	pattern pattern
	topic   broker.Topic
	remote  string
	opened  time.Time
	echo    bool // bus: also receive own frames
	pull    broker.PullOptions

	ws     *websocket.Conn
	cork   *corkConn
	pinger *time.Timer

	mu          sync.Mutex
	out         []outFrame // waiting to be written
	spare       []outFrame // the writer's previous batch, reused
	outBytes    int
	writing     bool // a writer goroutine is running
	closing     bool // a close was requested; nothing more is queued
	closeCode   websocket.StatusCode
	closeReason string
	dead        bool // torn down; no goroutine may start
	bg          sync.WaitGroup
}

// outFrame is one frame waiting to be written.
type outFrame struct {
	typ      websocket.MessageType
	data     []byte
	delivery *broker.Delivery // settled once written
}

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
			w.Header().Set("Upgrade", "websocket")
			http.Error(w, fmt.Sprintf("426 Upgrade Required: /%s/… is a WebSocket endpoint; connect with a WebSocket client (for example: wscat -c ws://%s%s)",
				p, r.Host, r.URL.Path), http.StatusUpgradeRequired)
			return
		}
		if !s.origin.allows(r) {
			http.Error(w, "Origin check failed", http.StatusUnauthorized)
			return
		}
		c, aerr := s.newConn(p, topic, r)
		if aerr != nil {
			aerr.write(w)
			return
		}
		if aerr := s.register(c); aerr != nil {
			aerr.write(w)
			return
		}
		defer s.wg.Done()
		defer s.unregister(c)

		// Attach before the handshake completes: once a client sees its
		// handshake answered, it is subscribed. Frames wait until the
		// connection is up.
		detach := c.attach()
		cw := &corkingWriter{ResponseWriter: w, writeTimeout: s.opts.WriteTimeout}
		// The origin was checked above, with our own rules.
		ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			s.log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
			c.teardown(detach)
			return
		}
		ws.SetReadLimit(s.opts.MaxMessageSize)
		c.serve(ws, cw.conn)
		c.teardown(detach)
	}
}

// attach joins the broker as the connection's pattern says, and returns
// the function that leaves.
func (c *conn) attach() (detach func()) {
	switch c.pattern {
	case patternSub:
		return c.s.broker.Subscribe(c.topic, c)
	case patternBus:
		return c.s.broker.JoinBus(c.topic, c, c.echo)
	case patternPull:
		return c.s.broker.Pull(c.topic, c, c.pull)
	}
	return func() {}
}

// newConn reads a connection's options from the query string.
func (s *Server) newConn(p pattern, topic broker.Topic, r *http.Request) (*conn, *apiError) {
	q := r.URL.Query()
	c := &conn{s: s, pattern: p, topic: topic, remote: r.RemoteAddr, opened: time.Now(), echo: q.Get("echo") == "1"}
	if v := q.Get("prefetch"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic),
				Message: fmt.Sprintf("prefetch=%q: want a whole number from 1 to 10000", v)}
		}
		c.pull.Prefetch = n
	}
	return c, nil
}

// serve runs the connection until it ends.
func (c *conn) serve(ws *websocket.Conn, cork *corkConn) {
	c.mu.Lock()
	c.ws, c.cork = ws, cork
	pending := c.closing // a close requested during the handshake
	if pending {
		c.s.wg.Add(1)
	} else {
		c.startWriter()
	}
	c.mu.Unlock()
	if pending {
		go func() {
			defer c.s.wg.Done()
			ws.Close(c.closeCode, c.closeReason)
		}()
	}
	c.pinger = time.AfterFunc(c.s.opts.PingInterval, c.ping)

	err := c.readLoop()
	c.s.log.Debug("connection closed", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic,
		"duration", time.Since(c.opened).Round(time.Millisecond), "reason", closeReason(err))
	ws.CloseNow() // unblocks a writer stuck on the network
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
	c.bg.Wait()
	// Only now, with the writer gone, does a puller give back what it
	// could not write.
	detach()
}

func closeReason(err error) string {
	if status := websocket.CloseStatus(err); status != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		return fmt.Sprintf("%d %s", status, ce.Reason)
	}
	return err.Error()
}

// readLoop reads frames until the connection ends.
func (c *conn) readLoop() error {
	ctx := context.Background()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		if c.isClosing() {
			continue
		}
		if typ == websocket.MessageText && !utf8.Valid(data) {
			c.closeWith(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text frame")
			continue
		}
		if !c.pattern.sends() {
			continue // frames on /sub and /pull sockets are ignored
		}
		m := &broker.Message{Topic: c.topic, Binary: typ == websocket.MessageBinary, Payload: data}
		if aerr := c.s.accept(c.pattern, m, c); aerr != nil {
			c.sendError(aerr)
		}
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Deliver queues a subscribed or bus message (broker.Receiver).
func (c *conn) Deliver(m *broker.Message) {
	c.enqueue(outFrame{typ: frameType(m), data: m.Payload})
}

// Offer queues a pulled message (broker.Puller); it is settled once
// written.
func (c *conn) Offer(d *broker.Delivery) {
	c.enqueue(outFrame{typ: frameType(d.Message), data: d.Message.Payload, delivery: d})
}

func (c *conn) sendError(e *apiError) {
	c.enqueue(outFrame{typ: websocket.MessageText, data: e.JSON()})
}

func frameType(m *broker.Message) websocket.MessageType {
	if m.Binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// enqueue adds f to the outgoing queue without blocking. A connection
// whose queue would pass its limit is a slow consumer: it is closed, and
// what it held is dropped (a puller's deliveries go back to the queue).
func (c *conn) enqueue(f outFrame) {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return
	}
	if c.outBytes > 0 && c.outBytes+len(f.data) > c.s.opts.OutgoingQueue {
		c.out, c.outBytes = nil, 0
		c.mu.Unlock()
		c.s.slowConsumers.Add(1)
		c.s.log.Info("slow consumer closed", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic)
		c.closeWith(websocket.StatusPolicyViolation, "slow consumer")
		return
	}
	c.out = append(c.out, f)
	c.outBytes += len(f.data)
	c.startWriter()
	c.mu.Unlock()
}

// startWriter starts the writer if frames wait, the connection is up and
// no writer runs; c.mu is held.
func (c *conn) startWriter() {
	if !c.writing && c.ws != nil && len(c.out) > 0 {
		c.writing = true
		c.bg.Add(1)
		go c.writeLoop()
	}
}

// writeLoop writes queued frames until the queue is empty, each batch
// with one system call.
func (c *conn) writeLoop() {
	defer c.bg.Done()
	ctx := context.Background() // the corkConn's deadline bounds each write
	for {
		c.mu.Lock()
		if len(c.out) == 0 || c.dead {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch := c.out
		c.out, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		var err error
		size := 0
		c.cork.Cork()
		for _, f := range batch {
			size += len(f.data)
			if err = c.ws.Write(ctx, f.typ, f.data); err != nil {
				break
			}
		}
		if uerr := c.cork.Uncork(); err == nil {
			err = uerr
		}
		if err == nil {
			for _, f := range batch {
				if f.delivery != nil {
					f.delivery.Done()
				}
			}
		}
		clear(batch)

		c.mu.Lock()
		c.outBytes -= size
		if c.outBytes < 0 { // the queue was dropped meanwhile
			c.outBytes = 0
		}
		c.spare = batch[:0]
		if err != nil {
			c.writing = false
			c.mu.Unlock()
			c.ws.CloseNow()
			return
		}
		c.mu.Unlock()
	}
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
	ws := c.ws
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

// ping checks the peer is alive, and schedules the next check.
func (c *conn) ping() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.bg.Add(1)
	c.mu.Unlock()
	defer c.bg.Done()

	ctx, cancel := context.WithTimeout(context.Background(), c.s.opts.PongTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		if !c.isClosing() {
			c.s.log.Info("connection dropped: no pong", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic,
				"timeout", c.s.opts.PongTimeout)
			c.ws.CloseNow()
		}
		return
	}
	c.pinger.Reset(c.s.opts.PingInterval)
}

var _ broker.Receiver = (*conn)(nil)
var _ broker.Puller = (*conn)(nil)
