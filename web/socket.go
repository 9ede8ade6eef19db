package web

import (
	"context"
	"net"
	"net/http"
)

// ConnContext is for http.Server.ConnContext: it caps the kernel send
// buffer (Options.SocketSendBuffer) of every connection the server
// accepts, so an event stream whose client stops reading pins little
// kernel memory too: its handler cannot reach the socket. A WebSocket's
// socket is capped at its handshake either way.
//
// It also keeps the connection in the context of its requests, so that
// an event stream closed as a slow consumer can reset its connection
// (abortiveClose). Without the hook a stream still ends; the kernel then
// keeps what it holds for the peer until the peer reads or leaves.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tcp := tcpConnOf(c); tcp != nil && s.opts.SocketSendBuffer > 0 {
		tcp.SetWriteBuffer(s.opts.SocketSendBuffer)
	}
	return context.WithValue(ctx, netConnKey{}, c)
}

type netConnKey struct{}

// abortiveClose sets whether the close of r's connection is a reset
// (SO_LINGER 0), which drops what the kernel still holds to send, or an
// orderly close behind it. An event stream turns it on for its life: the
// server closes the connection as soon as a write fails (a slow consumer's
// write timing out), before the stream could ask. It turns it off to end
// in order, with a last event. Only over HTTP/1, where the connection is
// the stream's alone.
func abortiveClose(r *http.Request, on bool) {
	if r.ProtoMajor != 1 {
		return
	}
	c, _ := r.Context().Value(netConnKey{}).(net.Conn)
	if tcp := tcpConnOf(c); tcp != nil {
		if on {
			tcp.SetLinger(0)
		} else {
			tcp.SetLinger(-1)
		}
	}
}
