package web

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/mercury-broker/mercury/broker"
)

// Limits that keep one client from costing the others: connections in
// total and per address, publish rate, idle time.

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

// rateGuard paces a connection's publishing (token bucket): a frame over
// the rate waits for its token with the reader paused (readerPause).
// Nothing is refused.
type rateGuard struct {
	limiter *rate.Limiter
}

func newRateGuard(o *Options) *rateGuard {
	if o.PublishRate <= 0 {
		return nil
	}
	return &rateGuard{limiter: rate.NewLimiter(rate.Limit(o.PublishRate), o.PublishBurst)}
}

// wait takes a token for one frame, pausing the reader when there is none.
// It returns false when the connection closed meanwhile.
func (g *rateGuard) wait(p *readerPause) bool {
	if g == nil {
		return true
	}
	now := time.Now()
	r := g.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d == 0 {
		return true
	}
	if !p.wait(d, nil) {
		r.Cancel()
		return false
	}
	return true
}

// postRates is the publish rate of HTTP requests, per client address: a
// request has no connection of its own to pace.
type postRates struct {
	mu      sync.Mutex
	byIP    map[string]*rate.Limiter
	sweepAt int // forget idle addresses when the map reaches this size
}

// delay takes a token for one request from ip, or returns how long until
// there is one (and takes nothing).
func (p *postRates) delay(ip string, limit rate.Limit, burst int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	l := p.byIP[ip]
	if l == nil {
		if len(p.byIP) >= p.sweepAt {
			p.sweep(now, burst)
		}
		l = rate.NewLimiter(limit, burst)
		p.byIP[ip] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// sweep forgets the addresses whose bucket is full again: a new one would
// be the same.
func (p *postRates) sweep(now time.Time, burst int) {
	if p.byIP == nil {
		p.byIP = make(map[string]*rate.Limiter)
	}
	for ip, l := range p.byIP {
		if l.TokensAt(now) >= float64(burst) {
			delete(p.byIP, ip)
		}
	}
	p.sweepAt = max(1024, 2*len(p.byIP))
}

// allowPost applies the publish rate to an HTTP request: over it, the
// client gets 429 with Retry-After, and the body is not read.
func (s *Server) allowPost(w http.ResponseWriter, r *http.Request, p pattern, topic broker.Topic) bool {
	if s.opts.PublishRate <= 0 {
		return true
	}
	d := s.postRates.delay(clientIP(r.RemoteAddr), rate.Limit(s.opts.PublishRate), s.opts.PublishBurst)
	if d == 0 {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	s.refused(refusedLimits, &apiError{Status: http.StatusTooManyRequests, Code: "rate", Action: actionOf(p).String(), Topic: string(topic),
		Message: fmt.Sprintf("publish rate limit: %g messages per second (burst %d) per client address; this message was not published: retry after %v",
			s.opts.PublishRate, s.opts.PublishBurst, d.Round(time.Millisecond))}, r.RemoteAddr, nil).write(w)
	return false
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
