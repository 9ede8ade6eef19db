package web

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The WebSocket library flushes after every message. corkConn sits under
// it so that a writer draining several queued frames for one connection
// sends them with one system call: Cork, write the frames, Uncork.
type corkConn struct {
	net.Conn
	writeTimeout time.Duration

	// Reads: what the server had buffered at the hijack, then the network.
	pending    []byte
	readFailed atomic.Bool // a read from the network failed: the peer is gone

	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkPool while corked
}

// maxCork bounds what a corked connection gathers before it writes anyway.
const maxCork = 64 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.writeThrough(p)
	}
	if len(*c.buf)+len(p) > maxCork {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxCork {
			return c.writeThrough(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// writeThrough writes p to the network with the write deadline; c.mu is
// held.
func (c *corkConn) writeThrough(p []byte) (int, error) {
	if c.writeTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	return c.Conn.Write(p)
}

func (c *corkConn) flushLocked() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.writeThrough(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// Cork makes writes gather in memory until Uncork.
func (c *corkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkPool.Get().(*[]byte)
	c.mu.Unlock()
}

// Uncork writes what was gathered, in one system call, and returns the
// buffer to the pool.
func (c *corkConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.corked = false
	if cap(*c.buf) <= maxCork {
		corkPool.Put(c.buf)
	}
	c.buf = nil
	return err
}

// corkingWriter hands the WebSocket library a corkConn when it hijacks the
// HTTP connection.
type corkingWriter struct {
	http.ResponseWriter
	writeTimeout time.Duration
	conn         *corkConn // set by Hijack
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc, writeTimeout: w.writeTimeout}
	// Reads keep the server's buffered reader and what it holds (bytes the
	// client sent right after the handshake), but now read through the
	// corkConn, which notices when the peer is gone (see readFailed).
	// Writes go through the corkConn too, with a small buffer since the
	// corkConn gathers the frames.
	if n := brw.Reader.Buffered(); n > 0 {
		held, _ := brw.Reader.Peek(n)
		w.conn.pending = bytes.Clone(held)
	}
	brw.Reader.Reset(w.conn)
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 256)), nil
}

// Read reads what was held at the hijack, then from the network. A
// failed read is remembered: the WebSocket library takes a peer that
// disconnects between two fragments of a message for the message's end,
// and returns the fragments read so far as a whole message; with
// readFailed the reader knows better (see conn.readLoop).
func (c *corkConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readFailed.Store(true)
	}
	return n, err
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
