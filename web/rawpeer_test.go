package web

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawPeer is a WebSocket client written by hand on a TCP socket with a
// small receive buffer: it reads only when the test says so, like a user's
// client that stops reading, and it can reset its connection.
type rawPeer struct {
	nc *net.TCPConn
	br *bufio.Reader
}

// dialRaw opens path (e.g. "/pull/jobs?takeover=1") with a receive buffer
// of rcvbuf bytes, set before connecting so the window stays small.
func dialRaw(t testing.TB, ts *testServer, path string, rcvbuf int) *rawPeer {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", strings.TrimPrefix(ts.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake %s: %v %v", path, resp, err)
	}
	return &rawPeer{nc: nc.(*net.TCPConn), br: br}
}

// errClosed is a close frame from the server.
type errClosed struct {
	code   int
	reason string
}

func (e errClosed) Error() string { return fmt.Sprintf("closed: %d %s", e.code, e.reason) }

// readFrame returns the next data frame's payload, skipping pings and
// pongs, within timeout; a close frame is an errClosed.
func (p *rawPeer) readFrame(timeout time.Duration) ([]byte, error) {
	p.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		var h [2]byte
		if _, err := io.ReadFull(p.br, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(p.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(p.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(p.br, data); err != nil {
			return nil, err
		}
		switch h[0] & 0x0f {
		case 0x1, 0x2:
			return data, nil
		case 0x8:
			e := errClosed{}
			if len(data) >= 2 {
				e.code, e.reason = int(binary.BigEndian.Uint16(data)), string(data[2:])
			}
			return nil, e
		}
	}
}

// reset ends the connection with a TCP reset, as a client that crashes.
func (p *rawPeer) reset() {
	p.nc.SetLinger(0)
	p.nc.Close()
}
