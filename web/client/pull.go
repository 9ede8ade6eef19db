package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// PullOptions configures Pull. The zero value takes the broker's
// prefetch (16) and works one job at a time.
type PullOptions struct {
	// Prefetch is how many jobs the broker hands over at once.
	Prefetch int
	// Concurrency is how many jobs fn works at once (default 1); more
	// than Prefetch is pointless.
	Concurrency int
	// NackDelay is how long a job fn failed waits before it comes back.
	NackDelay time.Duration
	// TTL, MustExist, Exclusive and Takeover are the queue's ?ttl=,
	// ?must_exist=1, ?exclusive=1 and ?takeover=1 (docs/protocol.md).
	TTL                            time.Duration
	MustExist, Exclusive, Takeover bool
	// OnState hears of the worker's state, with the error that caused it.
	OnState func(State, error)
}

func (o *PullOptions) query() url.Values {
	q := url.Values{}
	if o.Prefetch > 0 {
		q.Set("prefetch", strconv.Itoa(o.Prefetch))
	}
	if o.TTL > 0 {
		q.Set("ttl", o.TTL.String())
	}
	for k, on := range map[string]bool{"must_exist": o.MustExist, "exclusive": o.Exclusive, "takeover": o.Takeover} {
		if on {
			q.Set(k, "1")
		}
	}
	return q
}

// Pull takes jobs from the queue topic until ctx ends: fn returning nil
// acks the job, an error nacks it with the error as its last error, so it
// comes back (same ID, next Attempt) until the bus's max_attempts. Pull
// reconnects by itself; a job whose connection was lost before fn
// returned is not settled: the broker delivers it again. It returns ctx's
// error when it ends, or a refusal reconnecting cannot mend.
func (c *Client) Pull(ctx context.Context, topic string, opts *PullOptions, fn func(Job) error) error {
	if opts == nil {
		opts = &PullOptions{}
	}
	l := &link{c: c, onState: opts.OnState}
	u := c.url("pull", topic, opts.query())
	workers := max(1, opts.Concurrency)
	return l.run(ctx, func(ctx context.Context, opened opened) error {
		conn, stop, err := l.openConn(ctx, u)
		if err != nil {
			return err
		}
		defer stop()
		opened()
		// Reading with ctx would close the connection as ctx ends, before
		// the acks of jobs fn finished are written: the connection is read
		// until ctx ended and no job is at work.
		rctx, cancelRead := context.WithCancel(context.WithoutCancel(ctx))
		defer cancelRead()
		var mu sync.Mutex
		active := 0
		begin := func() bool {
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return false // not settled: the broker delivers it again
			}
			active++
			return true
		}
		end := func() {
			mu.Lock()
			defer mu.Unlock()
			if active--; active == 0 && ctx.Err() != nil {
				cancelRead()
			}
		}
		stopWatch := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if active == 0 {
				cancelRead()
			}
		})
		defer stopWatch()
		jobs := make(chan *Envelope)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for e := range jobs {
					if ctx.Err() == nil {
						settle(ctx, conn, e, opts.NackDelay, fn)
					}
					end()
				}
			})
		}
		defer wg.Wait()
		defer close(jobs)
		for {
			in, err := l.readFrame(rctx, conn)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			switch {
			case in.Error != nil:
				c.onError(in.Error) // about a settlement: the job comes back by itself
			case in.Message != nil && len(in.Message.ID) > 0:
				if begin() {
					jobs <- in.Message
				}
			}
		}
	})
}

// settle runs fn for one job and acks or nacks it; a write that fails
// means the connection is gone, and the job is the broker's again. A job
// fn finished is settled even when ctx ended meanwhile (a worker that
// stops after N jobs).
func settle(ctx context.Context, conn *Conn, e *Envelope, nackDelay time.Duration, fn func(Job) error) {
	m, err := messageOf(e)
	if err == nil {
		err = fn(Job{Message: m, ID: idText(e.ID), Attempt: e.Attempt})
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err != nil {
		conn.Nack(ctx, e.ID, nackDelay, err.Error())
		return
	}
	conn.Ack(ctx, e.ID)
}

// settleTimeout bounds the write of an ack or nack.
const settleTimeout = 10 * time.Second

// idText is an id as text: a number's digits, a string unquoted.
func idText(id json.RawMessage) string {
	var s string
	if json.Unmarshal(id, &s) == nil {
		return s
	}
	return string(id)
}
