package web

import (
	"context"
	"net"
)

// ConnContext is for http.Server.ConnContext: it caps the kernel send
// buffer (Options.SocketSendBuffer) of every connection the server
// accepts, so an event stream whose client stops reading pins little
// kernel memory too: its handler cannot reach the socket. A WebSocket's
// socket is capped at its handshake either way.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tcp := tcpConnOf(c); tcp != nil && s.opts.SocketSendBuffer > 0 {
		tcp.SetWriteBuffer(s.opts.SocketSendBuffer)
	}
	return ctx
}
