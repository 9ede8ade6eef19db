package web

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// wireConn is the network connection under a WebSocket. Every write goes
// through it, serialised by mu: the WebSocket library's control frames
// (pings, pongs, close) through Write, and data frames, which the broker
// writes itself (see conn_write.go), through writeFrames.
type wireConn struct {
	net.Conn
	writeTimeout time.Duration
	raw          syscall.RawConn // the socket, for non-blocking writev; nil under TLS
	tcp          *net.TCPConn    // the TCP connection, under TLS too; nil on other networks

	mu sync.Mutex

	// readFailed: a read from the network failed, the peer is gone. The
	// WebSocket library takes a peer that disconnects between two
	// fragments of a message for the message's end, and returns the
	// fragments read so far as a whole message; with readFailed the reader
	// knows better (see conn.readLoop).
	readFailed atomic.Bool
	pending    []byte // read before the network; the reader's only
	// br is what the library reads the connection through, for
	// awaitPong; nil: the library reads every frame.
	br *bufio.Reader
}

// Read reads what is pending, then from the network, noting a failure.
func (w *wireConn) Read(p []byte) (int, error) {
	if len(w.pending) > 0 {
		n := copy(p, w.pending)
		w.pending = w.pending[n:]
		return n, nil
	}
	var n int
	var err error
	if rawIO && w.raw != nil {
		n, err = w.rawRead(p)
	} else {
		n, err = w.Conn.Read(p)
	}
	if err != nil {
		w.readFailed.Store(true)
	}
	return n, err
}

// bareClientPongLen is the length of a pong as a client sends it in
// answer to the broker's ping, which has no payload: FIN and opcode 0xA,
// the mask bit and length 0, then the 4-byte masking key.
const bareClientPongLen = 6

// quiet reports whether the WebSocket library holds nothing read from the
// network that it has not handled: then it is at a frame boundary, and
// awaitPong may look at the socket. Only for plain TCP connections that
// only receive (Hijack sets br): for a publisher, awaitPong's peek would be
// one system call more per read. The reader's only, while no close
// handshake reads too.
func (w *wireConn) quiet() bool {
	return w.raw != nil && w.br != nil && w.br.Buffered() == 0 && len(w.pending) == 0
}

// awaitPong waits until the peer sends something and, when that is a
// bare pong, takes it off the socket and reports true. Anything else (a
// frame, a pong not whole yet, the end of the connection, an error) stays
// for the WebSocket library to read next, and so does everything once
// closing is set: the library's close handshake then reads the socket.
// Only when quiet.
//
// It is the idle reader's wait. Waiting in the library's Read, a reader
// sits about 2.4 KB deep, so its goroutine needs a 4 KB stack for good (the
// runtime halves a stack only when less than a quarter of it is used);
// waiting and taking pongs here, a few shallow frames deep, it keeps the
// 2 KB a goroutine starts with.
func (w *wireConn) awaitPong(closing *atomic.Bool) bool {
	var pong bool
	err := w.raw.Read(func(fd uintptr) bool {
		if closing.Load() {
			return true
		}
		var f [bareClientPongLen]byte
		n, again, err := peekNonBlocking(fd, f[:])
		if again {
			return false // nothing yet: wait
		}
		if err != nil || n < len(f) || f[0] != 0x8a || f[1] != 0x80 {
			return true // for the library
		}
		// The peek saw the whole frame, and no one else reads the socket.
		n, _, err = readNonBlocking(fd, f[:])
		pong = err == nil && n == len(f)
		if !pong {
			w.Conn.Close() // cannot happen; the stream would be cut mid-frame
		}
		return true
	})
	return err == nil && pong
}

// rawRead reads from the socket with a raw system call, waiting in the
// network poller while nothing is there. The net package's read marks a
// blocking system call, and the first one after the process was idle
// wakes the runtime's monitor thread (sysmon), which then wakes every
// 20 µs until every processor is idle again: at a low rate of messages,
// a wake-up per message and a dozen ticks for each fan-out. Neither call
// here can block, so the monitor has nothing to watch; its other duties
// (preempting long runs, polling the network when every processor is
// busy) resume with the next timer.
func (w *wireConn) rawRead(p []byte) (int, error) {
	if len(p) > maxRead {
		p = p[:maxRead]
	}
	call := readCalls.Get().(*readCall)
	call.p = p
	err := w.raw.Read(call.run)
	n, rerr := call.n, call.err
	*call = readCall{run: call.run}
	readCalls.Put(call)
	if err == nil {
		err = rerr
		if err != nil {
			err = &net.OpError{Op: "read", Net: w.LocalAddr().Network(), Source: w.LocalAddr(), Addr: w.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		}
	}
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// maxRead bounds one read, as the net package does.
const maxRead = 1 << 30

// newWireConn wraps nc; sendBuffer, when positive, caps the kernel's send
// buffer of its socket (SO_SNDBUF), which otherwise grows to megabytes
// for a peer that does not read.
func newWireConn(nc net.Conn, writeTimeout time.Duration, sendBuffer int) *wireConn {
	w := &wireConn{Conn: nc, writeTimeout: writeTimeout}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	w.tcp = tcpConnOf(nc)
	if w.tcp != nil && sendBuffer > 0 {
		w.tcp.SetWriteBuffer(sendBuffer)
	}
	return w
}

// tcpConnOf returns the TCP connection under nc, under TLS too; nil when
// there is none.
func tcpConnOf(nc net.Conn) *net.TCPConn {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	tcp, _ := nc.(*net.TCPConn)
	return tcp
}

// reset drops the connection at once with what the kernel still holds for
// it: SO_LINGER 0 makes the close a reset, where a plain close would
// leave unsent bytes in the kernel for as long as the peer does not read.
// A connection closed already is left as it is.
func (w *wireConn) reset() {
	if w.tcp == nil {
		w.Conn.Close()
		return
	}
	if w.tcp.SetLinger(0) == nil {
		w.tcp.Close()
	}
}

// Write writes p with the write deadline, for the WebSocket library.
func (w *wireConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(p)
}

// writeControl writes a control frame of the broker's own (a ping), unless
// gone reports that the close frame may have been written: nothing may
// follow it.
func (w *wireConn) writeControl(frame []byte, gone func() bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gone() {
		return net.ErrClosed
	}
	_, err := w.writeLocked(frame)
	return err
}

func (w *wireConn) writeLocked(p []byte) (int, error) {
	defer boundWrite(w.Conn, w.writeTimeout).lift()
	return w.Conn.Write(p)
}

// writeDeadliner is what takes a write deadline: a connection, or the
// controller of an HTTP response.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// writeBound is a write deadline in force until lifted.
type writeBound struct{ d writeDeadliner }

// boundWrite bounds the blocking write about to start on d by timeout
// (none when it is not positive); lift the bound once the write is done.
// A deadline left in force would fail a later write, even a non-blocking
// one, of a connection that has simply been quiet since.
func boundWrite(d writeDeadliner, timeout time.Duration) writeBound {
	if timeout <= 0 {
		return writeBound{}
	}
	d.SetWriteDeadline(time.Now().Add(timeout))
	return writeBound{d}
}

// lift removes the deadline.
func (b writeBound) lift() {
	if b.d != nil {
		b.d.SetWriteDeadline(time.Time{})
	}
}

// tryWritev writes bufs without blocking, as much as the socket takes,
// with call's scratch; w.mu is held. blocked reports that the socket is
// full (or that this connection cannot be written without blocking, under
// TLS) and n how many bytes went.
//
// The call runs under Control rather than Write: w.mu already keeps every
// other write out, and a write that never waits for the socket needs
// neither the poller's write lock nor its readiness reset.
func (w *wireConn) tryWritev(call *writevCall, bufs [][]byte) (n int, blocked bool, err error) {
	if w.raw == nil {
		return 0, true, nil
	}
	call.bufs, call.n, call.blocked, call.err = bufs, 0, false, nil
	cerr := w.raw.Control(call.run)
	n, blocked, err = call.n, call.blocked, call.err
	call.bufs, call.err = nil, nil
	if cerr != nil {
		return n, false, cerr
	}
	return n, blocked, err
}

// writevCall holds a non-blocking writev's arguments, results and scratch,
// and the function that runs it on the socket, made once: a closure made
// for each write would be an allocation per delivery.
type writevCall struct {
	bufs    [][]byte
	iov     []syscall.Iovec
	flat    []byte
	n       int
	blocked bool
	err     error
	run     func(fd uintptr)
}

func newWritevCall() *writevCall {
	c := &writevCall{}
	c.run = func(fd uintptr) {
		c.n, c.blocked, c.err = writevNonBlocking(fd, c.bufs, &c.iov, &c.flat)
	}
	return c
}

// readCall is writevCall's counterpart for reads; they are pooled, as
// only the connections that receive messages read often.
type readCall struct {
	p     []byte
	n     int
	again bool
	err   error
	run   func(fd uintptr) bool
}

var readCalls = sync.Pool{New: func() any {
	c := &readCall{}
	c.run = func(fd uintptr) bool {
		c.n, c.again, c.err = readNonBlocking(fd, c.p)
		return !c.again // nothing there yet: wait in the poller
	}
	return c
}}

// writeAll writes bufs, blocking up to the write deadline, and returns
// how many bytes went; w.mu is held.
func (w *wireConn) writeAll(bufs [][]byte) (int, error) {
	defer boundWrite(w.Conn, w.writeTimeout).lift()
	if w.raw != nil {
		nb := net.Buffers(bufs)
		n, err := nb.WriteTo(w.Conn) // writev on a socket
		return int(n), err
	}
	// Under TLS one Write makes one record rather than one per buffer.
	buf := bytes.NewBuffer(make([]byte, 0, buffersLen(bufs)))
	for _, b := range bufs {
		buf.Write(b)
	}
	return w.Conn.Write(buf.Bytes())
}

func buffersLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// skipBytes drops the first n bytes of bufs (a partial write).
func skipBytes(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}

// hijackWriter hands the WebSocket library a wireConn when it hijacks the
// HTTP connection.
type hijackWriter struct {
	http.ResponseWriter
	writeTimeout time.Duration
	sendBuffer   int // SO_SNDBUF; 0: the kernel's
	// smallReads: the client only sends control frames (a subscriber, a
	// raw puller), so a small read buffer will do.
	smallReads bool
	wire       *wireConn // set by Hijack
}

// Read buffer sizes: a connection that receives messages reads through the
// server's 4 KiB buffer; one that only gets control frames through a small
// one, which matters with thousands of idle subscribers. A control frame
// (at most 2+125 bytes from a server, 6+125 from a client) needs no more:
// a longer payload is read past the buffer, straight into the message.
const smallReadBuffer = 128

// controlWriteBuffer holds one whole control frame a server writes (a
// 2-byte header and at most 125 bytes), so each goes out in one write.
const controlWriteBuffer = 128

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.wire = newWireConn(nc, h.writeTimeout, h.sendBuffer)
	// The WebSocket library reads what the reader returned here holds,
	// then the returned conn: every read from the network goes through
	// the wireConn (see readFailed).
	r := brw.Reader
	if h.smallReads {
		// What the server already buffered (a client may send right
		// after its handshake) moves into the wireConn: the library
		// replaces this reader's source with the conn.
		if n := brw.Reader.Buffered(); n > 0 {
			held, _ := brw.Reader.Peek(n)
			h.wire.pending = bytes.Clone(held)
		}
		r = bufio.NewReaderSize(h.wire, smallReadBuffer)
		if _, direct := nc.(*net.TCPConn); direct {
			// Reads go straight to the socket, so awaitPong's peek sees
			// what the library would read next: not under TLS, nor
			// through the PROXY protocol's parser, which reads ahead.
			h.wire.br = r
		}
	}
	// The library's own writes are control frames: a small buffer, flushed
	// whole through the wireConn.
	return h.wire, bufio.NewReadWriter(r, bufio.NewWriterSize(h.wire, controlWriteBuffer)), nil
}

func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
