package cli

import (
	"context"
	"errors"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// errEnough ends a session that received what it was asked for (--count).
var errEnough = errors.New("enough messages received")

// handlerError is a failure of the command itself while handling a frame
// (standard output closed, --exec could not start), as opposed to the
// connection's end.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// receiver runs a connection that only receives (sub, pull), and
// connects again, with backoff, when the connection is lost or the broker
// restarts. Only the first connection must succeed at once.
type receiver struct {
	scr  *screen
	opts *client.Options
	// url returns the URL to connect to, each time: a subscriber in
	// envelope mode resumes after the last sequence number it saw.
	url func() (string, error)
	// handle handles one frame; it returns errEnough to end the session.
	handle func(ctx context.Context, c *client.Conn, f client.Frame) error
	// reconnected is called after each new connection but the first.
	reconnected func()
}

// run receives until ctx ends, handle has had enough, or the broker
// refuses something. A nil error when ctx ended: the caller knows why.
func (r *receiver) run(ctx context.Context) error {
	var bo backoff
	connected := false
	for {
		u, err := r.url()
		if err != nil {
			return err
		}
		c, err := dial(ctx, u, r.opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !connected || !retryable(err) {
				return err
			}
			wait := bo.wait()
			r.scr.note("%v; trying again in %s", err, wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if connected {
			r.scr.note("reconnected to %s", u)
			if r.reconnected != nil {
				r.reconnected()
			}
		} else {
			r.scr.note("connected to %s", u)
		}
		connected = true
		start := time.Now()
		err = r.read(ctx, c)
		if errors.Is(err, errEnough) {
			c.Close()
			return nil
		}
		c.CloseNow()
		var he *handlerError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &he):
			return he.err
		}
		why, refused := closedFailure(err)
		if refused {
			return &command.ExitError{Code: command.ExitRefused, Err: errors.New(why)}
		}
		if time.Since(start) > 10*time.Second {
			bo.reset() // it was a working connection, not a flapping one
		}
		wait := bo.wait()
		r.scr.note("%s; reconnecting in %s", why, wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

func (r *receiver) read(ctx context.Context, c *client.Conn) error {
	for {
		f, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := r.handle(ctx, c, f); err != nil {
			return err
		}
	}
}
