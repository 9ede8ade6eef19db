package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"

	"github.com/mercury-broker/mercury/broker"
)

// Options configures a Backplane. The zero value connects to a local NATS
// server with the defaults.
type Options struct {
	// URLs are the NATS servers to connect to. Default nats://127.0.0.1:4222.
	URLs []string
	// Name names the cluster: the brokers that share a name act as one.
	// Several clusters may share one NATS deployment under different
	// names. Lower-case letters, digits, '-' and '_'. Default "mercury".
	Name string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed).
	CredsFile string
	// TLSCA, TLSCert and TLSKey are PEM files: the CA that signed the
	// servers' certificates, and a client certificate with its key.
	TLSCA, TLSCert, TLSKey string
	// Replicas is how many NATS servers keep each stream. Default: 3 when
	// the server is part of a NATS cluster, 1 otherwise.
	Replicas int
	// MaxBytes bounds the published messages kept. Default 1 GiB.
	MaxBytes int64
	// QueueLimit bounds the messages waiting in one queue. Default
	// broker.DefaultQueueLimit.
	QueueLimit int
	// Timeout bounds one request to NATS. Default 5s.
	Timeout time.Duration
	// Heartbeat is how often a broker tells the others it is alive, for
	// presence: one not heard for three heartbeats is gone, with its
	// subscriptions. Default 2s.
	Heartbeat time.Duration
	// Logger receives what the backplane has to say. Default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultURL      = nats.DefaultURL
	DefaultName     = "mercury"
	DefaultMaxBytes = 1 << 30
	DefaultTimeout  = 5 * time.Second
)

// maxAsyncPending bounds the publishes in flight without waiting, on one
// broker: past it, a publisher waits.
const maxAsyncPending = 4096

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Errors of the package.
var (
	ErrBadName = errors.New("nats: a cluster name is 1 to 32 lower-case letters, digits, '-' or '_'")
)

// Backplane is a broker.Backplane and broker.QueueBackplane on NATS
// JetStream. Make one with Connect.
type Backplane struct {
	opts Options
	log  *slog.Logger
	node string
	nc   *nats.Conn
	js   jetstream.JetStream

	pubPrefix, busPrefix, queuePrefix, deadPrefix, ctlPrefix string
	stream, queueStream, deadStream                          string
	queueInfo, pullers, uncounted                            jetstream.KeyValue

	async     sync.Map    // *nats.Msg → asyncPub: publishes waiting for JetStream
	oneFilter atomic.Bool // the servers take one subject filter per consumer (before 2.10)

	mu        sync.Mutex
	feed      *feed                      // this broker's consumer of the message stream
	epoch     string                     // of the message stream's sequence numbers
	queues    map[string]*remoteQueue    // this broker's holds on queues, by key
	touched   map[broker.Topic]time.Time // when to record a queue's use next
	policyAge time.Duration              // the longest history the bus settings keep
	policyMsg int64
	closed    bool

	agentsOnce sync.Once
	ag         *agents // presence and requests (agents.go)

	sweepWait atomic.Int64  // how long the sweeper waits now
	sweepSoon chan struct{} // wakes the sweeper

	ctx      context.Context // ends on Close
	cancel   context.CancelFunc
	fetchers sync.WaitGroup // the queues' fetchers, which end before ctx
	wg       sync.WaitGroup // every other goroutine the backplane starts
}

// Connect connects to NATS, creates the streams and buckets that are
// missing, and returns the backplane. It fails when NATS cannot be reached
// or refuses; once connected, it reconnects by itself.
func Connect(opts Options) (*Backplane, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if len(opts.URLs) == 0 {
		opts.URLs = []string{DefaultURL}
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = broker.DefaultQueueLimit
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Backplane{
		opts: opts, log: opts.Logger, node: nuid.Next(),
		pubPrefix: opts.Name + ".m", busPrefix: opts.Name + ".b", queuePrefix: opts.Name + ".q",
		deadPrefix: opts.Name + ".d", ctlPrefix: opts.Name + ".ctl",
		stream:      strings.ToUpper(opts.Name),
		queueStream: strings.ToUpper(opts.Name) + "_QUEUES",
		deadStream:  strings.ToUpper(opts.Name) + "_DEAD",
		queues:      make(map[string]*remoteQueue),
		touched:     make(map[broker.Topic]time.Time),
		sweepSoon:   make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	url := strings.Join(opts.URLs, ",")
	var err error
	p.nc, err = nats.Connect(url, p.natsOptions()...)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to NATS at %s: %w", url, err)
	}
	if err := p.adaptToServer(); err != nil {
		p.abandon()
		return nil, err
	}
	p.js, err = jetstream.New(p.nc,
		jetstream.WithPublishAsyncAckHandler(p.asyncAcked),
		jetstream.WithPublishAsyncErrHandler(p.asyncFailed),
		jetstream.WithPublishAsyncTimeout(opts.Timeout),
		jetstream.WithPublishAsyncMaxPending(maxAsyncPending))
	if err == nil {
		err = p.setUp()
	}
	if err == nil {
		err = p.listenEvictions()
	}
	if err != nil {
		p.abandon()
		return nil, err
	}
	p.wg.Go(p.sweep)
	p.wg.Go(p.refreshPullers)
	p.log.Info("cluster: connected to NATS", "url", p.nc.ConnectedUrlRedacted(), "server", p.nc.ConnectedServerName(),
		"version", p.nc.ConnectedServerVersion(), "cluster", opts.Name, "node", p.node)
	return p, nil
}

// abandon closes the connection of a Connect that failed, as Close would:
// no "lost NATS" warning for it.
func (p *Backplane) abandon() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.nc.Close()
	p.cancel()
}

// natsOptions turns the options into the NATS client's.
func (p *Backplane) natsOptions() []nats.Option {
	o := p.opts
	nopts := []nats.Option{
		nats.Name("mercury " + p.node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// What cannot be sent now fails now: a publisher is told, never
		// confirmed for a message that waits in a buffer.
		nats.ReconnectBufSize(-1),
		nats.Timeout(o.Timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed { // our own Close, not an outage
				return
			}
			p.log.Warn("cluster: lost NATS; refusing messages until it is back", "err", err)
			p.suspectAll()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			p.log.Info("cluster: reconnected to NATS", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName(),
				"version", nc.ConnectedServerVersion())
			if err := p.adaptToServer(); err != nil {
				p.log.Error("cluster: reconnected to a NATS server too old for the cluster", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.log.Warn("cluster: NATS error", "err", err)
		}),
	}
	if o.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCA != "" {
		nopts = append(nopts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" && o.TLSKey != "" { // Check refused one without the other
		nopts = append(nopts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	return nopts
}

// Check reports what in o would make Connect fail before it reaches NATS:
// a bad cluster name, or a credentials or TLS file that cannot be read.
// The error is an *OptionError.
func (o Options) Check() error {
	if o.Name != "" && !nameRE.MatchString(o.Name) {
		return &OptionError{"Name", fmt.Errorf("%w, got %q", ErrBadName, o.Name)}
	}
	if o.CredsFile != "" {
		// What nats.UserCredentials reads, only when it connects.
		creds, err := os.ReadFile(o.CredsFile)
		if err == nil {
			_, err = nkeys.ParseDecoratedNKey(creds)
		}
		if err != nil {
			return &OptionError{"CredsFile", fmt.Errorf("nats: credentials file %s: %w", o.CredsFile, err)}
		}
	}
	var no nats.Options // nats.go's options load the TLS files
	if o.TLSCA != "" {
		if err := nats.RootCAs(o.TLSCA)(&no); err != nil {
			return &OptionError{"TLSCA", err}
		}
	}
	switch {
	case o.TLSCert != "" && o.TLSKey != "":
		if err := nats.ClientCert(o.TLSCert, o.TLSKey)(&no); err != nil {
			return &OptionError{"TLSCert", err}
		}
	case o.TLSCert != "":
		return &OptionError{"TLSKey", errHalfClientCert}
	case o.TLSKey != "":
		return &OptionError{"TLSCert", errHalfClientCert}
	}
	return nil
}

var errHalfClientCert = errors.New("nats: a client certificate needs both its file and its key file")

// OptionError is an option Connect cannot use; Option names its field of
// Options.
type OptionError struct {
	Option string
	Err    error
}

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// Node identifies this broker (broker.Backplane).
func (p *Backplane) Node() string { return p.node }

// Ready returns nil while connected to NATS (broker.Backplane).
func (p *Backplane) Ready() error {
	if st := p.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: not connected to NATS (%s); reconnecting", broker.ErrUnavailable, strings.ToLower(st.String()))
	}
	return nil
}

// Close stops the feed and the queues, and disconnects.
func (p *Backplane) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	feed := p.feed
	var held []*remoteQueue
	for _, q := range p.queues {
		held = append(held, q)
	}
	p.mu.Unlock()
	if feed != nil {
		feed.close()
	}
	for _, q := range held {
		q.Close()
	}
	// The fetchers unregister the pullers on their way out: with ctx
	// ended they could not, and other brokers would wait for the leases.
	p.fetchers.Wait()
	p.cancel()
	p.wg.Wait()
	// Drain sends what waits (acknowledgements) before closing; a
	// connection that is down is closed at once.
	err := p.nc.Drain()
	deadline := time.Now().Add(p.opts.Timeout)
	for err == nil && !p.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.nc.Close()
	if err != nil && !errors.Is(err, nats.ErrConnectionReconnecting) && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("failed to drain the NATS connection: %w", err)
	}
	return nil
}

// reqCtx bounds one request to NATS.
func (p *Backplane) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, p.opts.Timeout)
}

// transient reports whether err may pass by itself: JetStream answered
// nobody for a moment, as while a stream elects a leader.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// retry runs fn until it succeeds, fails for good, or a few tries in a
// row met a transient failure.
func (p *Backplane) retry(fn func() error) error {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		err := fn()
		if err == nil || !transient(err) || try == 5 || p.ctx.Err() != nil {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// unavailable wraps err as broker.ErrUnavailable when it comes from a
// connection that is down or a cluster that does not answer.
func (p *Backplane) unavailable(what string, err error) error {
	if p.nc.Status() != nats.CONNECTED || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: failed to %s: %w", broker.ErrUnavailable, what, err)
	}
	return fmt.Errorf("failed to %s: %w", what, err)
}

var (
	_ broker.Backplane      = (*Backplane)(nil)
	_ broker.QueueBackplane = (*Backplane)(nil)
	_ broker.PolicyWatcher  = (*Backplane)(nil)
	_ broker.AsyncPublisher = (*Backplane)(nil)
	_ broker.InterestFeed   = (*Backplane)(nil)
)
