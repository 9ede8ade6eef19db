package web

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// errTruncated ends a connection whose peer left in the middle of a
// message.
var errTruncated = errors.New("web: the peer disconnected in the middle of a message")

// protocolError tells a peer why its connection ends when reading failed
// on something it sent, if the WebSocket library has not told it: an
// unmasked frame, for one, is dropped without a close frame.
func (c *conn) protocolError(err error) {
	var ce websocket.CloseError
	switch {
	case c.isClosing(), errors.As(err, &ce), errors.Is(err, errTruncated), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, context.Canceled):
		return // the peer left, or we closed, or the close was already sent
	}
	reason := err.Error()
	if len(reason) > 120 { // a close reason fits in 123 bytes
		reason = reason[:120]
	}
	// Close returns at once when the library already sent its close; else
	// it sends ours and waits (at most 5s) for the answer.
	c.ws.Close(websocket.StatusProtocolError, reason)
}

// slowConsumerGrace is how long a slow consumer's socket has to take its
// close frame and the peer to answer; then the socket is reset.
const slowConsumerGrace = 2 * time.Second

// closeSlowConsumer closes a connection that does not read fast enough,
// and makes sure what it holds is released: the process's queue at once
// (see enqueue), the kernel's send buffer after the grace. A peer that
// does not read would otherwise keep that buffer for minutes, the close
// frame stuck behind it.
func (c *conn) closeSlowConsumer() {
	c.closeWith(websocket.StatusPolicyViolation, "slow consumer")
	c.mu.Lock()
	wire := c.wire // nil until the handshake completes
	c.mu.Unlock()
	if wire != nil {
		time.AfterFunc(slowConsumerGrace, wire.reset)
	}
}
