package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SubscribeOptions configures Subscribe. The zero value subscribes live,
// with a backoff from 250ms to 30s.
type SubscribeOptions struct {
	Options // how to dial; Envelope is always on
	// Since, when set, replays what came after this sequence number of
	// Epoch ("" for any) first.
	Since *uint64
	Epoch string
	// OnGap hears of messages no longer kept; with Reset, the broker
	// started afresh and what follows is numbered anew.
	OnGap func(Gap)
	// OnReconnect hears of each lost connection, with its error.
	OnReconnect func(err error)
	// Backoff is the first delay before reconnecting, doubled after each
	// failure up to MaxBackoff, with jitter.
	Backoff, MaxBackoff time.Duration
}

// Subscribe receives every message on topic and below it from server
// ("ws://host:port"), calling fn for each in order, and reconnects by
// itself, resuming from the last message fn was given (since and epoch),
// so a broker restart with a durable bus loses nothing and repeats
// nothing. It returns fn's error, ctx's when it ends, or the error of a
// refusal that reconnecting cannot mend (a handshake answered 4xx, or
// closes 4403, 4404, 4409).
func Subscribe(ctx context.Context, server, topic string, opts *SubscribeOptions, fn func(Envelope) error) error {
	if opts == nil {
		opts = &SubscribeOptions{}
	}
	r := resumer{epoch: opts.Epoch}
	if opts.Since != nil {
		r.seq, r.has = *opts.Since, true
	}
	bo := newBackoff(opts.Backoff, opts.MaxBackoff)
	dial := opts.Options
	dial.Envelope = true
	for {
		err := r.run(ctx, URL(server, "sub", topic, r.query()), &dial, opts.OnGap, fn, bo.reset)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
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

// resumer is a subscription's position.
type resumer struct {
	seq   uint64
	epoch string
	has   bool
}

func (r *resumer) query() url.Values {
	if !r.has {
		return nil
	}
	q := url.Values{"since": {strconv.FormatUint(r.seq, 10)}}
	if r.epoch != "" {
		q.Set("epoch", r.epoch)
	}
	return q
}

// fnError is the application's error, which ends Subscribe.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// run reads one connection until it ends.
func (r *resumer) run(ctx context.Context, u string, opts *Options, onGap func(Gap), fn func(Envelope) error, opened func()) error {
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
		switch {
		case in.Gap != nil:
			if in.Gap.Reset {
				r.seq, r.epoch, r.has = 0, in.Gap.Epoch, true
			}
			if onGap != nil {
				onGap(*in.Gap)
			}
		case in.Message != nil:
			m := in.Message
			if r.has && m.Seq <= r.seq && (m.Epoch == "" || m.Epoch == r.epoch) {
				continue // already given
			}
			if err := fn(*m); err != nil {
				return fnError{err}
			}
			r.seq, r.has = m.Seq, true
			if m.Epoch != "" {
				r.epoch = m.Epoch
			}
		}
	}
}

// final reports whether err is a refusal reconnecting cannot mend.
func final(err error) bool {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 && he.Status != http.StatusUnauthorized && he.Status != http.StatusTooManyRequests
	}
	switch CloseStatus(err) {
	case 4403, 4404, 4409:
		return true
	}
	return false
}
