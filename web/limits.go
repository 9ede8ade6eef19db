package web

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Limits that keep one client from costing the others: connections in
// total and per address, publish rate per connection, idle time.

// clientIP returns the address part of a RemoteAddr. Behind a trusted
// proxy the guard has already made RemoteAddr the client's (proxies.go).
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// admitLocked counts one more connection or event stream from remote,
// unless a limit is reached or the server is shutting down; s.mu is held.
func (s *Server) admitLocked(remote string) *apiError {
	ip := clientIP(remote)
	switch {
	case s.shutdown:
		return &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: errShuttingDown.Error()}
	case s.open >= s.opts.MaxConnections:
		return &apiError{Status: http.StatusServiceUnavailable, Code: "limit",
			Message: fmt.Sprintf("too many connections: the limit is %d", s.opts.MaxConnections)}
	case s.opts.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnectionsPerIP:
		return &apiError{Status: http.StatusTooManyRequests, Code: "limit",
			Message: fmt.Sprintf("too many connections from %s: the limit is %d per address", ip, s.opts.MaxConnectionsPerIP)}
	}
	s.open++
	s.perIP[ip]++
	return nil
}

// releaseLocked undoes admitLocked; s.mu is held.
func (s *Server) releaseLocked(remote string) {
	ip := clientIP(remote)
	s.open--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// admitStream counts an event stream; release undoes it.
func (s *Server) admitStream(st *sseStream) (release func(), _ *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.admitLocked(st.remote); aerr != nil {
		return nil, aerr
	}
	s.lastConnID++
	st.id = s.lastConnID
	s.streams[st] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.releaseLocked(st.remote)
		s.mu.Unlock()
	}, nil
}

// rateStrikes is how many frames a connection may have refused for its
// publish rate, with no quiet second between them, before it is closed:
// a client that backs off when told keeps its connection, a flood does
// not.
const rateStrikes = 100

// rateGuard is a connection's publish rate limit. Only the connection's
// reader uses it.
type rateGuard struct {
	limiter     *rate.Limiter
	strikes     int
	lastRefusal time.Time
}

func newRateGuard(o *Options) *rateGuard {
	if o.PublishRate < 0 {
		return nil
	}
	return &rateGuard{limiter: rate.NewLimiter(rate.Limit(o.PublishRate), o.PublishBurst)}
}

// allow takes a token for one frame. When there is none it returns the
// refusal to send, and whether the connection has abused it long enough
// to be closed.
func (g *rateGuard) allow(c *conn) (refused *apiError, abuse bool) {
	if g == nil || g.limiter.Allow() {
		return nil, false
	}
	now := time.Now()
	if now.Sub(g.lastRefusal) > time.Second {
		g.strikes = 0
	}
	g.strikes++
	g.lastRefusal = now
	return &apiError{Status: http.StatusTooManyRequests, Code: "rate", Action: actionOf(c.pattern).String(), Topic: string(c.topic),
		Message: fmt.Sprintf("publish rate limit: %g messages per second (burst %d) per connection; this message was not published",
			float64(g.limiter.Limit()), g.limiter.Burst())}, g.strikes >= rateStrikes
}

// closeIdle is the close code of an idle connection.
const closeIdle websocket.StatusCode = 4408

// startIdleGuard closes the connection once nothing was sent or received
// on it for the idle time (pings do not count).
func (c *conn) startIdleGuard() {
	if c.s.opts.IdleTimeout <= 0 {
		return
	}
	limit := c.s.opts.IdleTimeout
	c.idle = newQuietTimer(limit, func() { c.closeWith(closeIdle, fmt.Sprintf("idle for %v", limit)) })
}

// compressionMode is permessage-deflate as configured: off, or on without
// context takeover, so a connection keeps no compression window between
// messages.
func (s *Server) compressionMode() websocket.CompressionMode {
	if s.opts.Compression {
		return websocket.CompressionNoContextTakeover
	}
	return websocket.CompressionDisabled
}
