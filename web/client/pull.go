package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// PullOptions configures Pull. The zero value takes 16 jobs at a time,
// with a backoff from 250ms to 30s.
type PullOptions struct {
	Options // how to dial; Envelope is always on
	// Prefetch is how many jobs the broker hands over at once.
	Prefetch int
	// NackDelay is how long a job fn failed waits before it comes back.
	NackDelay time.Duration
	// OnReconnect hears of each lost connection, with its error.
	OnReconnect func(err error)
	// Backoff is the first delay before reconnecting, doubled after each
	// failure up to MaxBackoff, with jitter.
	Backoff, MaxBackoff time.Duration
}

// Pull takes jobs from the queue topic on server one at a time: fn
// returning nil acks the job, an error nacks it with the error as its
// reason, so it comes back (with the same ID and the next Attempt) until
// the bus's max_attempts. Pull reconnects by itself; a job whose
// connection was lost comes back from the broker. It returns ctx's error
// when it ends, or a refusal reconnecting cannot mend.
func Pull(ctx context.Context, server, topic string, opts *PullOptions, fn func(Envelope) error) error {
	if opts == nil {
		opts = &PullOptions{}
	}
	q := url.Values{}
	if opts.Prefetch > 0 {
		q.Set("prefetch", strconv.Itoa(opts.Prefetch))
	}
	bo := newBackoff(opts.Backoff, opts.MaxBackoff)
	dial := opts.Options
	dial.Envelope = true
	for {
		err := pullOnce(ctx, URL(server, "pull", topic, q), &dial, opts.NackDelay, fn, bo.reset)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if final(err) {
			return err
		}
		if opts.OnReconnect != nil {
			opts.OnReconnect(err)
		}
		if !bo.wait(ctx) {
			return ctx.Err()
		}
	}
}

// pullOnce works one connection until it ends.
func pullOnce(ctx context.Context, u string, opts *Options, nackDelay time.Duration, fn func(Envelope) error, opened func()) error {
	c, err := Dial(ctx, u, opts)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	opened()
	for {
		f, err := c.Read(ctx)
		if err != nil {
			return err
		}
		in, err := ParseIncoming(f.Data)
		if err != nil {
			return err
		}
		if in.Message == nil || len(in.Message.ID) == 0 {
			continue // an error frame about a settlement: the job comes back by itself
		}
		if ferr := fn(*in.Message); ferr != nil {
			err = c.Nack(ctx, in.Message.ID, nackDelay, ferr.Error())
		} else {
			err = c.Ack(ctx, in.Message.ID)
		}
		if err != nil {
			return err
		}
	}
}
