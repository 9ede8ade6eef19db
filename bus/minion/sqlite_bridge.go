package minion

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"
)

// NewSQLite returns a bridge reading Minion's SQLite database at path and
// publishing through pub. Only one bridge per database is active at a time
// (a lease in mercury_minion_lock); others stand by.
func NewSQLite(path string, pub Publisher, opts Options) *Bridge {
	opts.setDefaults()
	return &Bridge{sqlite: path, pub: pub, opts: opts, log: opts.Logger}
}

// sqliteSession is one opening of the SQLite database: hold the lease and
// publish until an error.
func (b *Bridge) sqliteSession(ctx context.Context, wait *backoff) error {
	db, err := OpenSQLite(b.sqlite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	in, err := InspectSQLite(ctx, db)
	if err != nil {
		return err
	}
	if !in.Outbox || !in.JobsTrigger {
		return fmt.Errorf("%w in %s: run 'mercury bridge minion install --sqlite %s' first", ErrNotInstalled, b.sqlite, b.sqlite)
	}
	lock := newSQLiteLock(db, b.opts.Instance, b.opts.LockLease)
	for logged := false; ; logged = true {
		held, holder, err := lock.try(ctx)
		if err != nil {
			return err
		}
		if held {
			break
		}
		if !logged {
			b.log.Info("minion bridge: another bridge publishes this outbox; standing by", "sqlite", b.sqlite, "holder", holder)
		}
		if !sleep(ctx, min(time.Second, b.opts.LockLease/4)) {
			return ctx.Err()
		}
	}
	defer lock.release(context.WithoutCancel(ctx))

	// PRAGMA data_version changes when another connection commits; it is
	// per connection, so one connection of its own asks.
	watch, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", b.sqlite, err)
	}
	defer watch.Close()
	version := func() (int64, error) {
		var v int64
		if err := watch.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			return 0, fmt.Errorf("failed to read the data version: %w", err)
		}
		return v, nil
	}
	seen, err := version()
	if err != nil {
		return err
	}

	b.update(func(s *Stats) { s.Active = true })
	name, _ := filepath.Abs(b.sqlite)
	b.log.Info("minion bridge: publishing", "sqlite", name, "topic", b.opts.Topic, "instance", b.opts.Instance)
	s := &run{Bridge: b, src: &sqliteSource{db: db, lock: lock},
		info: BuildInfo{Database: name, Schema: "main", Instance: b.opts.Instance}}
	renewed := time.Now()
	lastRead := time.Time{}
	tick := time.NewTicker(b.opts.WakeInterval)
	defer tick.Stop()
	for {
		// The outbox is the truth: read it when the database changed, and
		// every PollInterval anyway.
		v, err := version()
		if err != nil {
			return err
		}
		if v != seen || time.Since(lastRead) >= b.opts.PollInterval {
			seen, lastRead = v, time.Now()
			if err := s.drain(ctx, wait); err != nil {
				return err
			}
			wait.reset()
			if err := s.measure(ctx); err != nil {
				return err
			}
		}
		if time.Since(renewed) >= b.opts.LockLease/3 {
			if err := lock.renew(ctx); err != nil {
				return err
			}
			renewed = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ReadSQLiteStatus reads the bridge's state in a SQLite database.
func ReadSQLiteStatus(ctx context.Context, db *sql.DB) (*Status, error) {
	in, err := InspectSQLite(ctx, db)
	if err != nil {
		return nil, err
	}
	st := &Status{Installation: in}
	if !in.Outbox {
		return st, nil
	}
	lag, err := sqliteLag(ctx, db)
	if err != nil {
		return nil, err
	}
	st.Lag = &lag
	var a ActiveBridge
	var since string
	var expires int64
	err = db.QueryRowContext(ctx, `SELECT pid, instance, host, since, expires FROM mercury_minion_lock WHERE name = 'bridge'`).
		Scan(&a.PID, &a.Application, &a.ClientAddr, &since, &expires)
	switch {
	case err == nil:
		if expires >= time.Now().UnixMilli() {
			a.Since, _ = time.Parse(time.RFC3339Nano, since)
			st.Active = &a
		}
	case err != sql.ErrNoRows:
		return nil, fmt.Errorf("failed to look for a running bridge: %w", err)
	}
	var c Cursor
	var changeTime, updated string
	err = db.QueryRowContext(ctx, `SELECT COALESCE(instance, ''), COALESCE(last_event_id, ''), COALESCE(last_seq, 0),
			COALESCE(last_change_time, ''), published, updated FROM mercury_minion_bridge WHERE name = 'bridge'`).
		Scan(&c.Instance, &c.EventID, &c.Seq, &changeTime, &c.Published, &updated)
	switch {
	case err == nil:
		c.ChangeTime, _ = time.Parse(time.RFC3339Nano, changeTime)
		c.Updated, _ = time.Parse(time.RFC3339Nano, updated)
		st.Cursor = &c
	case err != sql.ErrNoRows:
		return nil, fmt.Errorf("failed to read the cursor: %w", err)
	}
	return st, nil
}
