package minion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/web/client"
)

// AuditOptions configures an Auditor. The zero value is the documented
// default, except Broker, which must be set.
type AuditOptions struct {
	// Broker is the broker's base URL: ws://host:port or http://host:port.
	Broker string
	// Header is sent with the WebSocket handshake (say, Authorization).
	Header http.Header
	// HTTPClient makes the handshake; default http.DefaultClient.
	HTTPClient *http.Client
	// Topic is subscribed to, with everything under it; default
	// DefaultTopic.
	Topic string
	// Schema holds the audit tables; default public.
	Schema string
	// Batch is the most events stored in one transaction; default 200.
	Batch int
	// FlushInterval is how long events may wait to fill a batch; default
	// 20ms.
	FlushInterval time.Duration
	// RetryMax caps the wait between reconnections; default 5s.
	RetryMax time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AuditStats is what an Auditor has done.
type AuditStats struct {
	Connected  bool   `json:"connected"`
	Stored     uint64 `json:"stored"`     // events written
	Duplicates uint64 `json:"duplicates"` // events received again (same event id) and skipped
	Invalid    uint64 `json:"invalid"`    // messages under the topic that are not events
	Gaps       uint64 `json:"gaps"`       // ranges the broker no longer had
	LastSeq    uint64 `json:"last_seq"`
	LastError  string `json:"last_error,omitempty"`
}

// Auditor subscribes to the bridge's events and keeps each one once in the
// audit log. It resumes after the sequence number it stored last, so a
// restart of the logger or of a broker with durable history loses nothing;
// a range the broker no longer has is recorded in mercury_audit_gaps.
type Auditor struct {
	open func(context.Context) (auditDB, error)
	opts AuditOptions
	lg   *slog.Logger

	mu    sync.Mutex
	stats AuditStats
}

// NewAuditor returns an auditor writing to the database at dsn.
func NewAuditor(dsn string, opts AuditOptions) (*Auditor, error) {
	l, err := NewAuditLog(opts.Schema)
	if err != nil {
		return nil, err
	}
	return newAuditor(opts, func(ctx context.Context) (auditDB, error) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("failed to connect to PostgreSQL: %w", err)
		}
		return &pgAuditDB{conn: conn, log: l}, nil
	})
}

// NewSQLiteAuditor returns an auditor writing to the SQLite database at
// path, created when missing.
func NewSQLiteAuditor(path string, opts AuditOptions) (*Auditor, error) {
	return newAuditor(opts, func(ctx context.Context) (auditDB, error) {
		db, err := OpenSQLite(path, false)
		if err != nil {
			return nil, err
		}
		return &sqliteAuditDB{db: db}, nil
	})
}

func newAuditor(opts AuditOptions, open func(context.Context) (auditDB, error)) (*Auditor, error) {
	if opts.Broker == "" {
		return nil, errors.New("minion: the audit logger needs the broker's URL")
	}
	if opts.Topic == "" {
		opts.Topic = DefaultTopic
	}
	if opts.Batch <= 0 {
		opts.Batch = 200
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 20 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Auditor{open: open, opts: opts, lg: opts.Logger}, nil
}

// Stats returns what the auditor has done so far.
func (a *Auditor) Stats() AuditStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

func (a *Auditor) update(f func(*AuditStats)) {
	a.mu.Lock()
	f(&a.stats)
	a.mu.Unlock()
}

// Run subscribes and stores until ctx ends, reconnecting to PostgreSQL and
// to the broker after errors; it returns nil then.
func (a *Auditor) Run(ctx context.Context) error {
	wait := backoff{max: a.opts.RetryMax}
	for {
		err := a.session(ctx, &wait)
		a.update(func(s *AuditStats) { s.Connected = false })
		if ctx.Err() != nil {
			return nil
		}
		a.update(func(s *AuditStats) { s.LastError = err.Error() })
		d := wait.next()
		a.lg.Warn("audit: reconnecting", "err", err, "in", d)
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// envelope is a frame of an envelope-mode subscription.
type envelope struct {
	Topic    string          `json:"topic"`
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding"`
	Gap      *struct {
		From uint64 `json:"from"`
		To   uint64 `json:"to"`
	} `json:"gap"`
}

// SubscribeURL returns the URL that subscribes to topic on broker in
// envelope mode, replaying what came after since.
func SubscribeURL(broker, topic string, since uint64) string {
	q := url.Values{"envelope": {"1"}, "since": {strconv.FormatUint(since, 10)}}
	return strings.TrimRight(broker, "/") + "/sub" + EscapeTopic(topic) + "?" + q.Encode()
}

func (a *Auditor) session(ctx context.Context, wait *backoff) error {
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx))
	if err := db.install(ctx); err != nil {
		return err
	}
	since, err := db.cursor(ctx, a.opts.Topic)
	if err != nil {
		return err
	}
	u := SubscribeURL(a.opts.Broker, a.opts.Topic, since)
	ws, err := client.Dial(ctx, u, &client.Options{Header: a.opts.Header, HTTPClient: a.opts.HTTPClient})
	if err != nil {
		return fmt.Errorf("failed to subscribe to %s: %w", u, err)
	}
	defer ws.CloseNow()
	a.update(func(s *AuditStats) { s.Connected = true })
	a.lg.Info("audit: subscribed", "topic", a.opts.Topic, "since", since, "broker", a.opts.Broker)

	frames := make(chan []byte, a.opts.Batch)
	readErr := make(chan error, 1)
	rctx, stopReading := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopReading()
	wg.Go(func() {
		defer close(frames)
		for {
			f, err := ws.Read(rctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- f.Data:
			case <-rctx.Done():
				return
			}
		}
	})

	var batch []Received
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := db.store(ctx, a.opts.Topic, batch)
		if err != nil {
			return err
		}
		last := batch[len(batch)-1].Seq
		valid := 0
		for _, m := range batch {
			if _, err := parseEvent(m.Data); err == nil {
				valid++
			}
		}
		a.update(func(s *AuditStats) {
			s.Stored += uint64(n)
			s.Duplicates += uint64(valid - n)
			s.LastSeq = last
		})
		batch = batch[:0]
		wait.reset()
		return nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f, ok := <-frames:
			if !ok {
				if err := flush(); err != nil {
					return err
				}
				return fmt.Errorf("subscription ended: %w", <-readErr)
			}
			var env envelope
			if err := json.Unmarshal(f, &env); err != nil {
				a.invalid(0, fmt.Errorf("not an envelope: %w", err))
				continue
			}
			if env.Gap != nil {
				if err := flush(); err != nil {
					return err
				}
				a.lg.Error("audit: the broker no longer has these messages; they are missing from the audit log",
					"topic", a.opts.Topic, "from", env.Gap.From, "to", env.Gap.To)
				if err := db.gap(ctx, a.opts.Topic, env.Gap.From, env.Gap.To); err != nil {
					return err
				}
				a.update(func(s *AuditStats) { s.Gaps++ })
				continue
			}
			if env.Encoding != "" {
				a.invalid(env.Seq, fmt.Errorf("the message is %s, not JSON", env.Encoding))
			} else if _, err := parseEvent(env.Data); err != nil {
				a.invalid(env.Seq, err)
			}
			if len(batch) == 0 {
				timer.Reset(a.opts.FlushInterval)
			}
			batch = append(batch, Received{Seq: env.Seq, Topic: env.Topic, Time: env.Time, Data: env.Data})
			if len(batch) >= a.opts.Batch {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

func (a *Auditor) invalid(seq uint64, err error) {
	a.update(func(s *AuditStats) { s.Invalid++ })
	a.lg.Warn("audit: skipping a message that is not an event", "topic", a.opts.Topic, "seq", seq, "err", err)
}
