package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
)

// readLoop reads frames until the connection ends.
func (c *conn) readLoop() error {
	ctx := context.Background()
	for {
		if c.awaitPong() {
			c.pong(ctx, nil)
			continue
		}
		typ, data, err := c.ws.Read(ctx)
		if err == nil && c.wire.readFailed.Load() {
			// The peer left in the middle of a fragmented message: what
			// was read is not a message.
			err = errTruncated
		}
		if err != nil {
			c.protocolError(err)
			return err
		}
		c.idle.note()
		c.handle(typ, data)
	}
}

// awaitPong is wireConn.awaitPong when the connection is quiet and no
// close handshake runs: the library's Close reads the connection from a
// goroutine of its own, which c.mu orders against the look at what the
// library holds.
func (c *conn) awaitPong() bool {
	c.mu.Lock()
	quiet := !c.closing && c.wire.quiet()
	c.mu.Unlock()
	return quiet && c.wire.awaitPong(&c.closeGone)
}

// handle acts on a message from the client. Out of readLoop, so that what
// it needs stays off the idle reader's stack.
//
//go:noinline
func (c *conn) handle(typ websocket.MessageType, data []byte) {
	if c.isClosing() {
		return
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		c.closeWith(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text frame")
		return
	}
	if c.opts.envelope && typ == websocket.MessageText {
		if cred, ok, err := parseTokenFrame(data); ok {
			if c.limit() {
				c.refreshFrame(cred, err)
			}
			return
		}
	}
	switch {
	case c.pattern.sends():
		if !c.limit() {
			return
		}
		c.publishFrame(&broker.Message{Topic: c.topic, Binary: typ == websocket.MessageBinary, Payload: data})
	case c.pattern == patternSub && c.opts.envelope && typ == websocket.MessageText:
		if c.limit() {
			c.answer(data) // a reply to a request (request.go)
		}
	case c.pattern == patternPull && c.opts.envelope:
		if aerr := c.settle(data); aerr != nil {
			c.sendError(aerr)
		}
	}
	// Other frames on /sub and /pull sockets are ignored, as they
	// always were.
}

// limit applies the publish rate: it waits until the frame may go, and
// returns false when the connection closed meanwhile.
func (c *conn) limit() bool { return c.rate.wait(c.pause) }

// refreshFrame handles a {"$token":…} frame.
func (c *conn) refreshFrame(cred string, err error) {
	if err != nil {
		c.sendError(&apiError{Status: http.StatusBadRequest, Code: "frame", Topic: string(c.topic), Message: err.Error()})
		return
	}
	c.refresh(cred)
}

// settle handles {"ack":ID} and {"nack":ID,"delay":"10s","error":"…"}.
func (c *conn) settle(data []byte) *apiError {
	f, err := parseSettle(data)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "frame", Topic: string(c.topic), Message: err.Error()}
	}
	id := f.id
	if f.ack {
		err = c.s.broker.Ack(c.topic, c, id)
	} else {
		err = c.s.broker.Nack(c.topic, c, id, f.delay, f.reason)
	}
	if errors.Is(err, broker.ErrUnknownID) {
		return &apiError{Status: http.StatusNotFound, Code: "unknown_id", Topic: string(c.topic),
			Message: fmt.Sprintf("no delivery %d is held by this connection: already settled, redelivered after its ack timeout, or never sent here", id)}
	}
	if err != nil {
		return apiErrorFor(err, c.topic)
	}
	return nil
}
