package minion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configures a Bridge. The zero value is the documented default.
type Options struct {
	// Schema holds Minion's tables and the outbox; "" means the schema of
	// the minion_jobs table the search path finds.
	Schema string
	// Topic is the base topic of the events; default DefaultTopic.
	Topic string
	// Compat, when set, also receives the frames the old notifier sent
	// ([id,"enqueue"] …), through CompatTopic.
	Compat Publisher
	// CompatTopic is the topic of the compatibility frames, say "/jobs" on
	// the bus pattern.
	CompatTopic string
	// Instance names this bridge in events and logs; default host/pid.
	Instance string
	// Batch is the most rows read and published at once; default 500.
	Batch int
	// MaxEventSize is the largest event published, in bytes: set it to
	// the broker's largest message. Bigger events have their biggest values
	// cut (see Event.Cut). Default DefaultMaxEventSize.
	MaxEventSize int
	// PollInterval is how long to wait for a NOTIFY before looking anyway;
	// default 5s.
	PollInterval time.Duration
	// RetryMax caps the wait between attempts after an error (it starts at
	// 100ms and doubles); default 5s.
	RetryMax time.Duration
	// LagInterval is how often the lag is measured and logged; default 10s.
	LagInterval time.Duration
	// WorkerMemory is how long a worker that is gone stays remembered for
	// events about its jobs; default 7 days.
	WorkerMemory time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// WakeInterval is, on SQLite, how often the bridge looks whether the
	// database changed (PRAGMA data_version); default 20ms.
	WakeInterval time.Duration
	// LockLease is, on SQLite, how long the active bridge's lock lasts
	// unless renewed: a standby takes over that long after the active
	// bridge hung or its host died; default 10s.
	LockLease time.Duration
}

func (o *Options) setDefaults() {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Instance == "" {
		host, _ := os.Hostname()
		o.Instance = host + "/" + strconv.Itoa(os.Getpid())
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.MaxEventSize <= 0 {
		o.MaxEventSize = DefaultMaxEventSize
	}
	o.MaxEventSize = max(o.MaxEventSize, 16<<10) // room for an event with every value cut
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 10 * time.Second
	}
	if o.WorkerMemory <= 0 {
		o.WorkerMemory = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WakeInterval <= 0 {
		o.WakeInterval = 20 * time.Millisecond
	}
	if o.LockLease <= 0 {
		o.LockLease = 10 * time.Second
	}
}

// Stats is what a running bridge has done; Bridge.Stats returns a copy.
type Stats struct {
	Active         bool      `json:"active"`    // connected and holding the outbox
	Published      uint64    `json:"published"` // events confirmed by the broker
	Failures       uint64    `json:"failures"`  // failed publish attempts
	CompatSent     uint64    `json:"compat_sent"`
	CompatFailures uint64    `json:"compat_failures"`
	LastPublished  time.Time `json:"last_published"`
	LastError      string    `json:"last_error,omitempty"`
	Lag            Lag       `json:"lag"`
	LagMeasured    time.Time `json:"lag_measured"`
}

// Bridge reads the outbox, publishes one event per row and deletes the
// rows the broker confirmed. Only one bridge per schema is active at a time
// (a PostgreSQL advisory lock); others stand by.
type Bridge struct {
	dsn    string
	sqlite string // the SQLite database's path, when it is one
	pub    Publisher
	opts   Options
	log    *slog.Logger

	mu    sync.Mutex
	stats Stats
}

// New returns a bridge reading the database at dsn (a PostgreSQL URL or
// key=value string) and publishing through pub.
func New(dsn string, pub Publisher, opts Options) *Bridge {
	opts.setDefaults()
	return &Bridge{dsn: dsn, pub: pub, opts: opts, log: opts.Logger}
}

// Stats returns what the bridge has done so far, and the last lag
// measured.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

func (b *Bridge) update(f func(*Stats)) {
	b.mu.Lock()
	f(&b.stats)
	b.mu.Unlock()
}

// Run runs the bridge until ctx ends, reconnecting after errors; it
// returns nil then. It returns an error at once when the bridge is not
// installed.
func (b *Bridge) Run(ctx context.Context) error {
	wait := backoff{max: b.opts.RetryMax}
	for {
		var err error
		if b.sqlite != "" {
			err = b.sqliteSession(ctx, &wait)
		} else {
			err = b.session(ctx, &wait)
		}
		b.update(func(s *Stats) { s.Active = false })
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrNoMinion) || errors.Is(err, ErrConfig) {
			return err
		}
		b.update(func(s *Stats) { s.LastError = err.Error() })
		d := wait.next()
		b.log.Warn("minion bridge: reconnecting", "err", err, "in", d)
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// session is one connection to PostgreSQL: hold the outbox, listen, and
// publish until an error.
func (b *Bridge) session(ctx context.Context, wait *backoff) error {
	conn, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema, err := ResolveSchema(ctx, conn, b.opts.Schema)
	if err != nil {
		return err
	}
	in, err := Inspect(ctx, conn, schema)
	if err != nil {
		return err
	}
	if !in.Outbox || !in.JobsTrigger {
		return fmt.Errorf("%w in schema %s: run 'mercury bridge minion install' first", ErrNotInstalled, schema)
	}
	if in.SchedulesTable && !in.SchedulesTrig {
		b.log.Warn("minion bridge: minion_schedules is not captured; run 'mercury bridge minion install' again", "schema", schema)
	}
	var database string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		return fmt.Errorf("failed to read the database name: %w", err)
	}
	if err := b.hold(ctx, conn, schema); err != nil {
		return err
	}

	// NOTIFY only wakes the loop: the outbox is the truth, read on start,
	// on every wake-up and every PollInterval.
	listen, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer listen.Close(context.WithoutCancel(ctx))
	if _, err := listen.Exec(ctx, `LISTEN mercury_minion`); err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	wake := make(chan struct{}, 1)
	listenErr := make(chan error, 1)
	lctx, stopListen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopListen()
	wg.Go(func() {
		for {
			if _, err := listen.WaitForNotification(lctx); err != nil {
				listenErr <- err
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})

	b.update(func(s *Stats) { s.Active = true })
	b.log.Info("minion bridge: publishing", "schema", schema, "database", database, "topic", b.opts.Topic, "instance", b.opts.Instance)
	src := &pgSource{conn: conn, outbox: NewOutbox(schema), instance: b.opts.Instance}
	s := &run{Bridge: b, src: src,
		info: BuildInfo{Database: database, Schema: schema, Instance: b.opts.Instance}}
	var lastPrune time.Time
	for {
		if err := s.drain(ctx, wait); err != nil {
			return err
		}
		wait.reset()
		if err := s.measure(ctx); err != nil {
			return err
		}
		if time.Since(lastPrune) >= time.Hour {
			lastPrune = time.Now()
			if err := src.pruneWorkers(ctx, b.opts.WorkerMemory); err != nil {
				return err
			}
		}
		// Rows that are committed but not yet below the horizon announce
		// no more NOTIFY: look again soon.
		delay := b.opts.PollInterval
		var waiting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+src.outbox.table+`)`).Scan(&waiting); err != nil {
			return fmt.Errorf("failed to look at the outbox: %w", err)
		}
		if waiting {
			delay = 50 * time.Millisecond
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case err := <-listenErr:
			t.Stop()
			return fmt.Errorf("lost the LISTEN connection: %w", err)
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// connect opens a connection named ApplicationName unless the DSN names
// it otherwise.
func (b *Bridge) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(b.dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: the PostgreSQL URL: %w", ErrConfig, err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to PostgreSQL: %w", err)
	}
	return conn, nil
}

// hold takes the advisory lock that makes this the one active bridge of
// the schema, waiting while another bridge holds it.
func (b *Bridge) hold(ctx context.Context, conn *pgx.Conn, schema string) error {
	for logged := false; ; logged = true {
		var ok bool
		err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('mercury_minion_bridge'), hashtext($1))`, schema).Scan(&ok)
		if err != nil {
			return fmt.Errorf("failed to take the bridge lock: %w", err)
		}
		if ok {
			return nil
		}
		if !logged {
			b.log.Info("minion bridge: another bridge publishes this outbox; standing by", "schema", schema)
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
}

// source is one database's outbox as a session reads it.
type source interface {
	// Next returns up to limit readable rows in reading order.
	Next(ctx context.Context, limit int) ([]Change, error)
	// Ack deletes the delivered rows ids and records last (the latest of
	// them, confirmed with seq) as the cursor, in one transaction.
	Ack(ctx context.Context, ids []int64, last Change, seq uint64) error
	// Lag measures the outbox.
	Lag(ctx context.Context) (Lag, error)
}

// run is one session's state.
type run struct {
	*Bridge
	src   source
	info  BuildInfo
	lagAt time.Time // when the lag was last measured
}

// drain publishes every readable row, batch after batch.
func (s *run) drain(ctx context.Context, wait *backoff) error {
	for {
		changes, err := s.src.Next(ctx, s.opts.Batch)
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		changes = untilTruncate(changes)
		s.info.Read = time.Now()
		msgs := make([]Message, len(changes))
		events := make([]*Event, len(changes))
		for i, c := range changes {
			e, err := BuildEvent(c, s.info)
			if err != nil {
				return err
			}
			payload, err := encodeEvent(e, s.opts.MaxEventSize)
			if err != nil {
				return fmt.Errorf("failed to encode event %s: %w", e.EventID, err)
			}
			if e.Cut {
				s.log.Warn("minion bridge: event too big for the broker; values cut", "event_id", e.EventID,
					"job_id", e.JobID, "type", e.Type, "max", s.opts.MaxEventSize)
			}
			topic := Topic(s.opts.Topic, e)
			events[i] = e
			msgs[i] = Message{Topic: topic, Payload: payload, Key: topic}
		}
		if err := s.deliver(ctx, changes, events, msgs, wait); err != nil {
			return err
		}
	}
}

// untilTruncate cuts a batch so that a truncation is published alone,
// after everything before it and before everything after it.
func untilTruncate(changes []Change) []Change {
	for i, c := range changes {
		if c.Op == "TRUNCATE" {
			if i == 0 {
				return changes[:1]
			}
			return changes[:i]
		}
	}
	return changes
}

// deliver publishes msgs until all are confirmed, deleting confirmed rows
// after each attempt.
func (s *run) deliver(ctx context.Context, changes []Change, events []*Event, msgs []Message, wait *backoff) error {
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		batch := make([]Message, len(pending))
		for j, i := range pending {
			batch[j] = msgs[i]
		}
		seqs, perr := s.pub.Publish(ctx, batch)
		var done, left []int
		for j, i := range pending {
			if seqs != nil && seqs[j] != 0 {
				done = append(done, i)
			} else {
				left = append(left, i)
			}
		}
		if len(done) > 0 {
			s.compat(ctx, events, done)
			if err := s.ack(ctx, changes, events, done, seqs, pending); err != nil {
				return err
			}
		}
		if perr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := wait.next()
		s.update(func(st *Stats) { st.Failures++; st.LastError = perr.Error() })
		s.log.Warn("minion bridge: publish failed; the events wait in the outbox", "err", perr, "waiting", len(left), "retry_in", d)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
		if err := s.measure(ctx); err != nil {
			return err
		}
		pending = left
	}
	return nil
}

// ack deletes the confirmed rows and records the cursor, in one
// transaction.
func (s *run) ack(ctx context.Context, changes []Change, events []*Event, done []int, seqs []uint64, pending []int) error {
	ids := make([]int64, len(done))
	last := done[0]
	var lastSeq uint64
	for k, i := range done {
		ids[k] = changes[i].ID
		if i > last {
			last = i
		}
	}
	for j, i := range pending {
		if i == last {
			lastSeq = seqs[j]
		}
	}
	if err := s.src.Ack(ctx, ids, changes[last], lastSeq); err != nil {
		return fmt.Errorf("failed to acknowledge %d published events: %w", len(ids), err)
	}
	s.update(func(st *Stats) {
		st.Published += uint64(len(ids))
		st.LastPublished = time.Now()
	})
	return nil
}

// compat sends the old notifier's frames for the delivered events. It is
// best effort: the frames go to a live bus, and a failure is logged and
// counted but holds nothing up.
func (s *run) compat(ctx context.Context, events []*Event, done []int) {
	if s.opts.Compat == nil || s.opts.CompatTopic == "" {
		return
	}
	var msgs []Message
	for _, i := range done {
		if f := compatFrame(events[i]); f != nil {
			msgs = append(msgs, Message{Topic: s.opts.CompatTopic, Payload: f, Key: s.opts.CompatTopic})
		}
	}
	if len(msgs) == 0 {
		return
	}
	seqs, err := s.opts.Compat.Publish(ctx, msgs)
	sent := uint64(len(msgs) - countZero(seqs))
	if err != nil && seqs == nil {
		sent = 0
	}
	s.update(func(st *Stats) {
		st.CompatSent += sent
		st.CompatFailures += uint64(len(msgs)) - sent
	})
	if err != nil {
		s.log.Warn("minion bridge: failed to send notifier frames", "topic", s.opts.CompatTopic, "err", err)
	}
}

// measure records and logs the lag, at most every LagInterval.
func (s *run) measure(ctx context.Context) error {
	if time.Since(s.lagAt) < s.opts.LagInterval {
		return nil
	}
	s.lagAt = time.Now()
	lag, err := s.src.Lag(ctx)
	if err != nil {
		return err
	}
	s.update(func(st *Stats) { st.Lag, st.LagMeasured = lag, time.Now() })
	level := slog.LevelDebug
	if lag.Depth > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "minion bridge: outbox lag", "depth", lag.Depth, "ready", lag.Ready, "oldest_age", lag.OldestAge.Round(time.Millisecond))
	return nil
}

// backoff doubles a wait from 100ms up to max.
type backoff struct {
	max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = 100 * time.Millisecond
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
