package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
	"github.com/mercury-broker/mercury/web/auth"
	mercuryjs "github.com/mercury-broker/mercury/web/client/js"
	"github.com/mercury-broker/mercury/web/metrics"
	"github.com/mercury-broker/mercury/web/ui"
)

// Options configures a Server. The zero value gives the documented
// defaults.
type Options struct {
	// AllowOrigins lists the browser origins allowed to connect, besides
	// the broker's own, and given CORS; see originPolicy. Requests without
	// an Origin are not concerned.
	AllowOrigins []string
	// AllowedHosts lists the names (Host header) the broker answers to;
	// see hostPolicy. Empty: without auth, loopback names and the address
	// a request arrived on; with auth, any.
	AllowedHosts []string
	// TrustedProxies are the proxies believed about the client's address
	// (Forwarded, X-Forwarded-For; the PROXY protocol is the listener's,
	// see ProxyProtocolListener). Empty: none.
	TrustedProxies []netip.Prefix
	// MaxMessageSize caps one message, in bytes. Default 1 MiB.
	MaxMessageSize int64
	// MaxJSONDepth caps the nesting of arrays and objects in a message on
	// a bus with a schema; deeper is refused before validation. Default
	// schema.DefaultMaxDepth (64).
	MaxJSONDepth int
	// MaxConnections caps concurrent WebSocket connections and event
	// streams. Default 10,000.
	MaxConnections int
	// MaxConnectionsPerIP caps them per client address (behind a proxy,
	// see TrustedProxies). Zero or negative: no limit, the default.
	MaxConnectionsPerIP int
	// PublishRate caps the messages per second one WebSocket connection,
	// or one client address over HTTP, may publish (token bucket);
	// PublishBurst is the bucket's size, default one second's worth. A
	// connection over the rate is paused (its socket is not read until
	// the bucket allows), a POST gets 429 with Retry-After: nothing is
	// dropped. 0 (the default) or negative: no limit.
	PublishRate  float64
	PublishBurst int
	// IdleTimeout closes a WebSocket connection on which no message went
	// either way for that long (pings do not count). Zero: never.
	IdleTimeout time.Duration
	// RequestTimeout bounds how long a POST may take to send its body.
	// Default 10s.
	RequestTimeout time.Duration
	// Compression turns on permessage-deflate for clients that ask; the
	// message size limit applies to the decompressed message. Default off.
	Compression bool
	// Auth decides who may do what; nil: everyone may do everything (a
	// broker on loopback without auth configured). SetAuth replaces it.
	Auth *auth.Authenticator
	// AdminSeparate serves the admin API only from AdminHandler (its own
	// listener), not from the main handler.
	AdminSeparate bool
	// OutgoingQueue caps the bytes waiting to be written to one
	// connection (each frame counting 64 bytes beyond its size); past it
	// the connection is closed as a slow consumer. It is also the budget
	// of payload bytes a puller is offered at once (at least one message
	// whatever its size). Default 1 MiB.
	OutgoingQueue int
	// SocketSendBuffer caps the kernel's send buffer of each WebSocket
	// connection's socket (SO_SNDBUF), so a peer that stops reading pins
	// little kernel memory; event streams too when the http.Server has
	// Server.ConnContext. Default 256 KiB; negative: the kernel's own
	// sizing (up to net.ipv4.tcp_wmem's maximum, 4 MiB by default).
	SocketSendBuffer int
	// PingInterval is how often each connection is pinged. Default 30s.
	PingInterval time.Duration
	// PongTimeout is how long a ping may wait for its pong before the
	// connection is dropped. Default 20s.
	PongTimeout time.Duration
	// WriteTimeout bounds one network write. Default 10s.
	WriteTimeout time.Duration
	// WriteCoalesce, when positive, holds a subscriber's next write until
	// this long after its last one, or until 4 frames or 4 KiB wait, so
	// that under sustained traffic several messages share one system call:
	// less CPU per delivery for at most this much latency. The first
	// message after a quiet spell is written at once; other patterns
	// always write at once. 0 (the zero value): every message is written
	// as soon as possible. (The command's default is 5ms.)
	WriteCoalesce time.Duration
	// LogBodies adds the message body to the log line of a refused
	// message. Off by default: bodies may hold what logs should not.
	LogBodies bool
	// Metrics is the registry /metrics serves; nil: the server makes its
	// own. Pass one to add the store's and the bridge's figures to it.
	Metrics *metrics.Metrics
	// Ready reports, for /readyz, whether what the broker depends on
	// beyond itself (the durable store) works; nil: nothing to check.
	Ready func() error
	// SSEHeartbeat is how often an idle event stream gets a comment, to
	// keep proxies from closing it. Default 15s.
	SSEHeartbeat time.Duration
	// Topics bounds topic length and depth.
	Topics broker.TopicLimits
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Buses are the buses in force at start: policies and schemas. Nil:
	// no buses, every topic accepts anything.
	Buses *Buses
	// Reload builds new buses, for SIGHUP and POST /api/reload (see
	// Server.Reload). Nil: the server cannot reload.
	Reload func() (*Buses, error)
}

// Defaults of Options.
const (
	DefaultMaxMessageSize = 1 << 20
	DefaultMaxConnections = 10000
	DefaultRequestTimeout = 10 * time.Second
	DefaultOutgoingQueue  = 1 << 20
	DefaultSocketSendBuf  = 256 << 10
	DefaultPingInterval   = 30 * time.Second
	DefaultPongTimeout    = 20 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultSSEHeartbeat   = 15 * time.Second
)

func (o *Options) setDefaults() {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxJSONDepth <= 0 {
		o.MaxJSONDepth = schema.DefaultMaxDepth
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.PublishRate > 0 && o.PublishBurst <= 0 {
		o.PublishBurst = max(1, int(o.PublishRate))
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.OutgoingQueue <= 0 {
		o.OutgoingQueue = DefaultOutgoingQueue
	}
	if o.SocketSendBuffer == 0 {
		o.SocketSendBuffer = DefaultSocketSendBuf
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = DefaultPongTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.SSEHeartbeat <= 0 {
		o.SSEHeartbeat = DefaultSSEHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server serves Mercury's wire over HTTP and WebSocket for one broker.
type Server struct {
	broker  *broker.Broker
	opts    Options
	origin  originPolicy
	hosts   hostPolicy
	router  chi.Router
	guarded http.Handler // the router behind the guard
	log     *slog.Logger

	auth atomic.Pointer[auth.Authenticator] // nil: everything allowed

	mu       sync.Mutex
	conns    map[*conn]struct{}
	streams  map[*sseStream]struct{} // event streams
	open     int                     // WebSocket connections and event streams
	perIP    map[string]int          // the same, per client address
	shutdown bool
	done     chan struct{}  // closed by Shutdown: event streams end
	wg       sync.WaitGroup // every goroutine a connection owns

	slowConsumers atomic.Int64
	lastConnID    uint64 // under mu
	refusals      refusalCounts
	refusalLog    logLimiter
	metrics       *metrics.Metrics
	started       time.Time
	rates         rateSampler // messages per second for the overview

	buses    atomic.Pointer[Buses] // swapped whole by Reload
	reloadMu sync.Mutex            // one reload at a time

	writersOnce sync.Once
	writerPool  *writers // started with the first connection

	postRates postRates // the publish rate of HTTP requests
}

// writers returns the writer shards, starting them the first time.
func (s *Server) writers() *writers {
	s.writersOnce.Do(func() { s.writerPool = startWriters(s.opts.WriteCoalesce) })
	return s.writerPool
}

// stopWriters stops the writer shards once every connection is gone.
func (s *Server) stopWriters() {
	s.writersOnce.Do(func() {}) // none may start after this
	if s.writerPool != nil {
		s.writerPool.stop()
		s.writerPool = nil
	}
}

// New returns a Server for b. It fails only on bad options.
func New(b *broker.Broker, opts Options) (*Server, error) {
	opts.setDefaults()
	origin, err := newOriginPolicy(opts.AllowOrigins)
	if err != nil {
		return nil, err
	}
	hosts, err := newHostPolicy(opts.AllowedHosts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		broker:  b,
		opts:    opts,
		origin:  origin,
		hosts:   hosts,
		log:     opts.Logger,
		conns:   make(map[*conn]struct{}),
		streams: make(map[*sseStream]struct{}),
		perIP:   make(map[string]int),
		done:    make(chan struct{}),

		metrics: opts.Metrics,
		started: time.Now(),
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	s.metrics.Watch(s)
	s.watchRequests()
	s.auth.Store(opts.Auth)
	if opts.Buses != nil {
		s.buses.Store(opts.Buses)
	}
	s.router = s.routes()
	s.guarded = s.guard(s.router)
	return s, nil
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Get("/healthz", healthz)
	r.Get("/readyz", s.handleReady)
	// The dashboard: static, without auth; it asks for a token when the
	// API answers 401.
	dashboard := ui.Handler()
	r.Get("/", dashboard.ServeHTTP)
	r.Get("/ui/*", dashboard.ServeHTTP)
	// The JavaScript client: public code, without auth, like the dashboard.
	r.Get("/mercury.js", mercuryjs.Handler().ServeHTTP)
	if !s.opts.AdminSeparate {
		s.adminRoutes(r)
	}
	r.Get("/presence/*", s.handlePresence)
	r.Post("/req/*", s.handleRequest)
	for _, p := range patterns {
		r.Get("/"+p.String()+"/*", s.handleWebSocket(p))
		if p.postable() {
			r.Post("/"+p.String()+"/*", s.handlePost(p))
		}
	}
	return r
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.guarded.ServeHTTP(w, r)
}

// guard is in front of every route, on every listener: it finds the
// client's address (behind trusted proxies), then checks the Host and the
// Origin and answers CORS.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = proxyTrust(s.opts.TrustedProxies).withClient(r)
		if aerr := s.hosts.check(r, s.auth.Load() != nil); aerr != nil {
			s.refused(refusedHost, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		ok, cors := s.origin.check(r)
		if !ok {
			s.refused(refusedOrigin, originRefusal(r), r.RemoteAddr, nil).write(w)
			return
		}
		if cors {
			setCORS(w, r)
			if isPreflight(r) {
				answerPreflight(w)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// topicOf returns the topic of a request to /{pattern}/{topic}. The path
// is the decoded one, so %2F is a separator; the query is never part of it.
func (s *Server) topicOf(p pattern, r *http.Request) (broker.Topic, *apiError) {
	raw := strings.TrimPrefix(r.URL.Path, "/"+p.String())
	if raw == "" || raw == "/" {
		return "", s.refused(refusedTopic, &apiError{Status: http.StatusNotFound, Code: "no_topic",
			Message: fmt.Sprintf("no topic: use /%s/<topic>, for example /%s/livesys/42", p, p)}, r.RemoteAddr, nil)
	}
	t, err := s.opts.Topics.Parse(raw)
	if err != nil {
		return "", s.refused(refusedTopic, &apiError{Status: http.StatusBadRequest, Code: "topic", Topic: raw, Message: err.Error()}, r.RemoteAddr, nil)
	}
	return t, nil
}

// SlowConsumers returns how many connections were closed for not reading
// fast enough.
func (s *Server) SlowConsumers() int64 { return s.slowConsumers.Load() }

// Connections returns the number of open WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

var errShuttingDown = errors.New("web: server is shutting down")

// register adds c to the live connections, unless the server is full or
// shutting down.
func (s *Server) register(c *conn) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.admitLocked(c.remote); aerr != nil {
		return aerr
	}
	s.lastConnID++
	c.id = s.lastConnID
	s.conns[c] = struct{}{}
	s.wg.Add(1) // done when the connection's handler returns
	return nil
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.releaseLocked(c.remote)
	s.mu.Unlock()
}

// Shutdown closes every WebSocket connection with 1001 "going away" and
// refuses new ones. It returns once all connections are gone, or when ctx
// ends, cutting those left. Stopping the listener and waiting for plain
// HTTP requests is the http.Server's job (http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		close(s.done)
	}
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(1001, "going away")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	defer s.stopWriters()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			if c.ws != nil {
				c.ws.CloseNow()
			}
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
